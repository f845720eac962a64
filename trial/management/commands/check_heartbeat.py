from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trial import selectors


class Command(BaseCommand):
    help = "Exit non-zero unless beat and a worker have recorded a heartbeat recently (a health check)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--max-age", type=int, default=180, help="Seconds (default 180).")
        parser.add_argument("--name", default="worker")

    def handle(self, *args: Any, **options: Any) -> None:
        age = selectors.heartbeat_age_seconds(name=options["name"])
        if age is None:
            raise CommandError("No heartbeat recorded yet: is beat running, and a worker consuming?")
        if age > options["max_age"]:
            raise CommandError(f"Last heartbeat {age:.0f} s ago (limit {options['max_age']} s).")
        self.stdout.write(f"Heartbeat {age:.0f} s ago.")
