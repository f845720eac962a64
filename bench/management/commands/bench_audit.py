from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction

from bench import statements_unlimited
from trial import auditchain

INSERT = (
    "INSERT INTO trial_securityevent (kind, username, detail, created_at) "
    "SELECT 'download', 'bench-' || i, jsonb_build_object('n', i), now() FROM generate_series(1, %s) AS i"
)


class _Rollback(Exception):
    pass


class Command(BaseCommand):
    help = (
        "Measure the audit chain: the cost per audited write (N security events, each writing an event row, with "
        "and without the chain trigger) and verify_audit's time on the events. Runs in one transaction that is "
        "rolled back: nothing stays. Needs the tables' owner (it disables the trigger for the comparison)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--events", type=int, default=5000)

    def handle(self, *args: Any, **options: Any) -> None:
        statements_unlimited()
        n = options["events"]
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                timings = {}
                for label in ("chained", "unchained", "chained again"):
                    if label == "unchained":
                        cursor.execute("ALTER TABLE trial_securityeventevent DISABLE TRIGGER zz_audit_chain")
                    elif label == "chained again":
                        cursor.execute("ALTER TABLE trial_securityeventevent ENABLE TRIGGER zz_audit_chain")
                    started = time.perf_counter()
                    cursor.execute(INSERT, [n])
                    timings[label] = time.perf_counter() - started
                # The unchained rows would be reported; drop them before verifying.
                cursor.execute("SET LOCAL session_replication_role = replica")
                cursor.execute("DELETE FROM trial_securityeventevent WHERE row_hash IS NULL")
                cursor.execute("SET LOCAL session_replication_role = origin")
                cursor.execute("SELECT count(*) FROM trial_securityeventevent")
                events = cursor.fetchone()[0]
                started = time.perf_counter()
                chain = auditchain._verify_table(cursor, "trial_securityeventevent")
                chain_seconds = time.perf_counter() - started
                started = time.perf_counter()
                findings = auditchain.audit_verify()
                all_seconds = time.perf_counter() - started
                chained = (timings["chained"] + timings["chained again"]) / 2
                self.stdout.write(f"audited writes: {n} per run")
                self.stdout.write(f"  with the chain trigger:    {chained / n * 1e6:8.1f} us per write")
                self.stdout.write(f"  without it:                {timings['unchained'] / n * 1e6:8.1f} us per write")
                self.stdout.write(f"  chain cost:                {(chained - timings['unchained']) / n * 1e6:8.1f} us per write")
                self.stdout.write(
                    f"verify one chain of {events} events: {chain_seconds:.3f} s ({len(chain)} problems); "
                    f"whole trail with snapshots: {all_seconds:.3f} s ({len(findings)} problems)"
                )
                raise _Rollback
        except _Rollback:
            pass
