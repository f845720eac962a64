from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from followup import services
from messaging import services as messaging
from trial.audit import audit_context


class Command(BaseCommand):
    help = (
        "Open due questionnaire windows, write their invitations and reminders, and send every message due "
        "(the same service beat runs). Safe to run twice or alongside the beat task."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--at", help="Act as if it were this ISO date-time (with offset), e.g. 2026-03-01T10:00:00+11:00.")
        parser.add_argument(
            "--batch-size", type=int, default=None, help="Messages claimed at a time (default MESSAGES_BATCH_SIZE)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        now = None
        if options["at"]:
            now = parse_datetime(options["at"])
            if now is None or now.tzinfo is None:
                raise CommandError("--at needs an ISO date-time with a UTC offset, e.g. 2026-03-01T10:00:00+11:00.")
            now = now.astimezone(dt.UTC)
        with audit_context(actor="command:send_due_reminders"):
            opened, missed = services.occurrences_advance(now=now)
            result = messaging.messages_send_due(now=now, batch_size=options["batch_size"])
        self.stdout.write(
            f"Windows opened {opened}, closed {missed}. Messages sent {result.sent}, cancelled {result.cancelled}, "
            f"deferred {result.deferred}, retrying {result.retrying}, failed {result.failed} in {result.batches} batches."
        )
