from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

from bench import throwaway_database
from bench.http import gunicorn, health, http_setup, randomise, rows, submit


class Command(BaseCommand):
    help = (
        "Benchmark the web process under load in a throwaway database: gunicorn as docker/entrypoint.sh runs it, N "
        "clients (threads with keep-alive connections) randomising P participants through the API, then P participants "
        "answering their monthly questionnaire from their link (home, questionnaire, POST, thanks); each beside /health/ "
        "on the same server. Prints requests/s, p50 and p95 per request, and each scenario's rate against /health/'s."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--clients", type=int, default=16)
        parser.add_argument("--participants", type=int, default=500, help="Randomised, and as many answering (default 500).")
        parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "3")), help="gunicorn workers.")
        parser.add_argument(
            "--conn-max-age",
            type=int,
            default=int(settings.DATABASES["default"]["CONN_MAX_AGE"] or 0),
            help="The server's DATABASE_CONN_MAX_AGE (default: as configured, 60 unless set).",
        )
        parser.add_argument("--health-seconds", type=float, default=10.0)

    def handle(self, *args: Any, **options: Any) -> None:
        with throwaway_database("bench_http"):
            self._run(options)

    def _run(self, options: dict[str, Any]) -> None:
        setup = http_setup(participants=options["participants"])
        self.stdout.write(
            f"setup: {options['participants']} to randomise, {len(setup.to_submit)} to answer, {setup.seconds:.1f} s"
        )
        connection.close()  # the server opens its own connections
        clients = options["clients"]
        with (
            tempfile.TemporaryDirectory(prefix="bench-http-") as directory,
            gunicorn(workers=options["workers"], conn_max_age=options["conn_max_age"], directory=Path(directory)) as (host, port),
        ):
            scenarios = [
                health(host=host, port=port, clients=clients, seconds=options["health_seconds"]),
                randomise(host=host, port=port, clients=clients, setup=setup),
                submit(host=host, port=port, clients=clients, setup=setup),
            ]
        self.stdout.write(
            f"gunicorn workers {options['workers']}, DATABASE_CONN_MAX_AGE {options['conn_max_age']}, {clients} clients, "
            f"{os.cpu_count()} cores"
        )
        header = f"{'scenario':<10} {'request':<22} {'count':>6} {'per s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>6} {'vs health':>9}"
        self.stdout.write(header)
        for row in rows(scenarios):
            p50 = f"{row['p50_ms']:.1f}" if row["p50_ms"] is not None else ""
            p95 = f"{row['p95_ms']:.1f}" if row["p95_ms"] is not None else ""
            errors = str(row.get("errors", ""))
            versus = f"{row['vs_health']:.2f}" if row.get("vs_health") is not None else ""
            self.stdout.write(
                f"{row['scenario']:<10} {row['request']:<22} {row['count']:>6} {row['per_second']:>8.1f} {p50:>8} {p95:>8} "
                f"{errors:>6} {versus:>9}"
            )
        for scenario in scenarios:
            for error in scenario.errors[:3]:
                self.stdout.write(f"error ({scenario.name}): {error}")
