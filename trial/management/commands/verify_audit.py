from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from trial import auditchain


class Command(BaseCommand):
    help = (
        "Recompute every audit event table's hash chain and compare each tracked row with its latest audit "
        "snapshot. Exit status 0 when intact; otherwise 1, naming each table and row that fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--heads",
            type=Path,
            help="A JSON file of chain heads kept outside the database ({table: hash}, or a release's "
            "audit_chain_heads.json, or a backup manifest with an 'audit_chain_heads' key): each must still be "
            "an event of its table's chain.",
        )
        parser.add_argument("--chains-only", action="store_true", help="Skip comparing tracked rows with their snapshots.")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        findings = auditchain.audit_verify(snapshots=not options["chains_only"])
        if options["heads"]:
            findings += _check_heads(options["heads"])
        for finding in findings:
            self.stdout.write(str(finding))
        tables = len(auditchain.event_models())
        elapsed = time.monotonic() - started
        if findings:
            raise CommandError(f"{len(findings)} audit problem(s) in {tables} event tables ({elapsed:.1f} s).")
        self.stdout.write(f"Audit trail intact: {tables} event tables verified in {elapsed:.1f} s.")


def _check_heads(path: Path) -> list[auditchain.Finding]:
    try:
        heads = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CommandError(f"Cannot read the heads file {path}: {exc}") from exc
    if isinstance(heads, dict) and isinstance(heads.get("audit_chain_heads"), dict):
        heads = heads["audit_chain_heads"]
    if not isinstance(heads, dict):
        raise CommandError("The heads file must hold a JSON object {table: hash}.")
    known = {model._meta.db_table for model in auditchain.event_models()}
    findings = []
    with connection.cursor() as cursor:
        for table, head in sorted(heads.items()):
            if table not in known:
                findings.append(auditchain.Finding(str(table), "-", "is in the heads file but is not an event table"))
                continue
            cursor.execute(
                f"SELECT pgh_id FROM {connection.ops.quote_name(table)} WHERE row_hash = %s",  # noqa: S608
                [str(head)],
            )
            if cursor.fetchone() is None:
                findings.append(
                    auditchain.Finding(table, "-", f"the exported head {str(head)[:16]}... is no longer in the chain")
                )
    return findings
