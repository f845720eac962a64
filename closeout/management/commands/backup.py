from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from closeout.backups import BackupError, backup_write
from trial.keys import key_fingerprints_recorded, key_mismatches


class Command(BaseCommand):
    help = (
        "Write one consistent archive (tar): the database (pg_dump, custom format), the release files and "
        "manifest.json with each member's SHA-256. The secret key and lock-signing keys are not in it: keep them apart."
    )
    # A backup is taken even when the keys do not match the data (it says so): never refuse one.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", required=True, type=Path, help="Where to write the archive (e.g. backups/walkback.tar).")

    def handle(self, *args: Any, **options: Any) -> None:
        for problem in key_mismatches(key_fingerprints_recorded()):
            self.stderr.write(self.style.WARNING(f"Warning: {problem}"))
        try:
            written = backup_write(output=options["output"])
        except BackupError as error:
            raise CommandError(error.message) from error
        manifest = written.manifest
        members = manifest["members"]
        trials = ", ".join(f"{t['code']} ({t['participants']} participants)" for t in manifest["trials"]) or "no trial"
        self.stdout.write(
            f"Wrote {written.path}: PostgreSQL {manifest['database']['server_version']}, {trials}, "
            f"{len(members) - 1} release file(s), {sum(m['bytes'] for m in members)} bytes."
        )
        for name in manifest["releases_missing_on_disk"]:
            self.stderr.write(self.style.WARNING(f"Warning: release file {name} is ready in the database but missing on disk."))
        self.stdout.write("Keep the secret key and the lock-signing keys apart from this archive (README: Backups and restore).")
