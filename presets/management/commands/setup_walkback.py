from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from presets.services import preset_apply
from presets.walkback import WALKBACK
from trial.errors import ApplicationError


class Command(BaseCommand):
    help = "Create or update the WalkBack trial configuration (safe to run again)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            trial = preset_apply(preset=WALKBACK)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"{trial.name} ({trial.registration}): {trial.arms.count()} arms, {trial.sites.count()} sites, "
            f"{trial.strata.count()} stratification factors, {trial.eligibility.count()} eligibility criteria; "
            f"recruitment {trial.recruitment_start} to {trial.recruitment_end}, follow-up ends {trial.followup_end}."
        )
