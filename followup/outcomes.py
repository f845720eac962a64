"""The trial's recurrence outcomes, derived from the monthly questionnaires' episodes of back pain.

Written to be read by a statistician. Pure functions: no database. ``followup.services.outcomes_derive``
feeds them a participant's monthly answers and stores the result, in the same transaction as
any change to what they depend on.

**Episodes.** Each monthly questionnaire (version 2) records every episode of low back pain since
the last one: its start date, whether it lasted 24 hours or more, how much it interfered with daily
activities (0-4), average and worst pain (0-10), whether care was sought and from whom, days off
work and the recovery date (``episodes``). Version 1 asked about the first episode of the month only
(and only about pain lasting 24 hours or more); its answers read as one episode.

Time zero is the randomisation date (in the participant's time zone). For each outcome, the event
is the **earliest-starting episode** that meets its definition:

* **any**: an episode that lasted 24 hours or more.
* **activity_limiting** (primary): as *any*, and it interfered with daily activities at least
  ``interference_threshold`` (0-4; 2 = "somewhat"), and, when ``pain_threshold`` is set, its
  average pain was at least that (0-10).
* **care_seeking**: as *any*, and care was sought from a health professional for it.

The event date is the episode's start date (so an episode reported a month late keeps its real
date); if it is missing, the date the questionnaire was due; never before randomisation. Days are
counted from randomisation to the event date.

Without an event, the participant is censored:

* at the date of their last completed monthly questionnaire (the last day we know they were
  free of the event), with the reason *withdrawal* if they withdrew from follow-up,
  *administrative_end* if their follow-up schedule has ended, else *last_questionnaire*;
* or, by configuration (``censor_withdrawn_at`` / ``censor_completed_at`` = ``event_date``), at
  the withdrawal date or the end-of-follow-up date itself.

A participant with no completed monthly questionnaire is censored at day 0.

**End of follow-up.** ``followup_ends_on`` is the participant's own planned end (the earlier of the
maximum follow-up and the trial's common end). Nothing counts after it: an episode that starts
later is ignored (``episodes_after_end`` lists them, so they can be shown as such), and censoring
is never later than it, even when the last answer came late in its window.
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
    missed_in_a_row: int = 0  # missed since the latest completed one (the lost-to-follow-up rule)
    last_missed_occurrence_id: int | None = None
    last_missed_due: dt.date | None = None


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


@dataclass(frozen=True)
class Episode:
    """One episode of low back pain as a monthly questionnaire reported it."""

    number: int  # its place in the questionnaire (1 = the first asked about)
    start: dt.date | None
    lasted_24h: bool
    interference: int | None
    pain_avg: int | None
    pain_worst: int | None
    care_sought: bool
    care_from: tuple[str, ...]
    work_days_missed: int
    recovered_on: dt.date | None


def _codes(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return (str(value),) if value not in (None, "") else ()


def _episode(number: int, answers: Mapping[str, Any], prefix: str, *, lasted_24h: bool) -> Episode:
    return Episode(
        number=number,
        start=_date(answers.get(f"{prefix}start")),
        lasted_24h=lasted_24h,
        interference=_number(answers.get(f"{prefix}interference")),
        pain_avg=_number(answers.get(f"{prefix}pain_avg")),
        pain_worst=_number(answers.get(f"{prefix}pain_worst")),
        care_sought=_truthy(answers.get(f"{prefix}care_sought")),
        care_from=_codes(answers.get(f"{prefix}care_from")),
        work_days_missed=_number(answers.get(f"{prefix}work_days_missed")) or 0,
        recovered_on=_date(answers.get(f"{prefix}recovered_on")),
    )


def episodes(answers: Mapping[str, Any]) -> list[Episode]:
    """Every episode one monthly questionnaire reported, in the order asked.

    Version 2 (``lbp_any``, then ``ep1_*``, ``ep2_*`` ... while ``ep{n}_more`` is yes); version 1
    (``lbp_24h``, ``lbp_start``, ``interference`` ...) reads as one episode of 24 hours or more."""
    if "lbp_any" in answers:
        found: list[Episode] = []
        if not _truthy(answers.get("lbp_any")):
            return found
        number = 1
        while f"ep{number}_start" in answers or f"ep{number}_24h" in answers:
            prefix = f"ep{number}_"
            found.append(_episode(number, answers, prefix, lasted_24h=_truthy(answers.get(f"{prefix}24h"))))
            if not _truthy(answers.get(f"{prefix}more")):
                break
            number += 1
        return found
    if _truthy(answers.get("lbp_24h")):
        version_1 = {**answers, "start": answers.get("lbp_start")}
        return [_episode(1, version_1, "", lasted_24h=True)]
    return []


def is_recurrence(episode: Episode) -> bool:
    return episode.lasted_24h


def is_activity_limiting(episode: Episode, rules: Rules) -> bool:
    if not is_recurrence(episode):
        return False
    if episode.interference is None or episode.interference < rules.interference_threshold:
        return False
    if rules.pain_threshold is not None:
        return episode.pain_avg is not None and episode.pain_avg >= rules.pain_threshold
    return True


def is_care_seeking(episode: Episode) -> bool:
    return is_recurrence(episode) and episode.care_sought


CRITERIA = {
    ANY: lambda episode, rules: is_recurrence(episode),
    ACTIVITY_LIMITING: is_activity_limiting,
    CARE_SEEKING: lambda episode, rules: is_care_seeking(episode),
}


def _dated(answer: MonthlyAnswer, randomised_on: dt.date) -> list[tuple[dt.date, Episode]]:
    return [(max(episode.start or answer.due_date, randomised_on), episode) for episode in episodes(answer.answers)]


def episodes_after_end(
    *, randomised_on: dt.date, monthly: Iterable[MonthlyAnswer], followup_ends_on: dt.date | None
) -> list[tuple[int, Episode]]:
    """(occurrence id, episode) of every reported episode that started after the participant's end
    of follow-up: reported, kept in the answers, but never an event."""
    if followup_ends_on is None:
        return []
    return [
        (answer.occurrence_id, episode)
        for answer in monthly
        if answer.completed_on is not None
        for started, episode in _dated(answer, randomised_on)
        if started > followup_ends_on
    ]


def derive(
    *,
    outcome: str,
    randomised_on: dt.date,
    monthly: Iterable[MonthlyAnswer],
    rules: Rules,
    withdrawn_on: dt.date | None = None,
    followup_ended_on: dt.date | None = None,
    followup_ends_on: dt.date | None = None,
) -> Result:
    """One outcome of one participant. ``followup_ended_on`` is set once their schedule is over
    (the administrative end); ``withdrawn_on`` when they withdrew from follow-up;
    ``followup_ends_on`` is their planned end of follow-up, after which nothing counts."""
    answered = sorted((m for m in monthly if m.completed_on is not None), key=lambda m: (m.due_date, m.month))
    criterion = CRITERIA[outcome]
    events = [
        (started, answer.occurrence_id)
        for answer in answered
        for started, episode in _dated(answer, randomised_on)
        if criterion(episode, rules) and (followup_ends_on is None or started <= followup_ends_on)
    ]
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
    if followup_ends_on is not None:
        at = min(at, followup_ends_on)
    at = max(at, randomised_on)
    if events:
        # The censoring the participant would have without the event is kept too (an
        # adjudicator may rule the event out); analysis reads it only when there is no event.
        event_date, occurrence_id = min(events)
        return Result(True, event_date, at, reason, (event_date - randomised_on).days, occurrence_id)
    return Result(False, None, at, reason, (at - randomised_on).days)


def summarise(*, monthly: Iterable[MonthlyAnswer]) -> Summary:
    """Recurrences (episodes of 24 hours or more) reported, care sought, days off work by month,
    questionnaires answered and missed, and those missed since the latest answered (the last N
    closed were all missed exactly when at least N were missed after the latest completed one)."""
    months = sorted(monthly, key=lambda m: m.month)
    completed = [m for m in months if m.completed_on is not None]
    reported = [(m, [e for e in episodes(m.answers) if is_recurrence(e)]) for m in completed]
    work = {str(m.month): sum(e.work_days_missed for e in found) for m, found in reported if found}
    latest = max((m.due_date for m in completed), default=None)
    trailing = [m for m in months if m.completed_on is None and (latest is None or m.due_date > latest)]
    last_missed = max(trailing, key=lambda m: (m.due_date, m.occurrence_id), default=None)
    return Summary(
        recurrences=sum(len(found) for _m, found in reported),
        care_seeking_recurrences=sum(1 for _m, found in reported for e in found if is_care_seeking(e)),
        work_days_missed=sum(work.values()),
        work_days_by_month=work,
        monthly_completed=len(completed),
        monthly_missed=sum(1 for m in months if m.completed_on is None),
        missed_in_a_row=len(trailing),
        last_missed_occurrence_id=last_missed.occurrence_id if last_missed else None,
        last_missed_due=last_missed.due_date if last_missed else None,
    )
