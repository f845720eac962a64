from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from closeout.queries.checks import checks_run_all
from trial.audit import audit_context


class Command(BaseCommand):
    help = (
        "Run the data-quality checks now (the service the nightly beat task runs) and raise a data query for each "
        "new finding. Safe to run twice: a finding raises its query once. Does nothing while the database is locked."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--at", help="Act as if it were this ISO date-time (with offset), e.g. 2026-03-01T10:00:00+11:00.")

    def handle(self, *args: Any, **options: Any) -> None:
        now = None
        if options["at"]:
            now = parse_datetime(options["at"])
            if now is None or now.tzinfo is None:
                raise CommandError("--at needs an ISO date-time with a UTC offset, e.g. 2026-03-01T10:00:00+11:00.")
            now = now.astimezone(dt.UTC)
        with audit_context(actor="command:run_quality_checks"):
            raised = checks_run_all(now=now)
        self.stdout.write(f"Data-quality checks done: {raised} new quer{'y' if raised == 1 else 'ies'} raised.")
