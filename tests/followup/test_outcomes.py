"""Recurrence outcomes derived from crafted monthly histories, kept current with the answers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine

from followup import services
from followup.models import Occurrence, Outcome, OutcomeSummary
from followup.outcomes import (
    ACTIVITY_LIMITING,
    ANY,
    CARE_SEEKING,
    MonthlyAnswer,
    Rules,
    derive,
    episodes,
    episodes_after_end,
    summarise,
)
from participants import services as journey
from participants.models import Participant
from tests import monthly as posted
from trial.errors import ApplicationError, NotAllowed
from trial.models import Trial

DAY0 = dt.date(2026, 1, 31)
RULES = Rules()
NO = {"lbp_24h": False, "new_health_problem": False}


def month(n: int, answers: dict[str, Any] | None, *, late: int = 0) -> MonthlyAnswer:
    """Month ``n`` due on day 30n; answered ``late`` days after it was due, or missed (None)."""
    due = DAY0 + dt.timedelta(days=30 * n)
    return MonthlyAnswer(n, n, due, None if answers is None else due + dt.timedelta(days=late), answers or {})


def pain(start: dt.date, *, interference: int = 3, pain_avg: int = 5, care: bool = False) -> dict[str, Any]:
    return {
        "lbp_24h": True,
        "lbp_start": start.isoformat(),
        "interference": interference,
        "pain_avg": pain_avg,
        "care_sought": care,
        "work_days_missed": 2,
    }


def all_three(history: list[MonthlyAnswer], **kwargs: Any) -> dict[str, Any]:
    return {
        code: derive(outcome=code, randomised_on=DAY0, monthly=history, rules=RULES, **kwargs)
        for code in (ACTIVITY_LIMITING, ANY, CARE_SEEKING)
    }


def test_an_event_in_the_first_month_dates_from_the_reported_start() -> None:
    result = all_three([month(1, pain(dt.date(2026, 2, 10), care=True))])
    for code in (ACTIVITY_LIMITING, ANY, CARE_SEEKING):
        assert (result[code].event, result[code].event_date, result[code].days) == (True, dt.date(2026, 2, 10), 10)


def episode(
    start: dt.date, *, lasted_24h: bool = True, interference: int = 3, pain_avg: int = 5, care: bool = False
) -> dict[str, Any]:
    return {
        "start": start.isoformat(),
        "24h": lasted_24h,
        "interference": interference,
        "pain_avg": pain_avg,
        "pain_worst": pain_avg + 1,
        "care_sought": care,
        "work_days_missed": 1,
    }


def version_2(*found: dict[str, Any]) -> dict[str, Any]:
    """A version-2 monthly answer reporting these episodes, in order."""
    answers: dict[str, Any] = {"lbp_any": bool(found), "new_health_problem": False}
    for number, fields in enumerate(found, start=1):
        answers.update({f"ep{number}_{name}": value for name, value in fields.items()})
        answers[f"ep{number}_more"] = number < len(found)
    return answers


def test_a_mild_episode_then_an_activity_limiting_one_dates_the_primary_event_by_the_second() -> None:
    mild, limiting = episode(dt.date(2026, 2, 3), interference=1), episode(dt.date(2026, 2, 17))
    result = all_three([month(1, version_2(mild, limiting))])
    assert result[ANY].event_date == dt.date(2026, 2, 3)
    assert result[ACTIVITY_LIMITING].event_date == dt.date(2026, 2, 17)
    assert result[ACTIVITY_LIMITING].days == 17


def test_two_mild_episodes_in_a_month_are_not_one_activity_limiting_event() -> None:
    history = [month(1, version_2(episode(dt.date(2026, 2, 3), interference=1), episode(dt.date(2026, 2, 20), pain_avg=1)))]
    result = all_three(history)
    assert result[ANY].event and not result[ACTIVITY_LIMITING].event
    assert summarise(monthly=history).recurrences == 2


def test_an_episode_shorter_than_24_hours_is_no_recurrence() -> None:
    result = all_three([month(1, version_2(episode(dt.date(2026, 2, 3), lasted_24h=False, care=True)))])
    assert not any(r.event for r in result.values())


def test_a_version_1_answer_reads_as_one_episode() -> None:
    (only,) = episodes(pain(dt.date(2026, 2, 10), care=True))
    assert (only.start, only.lasted_24h, only.interference, only.care_sought) == (dt.date(2026, 2, 10), True, 3, True)
    assert episodes(NO) == [] and episodes(version_2()) == []


def test_nothing_counts_after_the_participants_own_end_of_follow_up() -> None:
    ends = DAY0 + dt.timedelta(days=365)
    # The last questionnaire came 10 days late and reports an episode 5 days after the end.
    history = [month(n, NO) for n in range(1, 12)] + [month(12, version_2(episode(ends + dt.timedelta(days=5))), late=10)]
    result = derive(outcome=ANY, randomised_on=DAY0, monthly=history, rules=RULES, followup_ends_on=ends)
    assert not result.event
    assert result.censored_at == ends and result.days == 365
    assert [e.start for _id, e in episodes_after_end(randomised_on=DAY0, monthly=history, followup_ends_on=ends)] == [
        ends + dt.timedelta(days=5)
    ]


def test_a_recurrence_reported_a_month_late_keeps_its_real_date() -> None:
    history = [month(1, NO), month(2, NO), month(3, pain(dt.date(2026, 3, 5)))]  # in month 3, about early March
    assert derive(outcome=ANY, randomised_on=DAY0, monthly=history, rules=RULES).event_date == dt.date(2026, 3, 5)


def test_missed_months_before_an_event_do_not_move_it() -> None:
    history = [month(1, None), month(2, None), month(3, pain(dt.date(2026, 4, 20)))]
    result = derive(outcome=ACTIVITY_LIMITING, randomised_on=DAY0, monthly=history, rules=RULES)
    assert result.event and result.days == (dt.date(2026, 4, 20) - DAY0).days


def test_without_an_event_the_participant_is_censored_at_the_last_completed_questionnaire() -> None:
    history = [month(1, NO), month(2, NO, late=3), month(3, None)]
    result = derive(outcome=ANY, randomised_on=DAY0, monthly=history, rules=RULES)
    assert (result.event, result.censored_at, result.censor_reason) == (False, DAY0 + dt.timedelta(days=63), "last_questionnaire")
    assert result.days == 63


def test_withdrawal_censors_with_its_reason_at_the_last_questionnaire_or_by_configuration_its_date() -> None:
    history = [month(1, NO), month(2, NO)]
    withdrawn = dt.date(2026, 5, 1)
    default = derive(outcome=ANY, randomised_on=DAY0, monthly=history, rules=RULES, withdrawn_on=withdrawn)
    assert (default.censored_at, default.censor_reason) == (DAY0 + dt.timedelta(days=60), "withdrawal")
    at_date = derive(
        outcome=ANY, randomised_on=DAY0, monthly=history, rules=Rules(censor_withdrawn_at="event_date"), withdrawn_on=withdrawn
    )
    assert (at_date.censored_at, at_date.days) == (withdrawn, (withdrawn - DAY0).days)


def test_administrative_end_censors_with_its_reason() -> None:
    history = [month(n, NO) for n in range(1, 13)]
    end = DAY0 + dt.timedelta(days=360)
    result = derive(outcome=ACTIVITY_LIMITING, randomised_on=DAY0, monthly=history, rules=RULES, followup_ended_on=end)
    assert (result.event, result.censored_at, result.censor_reason) == (False, end, "administrative_end")


def test_a_recurrence_that_did_not_limit_activity_is_an_event_only_for_any() -> None:
    mild = pain(dt.date(2026, 2, 10), interference=1)
    result = all_three([month(1, mild), month(2, NO)])
    assert result[ANY].event and not result[ACTIVITY_LIMITING].event and not result[CARE_SEEKING].event
    assert result[ACTIVITY_LIMITING].censored_at == DAY0 + dt.timedelta(days=60)


def test_the_pain_threshold_is_configurable() -> None:
    low_pain = [month(1, pain(dt.date(2026, 2, 10), interference=2, pain_avg=1))]
    assert not derive(outcome=ACTIVITY_LIMITING, randomised_on=DAY0, monthly=low_pain, rules=RULES).event
    assert derive(outcome=ACTIVITY_LIMITING, randomised_on=DAY0, monthly=low_pain, rules=Rules(pain_threshold=None)).event


def test_care_sought_without_activity_limitation_is_care_seeking_but_not_primary() -> None:
    result = all_three([month(1, pain(dt.date(2026, 2, 10), interference=0, care=True))])
    assert result[CARE_SEEKING].event and result[ANY].event and not result[ACTIVITY_LIMITING].event


def test_the_earliest_event_wins_and_nothing_precedes_randomisation() -> None:
    history = [month(1, pain(dt.date(2026, 1, 20))), month(2, pain(dt.date(2026, 3, 1)))]
    assert derive(outcome=ANY, randomised_on=DAY0, monthly=history, rules=RULES).days == 0


def test_the_summary_counts_recurrences_work_absence_and_missed_months() -> None:
    summary = summarise(
        monthly=[
            month(1, pain(dt.date(2026, 2, 10), care=True)),
            month(2, NO),
            month(3, None),
            month(4, pain(dt.date(2026, 5, 2))),
        ]
    )
    assert (summary.recurrences, summary.care_seeking_recurrences, summary.work_days_missed) == (2, 1, 4)
    assert summary.work_days_by_month == {"1": 2, "4": 2}
    assert (summary.monthly_completed, summary.monthly_missed) == (3, 1)
    assert (summary.missed_in_a_row, summary.last_missed_occurrence_id) == (0, None)  # month 4 answered after


@pytest.mark.parametrize(
    ("history", "in_a_row", "last"),
    [
        ("", 0, None),
        ("mmm", 3, 3),
        ("mcmm", 2, 4),  # an answer in between starts the count again
        ("mmc", 0, None),
        ("cmmcm", 1, 5),
    ],
)
def test_the_summary_counts_the_questionnaires_missed_since_the_latest_answered(
    history: str, in_a_row: int, last: int | None
) -> None:
    monthly = [month(n, None if code == "m" else NO) for n, code in enumerate(history, start=1)]
    summary = summarise(monthly=list(reversed(monthly)))  # in any order
    assert (summary.missed_in_a_row, summary.last_missed_occurrence_id) == (in_a_row, last)
    assert summary.last_missed_due == (DAY0 + dt.timedelta(days=30 * last) if last else None)


# --- Stored with the answers, in the same transaction -------------------------------------------

RANDOMISED_AT = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)  # 2 March in Sydney
IN_MONTH_1 = dt.datetime(2026, 4, 2, 2, 0, tzinfo=dt.UTC)
RECURRENCE = posted.monthly(posted.episode("2026-03-20", interference=2, pain_avg=4, pain_worst=7, work_days_missed=2))


@pytest.fixture
def randomised(walkback: Trial, enrol, coordinator, sealed_list):  # type: ignore[no-untyped-def]
    with time_machine.travel(RANDOMISED_AT, tick=False):
        participant = enrol()
        journey.participant_randomise(participant_id=participant.pk, by=coordinator)
    participant.refresh_from_db()
    return participant


def answer(participant: Any, raw: dict[str, Any]) -> Any:
    occurrence = Occurrence.objects.get(participant=participant, instrument="monthly", month=1)
    with time_machine.travel(IN_MONTH_1, tick=False):
        services.occurrences_advance(now=IN_MONTH_1)
        return services.response_submit(occurrence=occurrence, raw=raw, source="participant").response


def outcomes(participant: Any) -> dict[str, Outcome]:
    return {o.code: o for o in Outcome.objects.filter(participant=participant)}


def test_randomisation_writes_exactly_what_deriving_would(randomised) -> None:
    """``outcomes_start`` (randomisation's shortcut) and ``outcomes_derive`` agree: deriving again
    right after randomisation changes no outcome and no summary figure (only the time derived)."""
    fields = ("event", "event_date", "censored_at", "censor_reason", "days", "source_occurrence_id", "derived_at")
    summary_fields = ("recurrences", "monthly_completed", "monthly_missed", "missed_in_a_row", "work_days_by_month")

    def stored() -> tuple[Any, ...]:
        summary = OutcomeSummary.objects.get(participant=randomised)
        return (
            {code: tuple(getattr(o, f) for f in fields) for code, o in outcomes(randomised).items()},
            tuple(getattr(summary, f) for f in summary_fields),
        )

    at_randomisation = stored()
    assert set(at_randomisation[0]) == {"activity_limiting", "any", "care_seeking"}
    assert {v[:5] for v in at_randomisation[0].values()} == {(False, None, dt.date(2026, 3, 2), "last_questionnaire", 0)}
    with time_machine.travel(IN_MONTH_1, tick=False):
        services.outcomes_derive(participant=Participant.objects.get(pk=randomised.pk))
    assert stored() == at_randomisation  # derived_at included: an outcome whose values did not change is not saved


def test_answers_derive_the_outcomes_at_once(randomised) -> None:
    answer(randomised, RECURRENCE)
    stored = outcomes(randomised)
    assert (stored["activity_limiting"].event, stored["activity_limiting"].event_date, stored["activity_limiting"].days) == (
        True,
        dt.date(2026, 3, 20),
        18,
    )
    assert stored["any"].event and not stored["care_seeking"].event
    assert (
        stored["care_seeking"].censored_at == dt.date(2026, 4, 2) and stored["care_seeking"].censor_reason == "last_questionnaire"
    )
    assert OutcomeSummary.objects.get(participant=randomised).work_days_missed == 2


def test_a_corrected_answer_derives_again(randomised, coordinator) -> None:
    response = answer(randomised, RECURRENCE)
    with pytest.raises(ApplicationError, match="why"):
        services.response_correct(response=response, raw={**RECURRENCE, "ep1_interference": "1"}, reason="", by=coordinator)
    services.response_correct(
        response=response,
        raw={**RECURRENCE, "ep1_interference": "1"},
        reason="Query 12: participant meant 'a little'",
        by=coordinator,
    )
    stored = outcomes(randomised)
    assert not stored["activity_limiting"].event and stored["any"].event


def test_withdrawal_from_followup_changes_the_censoring_reason(randomised, coordinator) -> None:
    answer(randomised, posted.NO_PAIN)
    with time_machine.travel(IN_MONTH_1 + dt.timedelta(days=5), tick=False):
        journey.participant_withdraw(participant=randomised, scope="followup", reason="Moved away", by=coordinator)
    assert {o.censor_reason for o in outcomes(randomised).values()} == {"withdrawal"}


def test_an_adjudication_overrides_and_keeps_the_derived_value(randomised, make_staff, coordinator) -> None:
    answer(randomised, RECURRENCE)
    primary = outcomes(randomised)["activity_limiting"]
    datamanager = make_staff("data_manager")
    with pytest.raises(NotAllowed):
        services.outcome_adjudicate(outcome=primary, event=True, event_date=dt.date(2026, 3, 25), reason="x", by=coordinator)
    with pytest.raises(ApplicationError) as missing:
        services.outcome_adjudicate(outcome=primary, event=True, event_date=None, reason="", by=datamanager)
    assert set(missing.value.errors) == {"reason", "event_date"}
    services.outcome_adjudicate(
        outcome=primary, event=True, event_date=dt.date(2026, 3, 25), reason="Phone call: pain began on the 25th", by=datamanager
    )
    primary.refresh_from_db()
    assert primary.event_date == dt.date(2026, 3, 20)  # derived, kept
    final = services.outcome_final(outcome=primary, randomised_on=dt.date(2026, 3, 2))
    assert (final.event_date, final.days, final.adjudicated) == (dt.date(2026, 3, 25), 23, True)
    services.outcome_adjudicate(
        outcome=primary, event=False, event_date=None, reason="Not a recurrence: a kidney stone", by=datamanager
    )
    primary.refresh_from_db()
    final = services.outcome_final(outcome=primary, randomised_on=dt.date(2026, 3, 2))
    assert (final.event, final.censored_at, final.censor_reason) == (False, dt.date(2026, 4, 2), "last_questionnaire")
