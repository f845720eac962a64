from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.test import APIClient

from followup import services
from followup.models import Occurrence, OccurrenceStatus, ScheduleRule
from followup.scheduling import RuleSpec, add_months, local_midnight, plan
from participants import services as journey
from trial.models import Trial

UTC = dt.UTC
MONTHLY = RuleSpec("monthly", tuple(range(1, 37)), 3, 14)
TIMEPOINTS = RuleSpec("timepoint", (3, 6, 9, 12), 7, 28)


def test_month_ends_and_leap_years() -> None:
    jan31 = dt.date(2027, 1, 31)
    assert [add_months(jan31, n) for n in (1, 2, 3)] == [dt.date(2027, 2, 28), dt.date(2027, 3, 31), dt.date(2027, 4, 30)]
    assert add_months(dt.date(2028, 1, 31), 1) == dt.date(2028, 2, 29)
    assert add_months(dt.date(2028, 2, 29), 12) == dt.date(2029, 2, 28)
    assert add_months(dt.date(2026, 11, 30), 3) == dt.date(2027, 2, 28)


@given(start=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2090, 12, 31)), months=st.integers(0, 48))
def test_add_months_lands_in_the_right_month_on_the_same_or_last_day(start: dt.date, months: int) -> None:
    result = add_months(start, months)
    assert (result.year * 12 + result.month) - (start.year * 12 + start.month) == months
    assert result.day == start.day or (result.day < start.day and (result + dt.timedelta(days=1)).day == 1)


def test_36_month_cap_and_fixed_timepoints() -> None:
    planned = plan(
        randomised_on=dt.date(2026, 3, 2),
        followup_end=dt.date(2035, 1, 1),
        max_months=36,
        rules=[MONTHLY, TIMEPOINTS],
        zone="Australia/Sydney",
    )
    monthly = [p for p in planned if p.instrument == "monthly"]
    assert len(monthly) == 36 and monthly[0].due_date == dt.date(2026, 4, 2) and monthly[-1].due_date == dt.date(2029, 3, 2)
    assert [p.month for p in planned if p.instrument == "timepoint"] == [3, 6, 9, 12]


def test_the_common_end_of_follow_up_caps_the_schedule() -> None:
    planned = plan(
        randomised_on=dt.date(2026, 3, 2),
        followup_end=dt.date(2027, 3, 15),
        max_months=36,
        rules=[MONTHLY],
        zone="Australia/Sydney",
    )
    assert len(planned) == 12 and planned[-1].due_date == dt.date(2027, 3, 2)


@pytest.mark.parametrize(
    ("zone", "local_day", "utc_instant"),
    [
        # Sydney: daylight saving ends 5 Apr 2026 (UTC+11 -> +10), starts 4 Oct 2026 (+10 -> +11).
        ("Australia/Sydney", dt.date(2026, 4, 4), dt.datetime(2026, 4, 3, 13, 0, tzinfo=UTC)),
        ("Australia/Sydney", dt.date(2026, 4, 6), dt.datetime(2026, 4, 5, 14, 0, tzinfo=UTC)),
        ("Australia/Sydney", dt.date(2026, 10, 3), dt.datetime(2026, 10, 2, 14, 0, tzinfo=UTC)),
        ("Australia/Sydney", dt.date(2026, 10, 5), dt.datetime(2026, 10, 4, 13, 0, tzinfo=UTC)),
        # London: summer time starts 29 Mar 2026 (UTC+0 -> +1), ends 25 Oct 2026.
        ("Europe/London", dt.date(2026, 3, 28), dt.datetime(2026, 3, 28, 0, 0, tzinfo=UTC)),
        ("Europe/London", dt.date(2026, 3, 30), dt.datetime(2026, 3, 29, 23, 0, tzinfo=UTC)),
        ("Europe/London", dt.date(2026, 10, 26), dt.datetime(2026, 10, 26, 0, 0, tzinfo=UTC)),
        # Brisbane has no daylight saving.
        ("Australia/Brisbane", dt.date(2026, 10, 5), dt.datetime(2026, 10, 4, 14, 0, tzinfo=UTC)),
    ],
)
def test_windows_open_at_local_midnight_across_daylight_saving(zone: str, local_day: dt.date, utc_instant: dt.datetime) -> None:
    assert local_midnight(local_day, zone) == utc_instant


def test_a_window_spans_whole_local_days() -> None:
    (first,) = plan(
        randomised_on=dt.date(2026, 9, 5),
        followup_end=dt.date(2030, 1, 1),
        max_months=1,
        rules=[MONTHLY],
        zone="Australia/Sydney",
    )
    assert first.due_date == dt.date(2026, 10, 5)
    assert first.opens_at == dt.datetime(2026, 10, 1, 14, 0, tzinfo=UTC)  # 2 Oct 00:00 AEST
    assert first.closes_at == dt.datetime(2026, 10, 19, 13, 0, tzinfo=UTC)  # 20 Oct 00:00 AEDT


@pytest.fixture
def randomised(walkback: Trial, enrol, coordinator, sealed_list):  # type: ignore[no-untyped-def]
    with time_machine.travel(dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC), tick=False):
        participant = enrol()
        journey.participant_randomise(participant_id=participant.pk, by=coordinator)
    participant.refresh_from_db()
    return participant


def test_randomisation_plans_the_schedule_in_the_participants_time_zone(walkback: Trial, randomised) -> None:
    occurrences = list(
        Occurrence.objects.filter(participant=randomised).exclude(instrument="baseline").order_by("due_date", "instrument")
    )
    # walkback's follow-up ends 2 Dec 2029 (fixture): all 36 months fit, plus 4 timepoints.
    assert sum(o.instrument == "monthly" for o in occurrences) == 36
    assert [o.month for o in occurrences if o.instrument == "timepoint"] == [3, 6, 9, 12]
    first = occurrences[0]
    assert (first.instrument, first.due_date) == ("monthly", dt.date(2026, 4, 2))
    assert first.status == OccurrenceStatus.SCHEDULED


def test_the_sweep_opens_and_misses_windows_and_is_idempotent(randomised) -> None:
    first = Occurrence.objects.filter(participant=randomised).exclude(instrument="baseline").order_by("due_date").first()
    assert first is not None
    services.occurrences_advance(now=first.opens_at)
    services.occurrences_advance(now=first.opens_at)
    first.refresh_from_db()
    assert first.status == OccurrenceStatus.OPEN
    assert Occurrence.objects.filter(participant=randomised, status=OccurrenceStatus.OPEN).count() == 1
    _, missed = services.occurrences_advance(now=first.closes_at)
    first.refresh_from_db()
    assert first.status == OccurrenceStatus.MISSED and missed == 1
    assert services.occurrences_advance(now=first.closes_at) == (0, 0)


def test_withdrawal_from_follow_up_cancels_open_and_future_but_keeps_the_past(randomised, coordinator) -> None:
    occurrences = list(Occurrence.objects.filter(participant=randomised).order_by("due_date"))
    Occurrence.objects.filter(pk=occurrences[0].pk).update(
        status=OccurrenceStatus.COMPLETED, completed_at=occurrences[0].closes_at
    )
    Occurrence.objects.filter(pk=occurrences[1].pk).update(status=OccurrenceStatus.OPEN)
    journey.participant_withdraw(participant=randomised, scope="followup", reason="Too busy", by=coordinator)
    statuses = dict(Occurrence.objects.filter(participant=randomised).values_list("pk", "status"))
    assert statuses[occurrences[0].pk] == OccurrenceStatus.COMPLETED
    assert statuses[occurrences[1].pk] == OccurrenceStatus.CANCELLED
    assert set(statuses.values()) == {OccurrenceStatus.COMPLETED, OccurrenceStatus.CANCELLED}


def test_withdrawing_from_the_intervention_only_keeps_follow_up(randomised, coordinator) -> None:
    journey.participant_withdraw(participant=randomised, scope="intervention", reason="Prefers own exercise", by=coordinator)
    assert not Occurrence.objects.filter(participant=randomised, status=OccurrenceStatus.CANCELLED).exists()


def test_an_earlier_end_date_replans_future_occurrences_and_never_touches_completed_ones(walkback: Trial, randomised) -> None:
    done = Occurrence.objects.filter(participant=randomised, instrument="monthly", month=1).get()
    Occurrence.objects.filter(pk=done.pk).update(status=OccurrenceStatus.COMPLETED, completed_at=done.closes_at)
    walkback.recruitment_end, walkback.followup_end = dt.date(2026, 3, 15), dt.date(2027, 3, 15)
    walkback.save()
    result = services.schedule_replan(trial=walkback, reason="Funding ends early", now=dt.datetime(2026, 3, 3, tzinfo=UTC))
    active = Occurrence.objects.filter(participant=randomised).exclude(status=OccurrenceStatus.CANCELLED)
    assert active.filter(instrument="monthly").count() == 12
    assert result.cancelled == 24
    done.refresh_from_db()
    assert done.status == OccurrenceStatus.COMPLETED
    cancelled = Occurrence.objects.filter(participant=randomised, status=OccurrenceStatus.CANCELLED)
    assert cancelled.count() == 24 and all(o.cancelled_reason for o in cancelled)


def test_a_changed_window_moves_occurrences_not_yet_open(walkback: Trial, randomised) -> None:
    ScheduleRule.objects.filter(trial=walkback, instrument="monthly").update(close_days_after=21)
    result = services.schedule_replan(trial=walkback, reason="Longer window", now=dt.datetime(2026, 3, 3, tzinfo=UTC))
    assert result.moved == 36
    first = Occurrence.objects.get(participant=randomised, instrument="monthly", month=1)
    assert first.closes_at == dt.datetime(2026, 4, 23, 14, 0, tzinfo=UTC)  # 24 Apr 00:00 AEST


def test_schedule_api_contract(randomised, coordinator, make_staff) -> None:
    api = APIClient()
    api.force_authenticate(coordinator)
    items = api.get(f"/api/v1/participants/{randomised.pk}/schedule/").json()
    assert len(items) == 41  # the baseline (month 0, completed at enrolment), then 36 monthly and 4 timepoints
    assert set(items[0]) >= {"id", "instrument", "opens_at", "due_date", "closes_at", "status"}
    assert (items[0]["instrument"], items[0]["month"], items[0]["status"]) == ("baseline", 0, "completed")
    assert items[1]["due_date"] == "2026-04-02" and items[1]["status"] == "scheduled"
    other = APIClient()
    other.force_authenticate(make_staff("coordinator", sites=["WOL"], username="wol"))
    assert other.get(f"/api/v1/participants/{randomised.pk}/schedule/").status_code == 404
