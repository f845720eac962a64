from __future__ import annotations

import tempfile
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

from bench import throwaway_database
from bench.export import dataset_build, in_fresh_process


class Command(BaseCommand):
    help = (
        "Benchmark a dataset release in a throwaway database: P participants after their last follow-up, locked, then "
        "the release build timed against a plain PostgreSQL COPY of the same rows (and of the source tables), with rows per "
        "second and peak memory (Python allocations and the process's resident set); a second build checks it is "
        "byte-identical."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--participants", type=int, default=50_000)
        parser.add_argument(
            "--timepoints",
            action="store_true",
            help="Also the 3, 6, 9 and 12-month questionnaires (35 items each): four times the answers in long form.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with throwaway_database("bench_export") as database:
            self._run(options, database=database)

    def _run(self, options: dict[str, Any], *, database: str) -> None:

        setup = dataset_build(participants=options["participants"], timepoints=options["timepoints"], progress=self.stdout.write)
        source_rows = sum(setup["rows"].values())
        self.stdout.write(f"setup: {options['participants']} participants, {source_rows} source rows in {setup['seconds']:.1f} s")
        connection.close()  # the measuring processes open their own connections
        build = in_fresh_process("measure_build", database, setup["releases"][0], False)
        traced = in_fresh_process("measure_build", database, setup["releases"][1], True)
        with tempfile.TemporaryDirectory(prefix="bench-export-") as directory:
            same = in_fresh_process("measure_queries", database, directory, setup["trial"])
        with tempfile.TemporaryDirectory(prefix="bench-export-") as directory:
            source = in_fresh_process("measure_copy", database, directory)
        figures: dict[str, Any] = {
            "participants": options["participants"],
            "questionnaires": "12 monthly" + (" + 4 three-monthly" if options["timepoints"] else "") + " per participant",
            "source_rows": source_rows,
            "release_rows": build["rows"],
            "release_files": len(build["files"]),
            "zip_mb": f"{build['zip_bytes'] / 2**20:.1f}",
            "build_seconds": f"{build['seconds']:.2f}",
            # The same rows: the release's own queries by plain COPY to CSV files (no zip, checksums, .dta/.sav, metadata).
            "copy_same_rows_seconds": f"{same['seconds']:.2f}",
            "ratio_build_to_copy": f"{build['seconds'] / same['seconds']:.2f}",
            # For reference: a plain COPY of every source table the release reads (SELECT *, no joins or reshaping).
            "copy_source_tables_seconds": f"{source['seconds']:.2f}",
            "ratio_build_to_source_copy": f"{build['seconds'] / source['seconds']:.2f}",
            "release_rows_per_second": f"{build['rows'] / build['seconds']:.0f}",
            "copy_same_rows_per_second": f"{same['rows'] / same['seconds']:.0f}",
            "build_max_rss_mb": f"{build['max_rss_mb']:.0f}",
            "copy_max_rss_mb": f"{same['max_rss_mb']:.0f}",
            "traced_build_seconds": f"{traced['seconds']:.2f}",
            "traced_python_peak_mb": f"{traced['python_peak_mb']:.1f}",
            "traced_build_max_rss_mb": f"{traced['max_rss_mb']:.0f}",
            "byte_identical": traced["zip_sha256"] == build["zip_sha256"],
        }
        width = max(len(key) for key in figures)
        for key, value in figures.items():
            self.stdout.write(f"{key:<{width}}  {value}")
        for file in build["files"]:
            self.stdout.write(f"  {file['name']:<28} {file['rows'] if file['rows'] is not None else '':>10}")
