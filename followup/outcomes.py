"""The trial's recurrence outcomes, derived from the monthly questionnaires.

Written to be read by a statistician. Pure functions: no database. ``followup.services.outcomes_derive``
feeds them a participant's monthly answers and stores the result, in the same transaction as
any change to those answers.

Time zero is the randomisation date (in the participant's time zone). For each outcome:

* **any**: the first monthly answer reporting low back pain lasting 24 hours or more.
* **activity_limiting** (primary): as *any*, and the pain interfered with daily activities at
  least ``interference_threshold`` (0-4; 2 = "somewhat"), and, when ``pain_threshold`` is set,
  average pain was at least that (0-10).
* **care_seeking**: as *any*, and care was sought from a health professional.

The event date is the start date the participant gave for that pain (so a recurrence reported a
month late keeps its real date); if it is missing, the date the questionnaire was due. Days are
counted from randomisation to the event date.

Without an event, the participant is censored:

* at the date of their last completed monthly questionnaire (the last day we know they were
  free of the event), with the reason *withdrawal* if they withdrew from follow-up,
  *administrative_end* if their follow-up schedule has ended, else *last_questionnaire*;
* or, by configuration (``censor_withdrawn_at`` / ``censor_completed_at`` = ``event_date``), at
  the withdrawal date or the end-of-follow-up date itself.

A participant with no completed monthly questionnaire is censored at day 0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ACTIVITY_LIMITING, ANY, CARE_SEEKING = "activity_limiting", "any", "care_seeking"
OUTCOMES = (ACTIVITY_LIMITING, ANY, CARE_SEEKING)


@dataclass(frozen=True)
class Rules:
    interference_threshold: int = 2
    pain_threshold: int | None = 2
    censor_withdrawn_at: str = "last_questionnaire"  # or "event_date": the withdrawal date
    censor_completed_at: str = "last_questionnaire"  # or "event_date": the end-of-follow-up date


@dataclass(frozen=True)
class MonthlyAnswer:
    """One monthly questionnaire: completed (with answers) or not."""

    occurrence_id: int
    month: int
    due_date: dt.date
    completed_on: dt.date | None  # local date of submission; None when missed or not yet answered
    answers: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    event: bool
    event_date: dt.date | None
    censored_at: dt.date  # where follow-up without an event ends (read only when there is no event)
    censor_reason: str
    days: int
    occurrence_id: int | None = None


@dataclass(frozen=True)
class Summary:
    recurrences: int
    care_seeking_recurrences: int
    work_days_missed: int
    work_days_by_month: dict[str, int]
    monthly_completed: int
    monthly_missed: int


def _truthy(value: Any) -> bool:
    return value is True or value in ("yes", "true", "True", 1)


def _number(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def is_recurrence(answers: Mapping[str, Any]) -> bool:
    return _truthy(answers.get("lbp_24h"))


def is_activity_limiting(answers: Mapping[str, Any], rules: Rules) -> bool:
    if not is_recurrence(answers):
        return False
    interference = _number(answers.get("interference"))
    if interference is None or interference < rules.interference_threshold:
        return False
    if rules.pain_threshold is not None:
        pain = _number(answers.get("pain_avg"))
        return pain is not None and pain >= rules.pain_threshold
    return True


def is_care_seeking(answers: Mapping[str, Any]) -> bool:
    return is_recurrence(answers) and _truthy(answers.get("care_sought"))


CRITERIA = {
    ANY: lambda answers, rules: is_recurrence(answers),
    ACTIVITY_LIMITING: is_activity_limiting,
    CARE_SEEKING: lambda answers, rules: is_care_seeking(answers),
}


def derive(
    *,
    outcome: str,
    randomised_on: dt.date,
    monthly: Iterable[MonthlyAnswer],
    rules: Rules,
    withdrawn_on: dt.date | None = None,
    followup_ended_on: dt.date | None = None,
) -> Result:
    """One outcome of one participant. ``followup_ended_on`` is set once their schedule is over
    (the administrative end); ``withdrawn_on`` when they withdrew from follow-up."""
    answered = sorted((m for m in monthly if m.completed_on is not None), key=lambda m: (m.due_date, m.month))
    criterion = CRITERIA[outcome]
    events = []
    for answer in answered:
        if criterion(answer.answers, rules):
            started = _date(answer.answers.get("lbp_start")) or answer.due_date
            events.append((max(started, randomised_on), answer.occurrence_id))
    last = answered[-1].completed_on if answered else randomised_on
    assert last is not None
    if withdrawn_on is not None:
        reason = "withdrawal"
        at = withdrawn_on if rules.censor_withdrawn_at == "event_date" else last
    elif followup_ended_on is not None:
        reason = "administrative_end"
        at = followup_ended_on if rules.censor_completed_at == "event_date" else last
    else:
        reason, at = "last_questionnaire", last
    at = max(at, randomised_on)
    if events:
        # The censoring the participant would have without the event is kept too (an
        # adjudicator may rule the event out); analysis reads it only when there is no event.
        event_date, occurrence_id = min(events)
        return Result(True, event_date, at, reason, (event_date - randomised_on).days, occurrence_id)
    return Result(False, None, at, reason, (at - randomised_on).days)


def summarise(*, monthly: Iterable[MonthlyAnswer]) -> Summary:
    """Recurrences reported, care sought, days off work by month, questionnaires answered and missed."""
    months = sorted(monthly, key=lambda m: m.month)
    completed = [m for m in months if m.completed_on is not None]
    work = {str(m.month): _number(m.answers.get("work_days_missed")) or 0 for m in completed if is_recurrence(m.answers)}
    return Summary(
        recurrences=sum(1 for m in completed if is_recurrence(m.answers)),
        care_seeking_recurrences=sum(1 for m in completed if is_care_seeking(m.answers)),
        work_days_missed=sum(work.values()),
        work_days_by_month=work,
        monthly_completed=len(completed),
        monthly_missed=sum(1 for m in months if m.completed_on is None),
    )
