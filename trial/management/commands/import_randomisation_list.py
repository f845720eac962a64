from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trial import selectors, services
from trial.errors import ApplicationError
from trial.management.commands.generate_randomisation_list import statistician


class Command(BaseCommand):
    help = (
        "Import an allocation table as REDCap accepts it: a CSV with one row per slot in list order, a column "
        "for the arm (code, or number from 1 in arm order) and one column per stratification factor (level codes)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("csv_file", type=Path)
        parser.add_argument("--user", required=True, help="The statistician's username.")
        parser.add_argument("--arm-column", default="arm", help="Name of the arm column (default: arm).")

    def handle(self, *args: Any, **options: Any) -> None:
        user = statistician(options["user"])
        path: Path = options["csv_file"]
        if not path.exists():
            raise CommandError(f"No file at {path}.")
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or options["arm_column"] not in reader.fieldnames:
                raise CommandError(f"The file has no '{options['arm_column']}' column (columns: {reader.fieldnames}).")
            try:
                created = services.randomisation_list_import(
                    trial=selectors.trial_get_current(), rows=reader, arm_column=options["arm_column"], by=user.get_username()
                )
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
        self.stdout.write(f"Randomisation list {created.pk}: {created.slots_created} sealed slots imported.")
