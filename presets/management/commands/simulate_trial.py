from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from presets.services import preset_apply
from presets.simulation import SimulationConfig, trial_simulate
from presets.walkback import PRESETS
from trial.errors import ApplicationError
from trial.models import Trial


class Command(BaseCommand):
    help = (
        "Simulate a whole trial in the past through the real services (screening to the end of follow-up), "
        "on a trial where nobody is randomised yet, and write the truth per participant to --truth-file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--participants", type=int, required=True)
        parser.add_argument("--hazard-ratio", type=float, required=True, help="Intervention vs control, proportional hazards.")
        parser.add_argument(
            "--control-median-days",
            type=float,
            required=True,
            help="Median days to the first activity-limiting episode, control arm.",
        )
        parser.add_argument("--seed", type=int, required=True)
        parser.add_argument("--truth-file", type=Path, required=True, help="CSV; the episodes go beside it (NAME_episodes.csv).")
        parser.add_argument("--trial", default="walkback", help="Trial code (a preset's code is set up if missing).")
        parser.add_argument("--weibull-shape", type=float, default=1.0)
        parser.add_argument(
            "--dropout-rate", type=float, default=0.08, help="Probability of being lost to follow-up within a year."
        )
        parser.add_argument("--missed-rate", type=float, default=0.10, help="Probability that a questionnaire goes unanswered.")
        parser.add_argument("--staff-entry-share", type=float, default=0.15, help="Share of answers entered by staff.")
        parser.add_argument("--adverse-event-rate", type=float, default=0.8, help="Adverse events per participant-year.")
        parser.add_argument("--withdrawal-rate", type=float, default=0.05, help="Probability of withdrawing.")
        parser.add_argument("--mild-episodes-per-year", type=float, default=2.0)
        parser.add_argument("--recruitment-months", type=int, default=None, help="Default: the trial's own.")
        parser.add_argument("--followup-after-months", type=int, default=None, help="Default: the trial's own.")

    def handle(self, *args: Any, **options: Any) -> None:
        code = options["trial"]
        trial = Trial.objects.filter(code=code).first()
        try:
            if trial is None and code in PRESETS:
                trial = preset_apply(preset=PRESETS[code])
            if trial is None:
                raise CommandError(f"No trial with code '{code}'.")
            config = SimulationConfig(
                participants=options["participants"],
                hazard_ratio=options["hazard_ratio"],
                control_median_days=options["control_median_days"],
                seed=options["seed"],
                weibull_shape=options["weibull_shape"],
                dropout_rate=options["dropout_rate"],
                missed_rate=options["missed_rate"],
                staff_entry_share=options["staff_entry_share"],
                adverse_event_rate=options["adverse_event_rate"],
                withdrawal_rate=options["withdrawal_rate"],
                mild_episodes_per_year=options["mild_episodes_per_year"],
                recruitment_months=options["recruitment_months"],
                followup_after_months=options["followup_after_months"],
            )
            result = trial_simulate(trial=trial, config=config, truth_path=options["truth_file"], progress=self.stdout.write)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        arms = ", ".join(f"{n} {arm}" for arm, n in result.randomised.items())
        self.stdout.write(
            f"Simulated {result.participants} participants ({arms}; {result.screened} screened) in {result.seconds:.1f} s: "
            f"{result.responses} questionnaires answered, {result.sessions_held} sessions attended, "
            f"{result.adverse_events} adverse events, {result.withdrawals} withdrawals."
        )
        self.stdout.write(
            "Time by step: " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in result.seconds_by_step.items())
        )
        self.stdout.write(f"Truth: {result.truth_path}; episodes: {result.episodes_path}")
