from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from closeout.backups import BackupError, restore
from trial.keys import key_fingerprints_recorded, key_mismatches


class Command(BaseCommand):
    help = (
        "Restore an archive made by `backup` into the empty database DATABASE_URL names, and its release files "
        "into the var directory. Refused unless every checksum matches, the database is empty and the configured "
        "keys are the archive's (--force-keys accepts other keys: links are then reissued)."
    )
    # The database is empty until this command has run: its own checks say more than the system checks.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="The archive written by `manage.py backup`.")
        parser.add_argument(
            "--force-keys",
            action="store_true",
            help="Restore although the configured keys are not the archive's, and make them the data's keys: every "
            "participant's link is reissued when next sent and earlier lock signatures show as not valid.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            restored = restore(path=options["path"], force_keys=options["force_keys"])
        except BackupError as error:
            raise CommandError(error.message) from error
        manifest = restored.manifest
        for problem in restored.key_problems:
            self.stderr.write(self.style.WARNING(f"Restored with --force-keys: {problem}"))
        self.stdout.write(
            f"Restored the backup of {manifest['created_at']} (PostgreSQL {manifest['database']['server_version']})."
        )
        for trial in manifest["trials"]:
            now = restored.participants.get(trial["code"])
            state = "as in the manifest" if now == trial["participants"] else f"the manifest says {trial['participants']}"
            self.stdout.write(f"  {trial['code']}: {now} participants ({state})")
        releases = [m for m in manifest["members"] if m["name"].startswith("releases/")]
        self.stdout.write(f"  {len(releases)} release file(s) put back.")
        problems = key_mismatches(key_fingerprints_recorded())
        if problems:
            raise CommandError("The restored data does not match the configured keys: " + " ".join(problems))
        self.stdout.write(self.style.SUCCESS("The configured keys match the restored data; run `manage.py migrate` next."))
