"""Benchmark the pages: P participants randomised over two years with follow-up under way now, in a
database of its own; then each page, as the role that uses it, requested N times through gunicorn
(run as docker/entrypoint.sh runs it), with p50 and p95 times, SQL statements per request and
response size, and the pages slower than 150 ms at p95."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from bench import throwaway_database
from bench.http import gunicorn
from bench.pages import pages_list, pages_measure, pages_setup, session_cookie, table_lines, targets_find
from trial.models import Trial


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--participants", type=int, default=50_000)
        parser.add_argument("--requests", type=int, default=30, help="Measured requests per page.")
        parser.add_argument("--warmup", type=int, default=2, help="Unmeasured requests per page first.")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (WEB_CONCURRENCY).")
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--keep", metavar="DATABASE", help="Build into this new database and keep it (for --reuse).")
        where.add_argument(
            "--reuse",
            metavar="DATABASE",
            help="Measure a database built earlier with --keep (soon after: its follow-up stands as on the day it was built).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["reuse"]:
            for db in (connection.settings_dict, settings.DATABASES["default"]):
                db["NAME"] = options["reuse"]
            connection.close()
            self._measure(options)
            return
        started = time.perf_counter()
        with throwaway_database("bench_pages", keep=options["keep"] or "") as database:
            migrated = time.perf_counter() - started
            setup = pages_setup(participants=options["participants"], progress=self.stdout.write)
            self.stdout.write(
                f"build: {options['participants']} participants in {setup.seconds:.1f} s "
                f"(and {migrated:.1f} s to create and migrate the database {database})"
            )
            for table, rows in setup.rows.items():
                self.stdout.write(f"  {table:<34} {rows:>10}")
            self._measure(options)
        if options["keep"]:
            self.stdout.write(f"kept the database {database}: measure it again with --reuse {database}")

    def _measure(self, options: dict[str, Any]) -> None:
        if not Trial.objects.exists():
            raise CommandError(f"No trial in the database {connection.settings_dict['NAME']}: build one with --keep first.")
        targets = targets_find()
        pages = pages_list(targets)
        cookies = {role: session_cookie(username=role) for role in {p.role for p in pages} - {"participant"}}
        # Kept connections as configured (production's default): one request's connection serves the next.
        conn_max_age = int(settings.DATABASES["default"]["CONN_MAX_AGE"] or 0)
        connection.close()  # the web processes need no connection of ours
        with (
            tempfile.TemporaryDirectory(prefix="bench-pages-") as directory,
            gunicorn(
                workers=options["workers"],
                conn_max_age=conn_max_age,
                directory=Path(directory),
                extra_env={"DJANGO_SETTINGS_MODULE": "bench.settings"},
            ) as (host, port),
        ):
            self.stdout.write(
                f"measuring {len(pages)} pages, {options['requests']} requests each (after {options['warmup']}), "
                f"one at a time, {options['workers']} gunicorn workers, connections kept {conn_max_age} s"
            )
            figures = pages_measure(
                host=host, port=port, pages=pages, cookies=cookies, requests=options["requests"], warmup=options["warmup"]
            )
        for line in table_lines(figures):
            self.stdout.write(line)
