from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from bench import throwaway_database
from bench.randomise import (
    allocation_integrity,
    participants_make_ready,
    randomise_concurrently,
    randomise_in_processes,
    summary,
)
from presets.services import preset_apply
from presets.walkback import WALKBACK
from trial import services


class Command(BaseCommand):
    help = (
        "Benchmark concurrent randomisation in a throwaway database: N clients (processes or threads, one connection each) "
        "randomise P participants across WalkBack's strata. Prints allocations/s, p50/p95 latency, duplicates, failures."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--clients", type=int, default=16)
        parser.add_argument("--participants", type=int, default=2000)
        parser.add_argument("--method", choices=["blocks", "minimisation"], default="blocks")
        parser.add_argument(
            "--mode",
            choices=["processes", "threads"],
            default="processes",
            help="Clients as processes (like web workers; default) or as threads of one process.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with throwaway_database("bench_randomise"):
            self._run(options)

    def _run(self, options: dict[str, Any]) -> None:

        trial = preset_apply(preset=WALKBACK, today=dt.date.today())  # noqa: DTZ011 - only sets relative dates
        if options["method"] == "minimisation":
            trial.randomisation_method = "minimisation"
            trial.save(update_fields=["randomisation_method"])
        codes = list(trial.sites.values_list("code", flat=True))
        user = services.staff_create(
            trial=trial, username="bench", role="coordinator", password="bench-password-123", site_codes=codes
        )
        per_stratum = options["participants"] // 2 + 16
        services.randomisation_list_generate(trial=trial, seed="benchmark-seed-not-secret", per_stratum=per_stratum, by="bench")
        ids = participants_make_ready(trial=trial, count=options["participants"], by=user)
        run = randomise_in_processes if options["mode"] == "processes" else randomise_concurrently
        result = run(participant_ids=ids, clients=options["clients"], by=user)
        figures = summary(result, allocation_integrity(trial=trial))
        figures["method"] = options["method"]
        figures["mode"] = options["mode"]
        width = max(len(k) for k in figures)
        for key, value in figures.items():
            self.stdout.write(f"{key:<{width}}  {value}")
        if result.failures:
            self.stdout.write("first failures: " + "; ".join(result.failures[:3]))
