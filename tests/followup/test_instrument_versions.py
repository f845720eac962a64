"""A trial that published version 1 of the monthly questionnaire gets version 2 when its preset is
applied again: each questionnaire keeps the version current when it opened, and version-1 answers
still count (one episode each)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
import time_machine

from followup import services
from followup.models import Occurrence, Outcome
from participants import services as journey
from presets.instrument_library import MONTHLY_EPISODES, MONTHLY_V1
from presets.services import preset_apply
from presets.walkback import WALKBACK
from tests.monthly import episode, monthly
from trial.models import Trial

RANDOMISED_AT = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


@pytest.fixture
def walkback(db: Any) -> Trial:
    """WalkBack as it was set up before version 2: the monthly questionnaire at version 1."""
    with time_machine.travel(dt.datetime(2026, 1, 5, tzinfo=dt.UTC), tick=False):
        trial = preset_apply(preset=dataclasses.replace(WALKBACK, instruments=("timepoint",)), today=dt.date(2026, 3, 2))
        services.instrument_publish(trial=trial, definition=MONTHLY_V1)
    return trial


def answer(participant: Any, month: int, raw: dict[str, Any]) -> None:
    occurrence = Occurrence.objects.get(participant=participant, instrument="monthly", month=month)
    at = dt.datetime.combine(occurrence.due_date, dt.time(2, 0), tzinfo=dt.UTC)
    with time_machine.travel(at, tick=False):
        services.occurrences_advance(now=at)
        services.response_submit(occurrence=occurrence, raw=raw, source="participant", now=at)


def test_questionnaires_opening_after_version_2_is_published_use_it(
    walkback: Trial, enrol: Any, coordinator: Any, sealed_list: Any
) -> None:
    with time_machine.travel(RANDOMISED_AT, tick=False):
        participant = enrol()
        journey.participant_randomise(participant_id=participant.pk, by=coordinator)
    participant.refresh_from_db()
    version_1 = {"lbp_24h": "yes", "lbp_start": "2026-03-20", "interference": "3", "pain_avg": "5", "pain_worst": "6"}
    answer(participant, 1, {**version_1, "care_sought": "no", "work_days_missed": "0", "new_health_problem": "no"})

    with time_machine.travel(dt.datetime(2026, 4, 10, tzinfo=dt.UTC), tick=False):
        preset_apply(preset=WALKBACK, today=dt.date(2026, 3, 2))  # the preset again: publishes version 2
    answer(participant, 2, monthly(episode("2026-04-20", interference=1)))

    versions = dict(
        Occurrence.objects.filter(participant=participant, instrument="monthly", month__in=[1, 2]).values_list(
            "month", "response__instrument_version__version"
        )
    )
    assert versions == {1: MONTHLY_V1["version"], 2: MONTHLY_EPISODES["version"]}
    primary = Outcome.objects.get(participant=participant, code="activity_limiting")
    assert (primary.event, primary.event_date) == (True, dt.date(2026, 3, 20))  # the version-1 answer, as one episode
    assert participant.outcome_summary.recurrences == 2
