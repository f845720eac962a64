"""Applying a preset: the trial core first, then each feature's part of the configuration.

This is the one place that knows every feature's settings; the apps below never reach up here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from closeout.models import EconomicPolicy
from followup.models import OutcomePolicy, ScheduleRule
from followup.services import baselines_create, instrument_publish, messaging_defaults_apply
from intervention.services import intervention_defaults_apply
from participants.models import ConsentDocument
from presets.instrument_library import LIBRARY
from presets.walkback import ECONOMICS
from safety.services import safety_defaults_apply
from trial.audit import audit_context
from trial.models import Trial
from trial.presets import TrialPreset
from trial.services import trial_apply_preset


@transaction.atomic
def preset_apply(*, preset: TrialPreset, today: dt.date | None = None) -> Trial:
    """Create or update a trial and its features from a preset; running it again changes nothing."""
    trial = trial_apply_preset(preset=preset, today=today)
    with audit_context(actor=f"preset:{preset.code}", reason=f"Apply the {preset.name} preset"):
        if preset.consent_version and not trial.consent_documents.exists():
            ConsentDocument.objects.create(trial=trial, version=preset.consent_version, title=preset.consent_title)
        for code in preset.instruments:
            instrument_publish(trial=trial, definition=LIBRARY[code])
        # Participants enrolled before the trial had a baseline questionnaire get theirs now.
        baselines_create(trial=trial)
        if preset.schedule:
            for rule_spec in preset.schedule:
                ScheduleRule.objects.get_or_create(
                    trial=trial,
                    instrument=rule_spec.instrument,
                    defaults={
                        "kind": rule_spec.kind,
                        "months": list(rule_spec.months),
                        "open_days_before": rule_spec.open_days_before,
                        "close_days_after": rule_spec.close_days_after,
                        "reminder_days": list(rule_spec.reminder_days),
                    },
                )
            messaging_defaults_apply(
                trial=trial, reminder_days={spec.instrument: list(spec.reminder_days) for spec in preset.schedule}
            )
        if preset.intervention_arm:
            plans: list[dict[str, Any]] = [
                {
                    "number": spec.number,
                    "name": spec.name,
                    "target_day": spec.target_day,
                    "window_before_days": spec.window_before_days,
                    "window_after_days": spec.window_after_days,
                    "modes": list(spec.modes),
                    "sets_prescription": spec.sets_prescription,
                }
                for spec in preset.sessions
            ]
            intervention_defaults_apply(
                trial=trial,
                arm_code=preset.intervention_arm,
                plans=plans,
                topics=[list(topic) for topic in preset.education_topics],
            )
        safety_defaults_apply(trial=trial, categories=[list(c) for c in preset.ae_categories])
        OutcomePolicy.objects.get_or_create(trial=trial)
        if preset.code in ECONOMICS:  # never overwrites what was edited in admin
            EconomicPolicy.objects.get_or_create(trial=trial, defaults=ECONOMICS[preset.code])
    return trial
