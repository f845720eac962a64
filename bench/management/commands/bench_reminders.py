from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.test.utils import override_settings

from bench import statements_unlimited
from bench.reminders import (
    BENCH_NOW,
    CountingEmailBackend,
    reminders_setup,
    sweep_integrity,
    sweep_once,
    sweeps_in_processes,
)


class Command(BaseCommand):
    help = (
        "Benchmark the message sweep in a throwaway database: P participants with full schedules, about one message "
        "each due, then one sweep (or K at once) timed, with queries, memory and whether each message went once; "
        "for one sweep, also its sending phase against the bare claim-and-mark SQL over the same rows."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--participants", type=int, default=50_000)
        parser.add_argument("--batch-size", type=int, default=200)
        parser.add_argument("--clients", type=int, default=1, help="Sweeps run at once, each in its own process.")
        parser.add_argument("--sms-share", type=float, default=0.2, help="Share of participants who prefer SMS.")
        parser.add_argument(
            "--tracemalloc", action="store_true", help="Also measure the sweep's Python allocation peak (slows it down)."
        )
        parser.add_argument("--profile", metavar="FILE", help="Write a cProfile of the sweep to FILE (one client only).")

    def handle(self, *args: Any, **options: Any) -> None:
        statements_unlimited()
        # A database of its own: the benchmark never writes into the trial's data.
        connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_reminders_{os.getpid()}"
        old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        try:
            # E-mail to a null backend that only counts keys, SMS to null://: the sweep is measured, not a provider.
            with override_settings(EMAIL_BACKEND="bench.reminders.CountingEmailBackend", SMS_URL="null://"):
                self._run(options)
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)

    def _run(self, options: dict[str, Any]) -> None:
        setup = reminders_setup(
            participants=options["participants"],
            sms_share=options["sms_share"],
            progress=lambda step: self.stdout.write(f"setup: {step}"),
        )
        self.stdout.write(
            f"setup: {setup.participants} participants, {setup.occurrences} occurrences in {setup.seconds:.1f} s; "
            f"sweeping at {BENCH_NOW.isoformat()}"
        )
        clients = options["clients"]
        if clients > 1:
            seconds, runs = sweeps_in_processes(clients=clients, batch_size=options["batch_size"])
        elif options["profile"]:
            import cProfile

            profiler = cProfile.Profile()
            run = profiler.runcall(sweep_once, batch_size=options["batch_size"])
            profiler.dump_stats(options["profile"])
            seconds, runs = run.seconds, [run]
        else:
            run = sweep_once(batch_size=options["batch_size"], trace_memory=options["tracemalloc"], reference=True)
            seconds, runs = run.seconds, [run]
        integrity = sweep_integrity()
        keys = [key for run in runs for key in run.keys]
        sent = sum(run.result.sent for run in runs)
        figures: dict[str, Any] = {
            "participants": setup.participants,
            "occurrences": setup.occurrences,
            "sms_preferred": setup.sms_preferred,
            "clients": clients,
            "batch_size": options["batch_size"],
            "windows_opened": sum(run.opened for run in runs),
            "messages_due": integrity.due,
            "messages_sent": sent if clients == 1 else f"{sent} ({' + '.join(str(run.result.sent) for run in runs)})",
            "seconds": round(seconds, 2),
            "messages_per_second": round(sent / seconds, 1) if seconds else 0.0,
            "batches": sum(run.result.batches for run in runs),
            "queries": sum(run.queries for run in runs),
            "peak_rss_mb": round(max(run.max_rss_mb for run in runs), 1),
            # CPU seconds of the sweep's processes and of their database server processes: unlike
            # the seconds above, not stretched by whatever else the machine is running.
            "python_cpu_seconds": round(sum(run.python_cpu for run in runs), 1),
            "database_cpu_seconds": (
                round(sum(run.database_cpu or 0.0 for run in runs), 1)
                if all(run.database_cpu is not None for run in runs)
                else "n/a (remote server)"
            ),
        }
        run = runs[0]
        if clients == 1 and run.reference_seconds:
            # The measure: the sending phase against the bare SQL its guarantees need.
            figures["sending_phase_seconds"] = round(run.sending_seconds, 2)
            figures["reference_claim_and_mark_seconds"] = round(run.reference_seconds, 2)
            figures["reference_rows"] = run.reference_rows
            figures["sending_vs_reference"] = f"{run.sending_seconds / run.reference_seconds:.2f}x"
        if runs[0].python_peak_mb is not None:
            figures["sweep_python_peak_mb"] = round(runs[0].python_peak_mb, 1)
        figures.update(
            {
                "status_sent": integrity.sent,
                "left_sending": integrity.left_sending,
                "due_left_planned": integrity.due_left_planned,
                "claimed_more_than_once": integrity.sent_more_than_once,
                "emails_handed_over": len(keys),
                "email_keys_twice": len(keys) - len(set(keys)),
                "other_statuses": {k: v for k, v in integrity.by_status.items() if k != "sent"},
            }
        )
        width = max(len(k) for k in figures)
        for key, value in figures.items():
            self.stdout.write(f"{key:<{width}}  {value}")
        ok = (
            integrity.sent == integrity.due == sent
            and integrity.left_sending == 0
            and integrity.due_left_planned == 0
            and integrity.sent_more_than_once == 0
            and len(keys) == len(set(keys))
        )
        self.stdout.write("every due message sent exactly once" if ok else "INTEGRITY FAILURE: see the figures above")
        CountingEmailBackend.keys = []
