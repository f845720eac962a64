"""Every randomised participant has outcomes from randomisation on, and they stay current with
everything they depend on: answers, questionnaires closing as missed, the end of follow-up and the
outcome rules; nothing after a participant's own end of follow-up counts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from followup import services
from followup.models import Occurrence, OccurrenceStatus, Outcome, OutcomePolicy
from followup.tasks import derive_outcomes
from participants import services as journey
from tests.monthly import NO_PAIN, episode, monthly
from trial import hooks as trial_hooks
from trial.models import Trial

RANDOMISED_AT = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)  # 2 March in Sydney: day 0
DAY0 = dt.date(2026, 3, 2)


@pytest.fixture
def randomise(walkback: Trial, enrol: Any, coordinator: Any, sealed_list: Any) -> Any:
    def make(at: dt.datetime = RANDOMISED_AT, **kwargs: Any) -> Any:
        with time_machine.travel(at, tick=False):
            participant = enrol(**kwargs)
            journey.participant_randomise(participant_id=participant.pk, by=coordinator)
        participant.refresh_from_db()
        return participant

    return make


def outcomes(participant: Any) -> dict[str, Outcome]:
    return {o.code: o for o in Outcome.objects.filter(participant=participant)}


def reasons(participant: Any) -> set[tuple[str, dt.date | None, str]]:
    return {(o.code, o.censored_at, o.censor_reason) for o in outcomes(participant).values()}


def answer(participant: Any, month: int, raw: dict[str, Any], *, days_after_due: int = 0) -> None:
    occurrence = Occurrence.objects.get(participant=participant, instrument="monthly", month=month)
    at = dt.datetime.combine(occurrence.due_date + dt.timedelta(days=days_after_due), dt.time(2, 0), tzinfo=dt.UTC)
    with time_machine.travel(at, tick=False):
        services.occurrences_advance(now=at)
        services.response_submit(occurrence=occurrence, raw=raw, source="participant", now=at)


def end_followup_on(trial: Trial, day: dt.date) -> None:
    Trial.objects.filter(pk=trial.pk).update(recruitment_end=DAY0 + dt.timedelta(days=7), followup_end=day)


def test_randomisation_derives_every_outcome_censored_at_day_0(randomise: Any) -> None:
    participant = randomise()

    stored = outcomes(participant)

    assert set(stored) == {"activity_limiting", "any", "care_seeking"}
    assert {(o.event, o.days, o.censored_at, o.censor_reason) for o in stored.values()} == {
        (False, 0, DAY0, "last_questionnaire")
    }
    assert participant.outcome_summary.monthly_completed == 0


def test_the_sweep_closing_the_last_questionnaire_makes_the_censoring_administrative(randomise: Any, walkback: Trial) -> None:
    end_followup_on(walkback, dt.date(2026, 5, 2))  # two monthly questionnaires: 2 April and 2 May
    participant = randomise()
    answer(participant, 1, NO_PAIN)
    assert {reason for _code, _at, reason in reasons(participant)} == {"last_questionnaire"}
    last = Occurrence.objects.get(participant=participant, instrument="monthly", month=2)

    _opened, missed = services.occurrences_advance(now=last.closes_at)

    assert missed == 1
    last.refresh_from_db()
    assert last.status == OccurrenceStatus.MISSED
    assert reasons(participant) == {
        (code, dt.date(2026, 4, 2), "administrative_end") for code in ("activity_limiting", "any", "care_seeking")
    }
    assert participant.outcome_summary.monthly_missed == 1
    assert services.occurrences_advance(now=last.closes_at) == (0, 0)  # nothing left to close


def test_the_sweep_derives_only_the_participants_whose_questionnaire_it_closed(randomise: Any) -> None:
    touched, untouched = randomise(), randomise(at=RANDOMISED_AT + dt.timedelta(days=7))
    Outcome.objects.filter(participant__in=[touched, untouched]).update(censor_reason="withdrawal")  # stale on purpose
    first = Occurrence.objects.get(participant=touched, instrument="monthly", month=1)

    services.occurrences_advance(now=first.closes_at)

    assert {reason for _code, _at, reason in reasons(touched)} == {"last_questionnaire"}
    assert {reason for _code, _at, reason in reasons(untouched)} == {"withdrawal"}


def test_moving_the_end_of_followup_earlier_truncates_the_censoring(randomise: Any, walkback: Trial) -> None:
    participant = randomise()
    answer(participant, 1, NO_PAIN)  # answered 2 April: censored there, day 31
    assert {(o.censored_at, o.days) for o in outcomes(participant).values()} == {(dt.date(2026, 4, 2), 31)}

    end_followup_on(walkback, dt.date(2026, 3, 20))
    walkback.refresh_from_db()
    trial_hooks.run_followup_end_changed(walkback)

    assert {(o.censored_at, o.days, o.censor_reason) for o in outcomes(participant).values()} == {
        (dt.date(2026, 3, 20), 18, "administrative_end")
    }


def test_a_late_last_answer_never_censors_after_the_end_and_a_later_episode_does_not_count(
    randomise: Any, walkback: Trial, coordinator: Any, client: Client
) -> None:
    end_followup_on(walkback, dt.date(2026, 5, 2))
    participant = randomise()
    late = monthly(episode("2026-05-05", interference=4, pain_avg=8, care_from=("gp",)))

    answer(participant, 2, late, days_after_due=8)  # on 10 May, in the window, month 1 missed

    assert {(o.event, o.censored_at, o.days, o.censor_reason) for o in outcomes(participant).values()} == {
        (False, dt.date(2026, 5, 2), 61, "administrative_end")
    }
    assert participant.outcome_summary.recurrences == 1  # reported, kept in the answers
    client.force_login(coordinator)
    page = client.get(reverse("participant-outcomes", args=[participant.pk])).content.decode()
    ignored = page.split('data-testid="ignored-episodes"')[1].split("</ul>")[0]
    assert "Episode starting 5 May 2026 (month 2) is after the end of follow-up (2 May 2026) and does not count." in ignored


def test_an_episode_before_the_end_counts_even_when_answered_after_it(randomise: Any, walkback: Trial) -> None:
    end_followup_on(walkback, dt.date(2026, 5, 2))
    participant = randomise()

    answer(participant, 2, monthly(episode("2026-04-28", interference=3, pain_avg=5)), days_after_due=8)

    primary = outcomes(participant)["activity_limiting"]
    assert (primary.event, primary.event_date, primary.days) == (True, dt.date(2026, 4, 28), 57)


def test_a_change_of_the_outcome_rules_derives_the_trial_again(
    randomise: Any, walkback: Trial, make_staff: Any, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    participant = randomise()
    answer(participant, 1, monthly(episode("2026-03-20", interference=1, pain_avg=4)))
    assert not outcomes(participant)["activity_limiting"].event  # "a little bit" is below the threshold
    policy = OutcomePolicy.objects.get(trial=walkback)
    client.force_login(make_staff("admin"))
    data = {
        "trial": walkback.pk,
        "instrument": policy.instrument,
        "interference_threshold": 1,
        "pain_threshold": policy.pain_threshold,
        "censor_withdrawn_at": policy.censor_withdrawn_at,
        "censor_completed_at": policy.censor_completed_at,
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/followup/outcomepolicy/{policy.pk}/change/", data)

    assert response.status_code == 302
    primary = outcomes(participant)["activity_limiting"]
    assert (primary.event, primary.event_date) == (True, dt.date(2026, 3, 20))


def test_deriving_the_trial_twice_is_harmless(randomise: Any, walkback: Trial) -> None:
    participant = randomise()
    answer(participant, 1, monthly(episode("2026-03-20")))
    before = {(o.code, o.event, o.event_date, o.derived_at) for o in outcomes(participant).values()}

    assert derive_outcomes(walkback.pk) == 1
    assert derive_outcomes(walkback.pk) == 1

    assert {(o.code, o.event, o.event_date, o.derived_at) for o in outcomes(participant).values()} == before
