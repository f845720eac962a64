"""Follow-up schedule arithmetic, as pure functions: calendar months, windows, time zones."""

from __future__ import annotations

import calendar
import datetime as dt
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass

from messaging.timing import allowed_send_time, local_at


def add_months(start: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months later, or that month's last day when it is shorter.

    Always counted from ``start``, never chained: 31 Jan + 1 = 28 (or 29) Feb, 31 Jan + 2 = 31 Mar.
    """
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class RuleSpec:
    instrument: str
    months: tuple[int, ...]  # the months after randomisation at which it is due
    open_days_before: int
    close_days_after: int


@dataclass(frozen=True)
class Planned:
    instrument: str
    month: int
    due_date: dt.date
    opens_at: dt.datetime
    closes_at: dt.datetime


def local_midnight(day: dt.date, zone: str) -> dt.datetime:
    """The instant a local day begins (aware, UTC), correct across daylight-saving changes."""
    local = dt.datetime.combine(day, dt.time(0, 0), tzinfo=zoneinfo.ZoneInfo(zone))
    return local.astimezone(dt.UTC)


def followup_ends_on(*, randomised_on: dt.date, followup_end: dt.date, max_months: int) -> dt.date:
    """A participant's planned end of follow-up: the earlier of ``max_months`` after randomisation
    and the trial's common end of follow-up. Nothing is due, and no outcome counts, after it."""
    return min(add_months(randomised_on, max_months), followup_end)


def plan(
    *, randomised_on: dt.date, followup_end: dt.date, max_months: int, rules: Iterable[RuleSpec], zone: str
) -> list[Planned]:
    """Every occurrence due from one month after randomisation to the earlier of ``max_months``
    and the trial's common end of follow-up. A window opens at local midnight
    ``open_days_before`` the due date and closes at the end of the local day ``close_days_after`` it."""
    ends_on = followup_ends_on(randomised_on=randomised_on, followup_end=followup_end, max_months=max_months)
    planned = []
    for rule in rules:
        for month in rule.months:
            if month < 1 or month > max_months:
                continue
            due = add_months(randomised_on, month)
            if due > ends_on:
                continue
            planned.append(
                Planned(
                    instrument=rule.instrument,
                    month=month,
                    due_date=due,
                    opens_at=local_midnight(due - dt.timedelta(days=rule.open_days_before), zone),
                    closes_at=local_midnight(due + dt.timedelta(days=rule.close_days_after + 1), zone),
                )
            )
    return sorted(planned, key=lambda p: (p.due_date, p.instrument))


# --- Message timing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedMessage:
    step: str
    planned_at: dt.datetime


def message_steps(
    *,
    opens_at: dt.datetime,
    closes_at: dt.datetime,
    reminder_days: Iterable[int],
    zone: str,
    send_hour: int,
    quiet_start: int,
    quiet_end: int,
    now: dt.datetime,
) -> list[PlannedMessage]:
    """The invitation (on the day the window opens) and reminders (``reminder_days`` later), each
    at ``send_hour`` local time, moved out of quiet hours, and only while the window is open.

    Steps already overdue when planned (a sweep that was down for days) collapse into the latest
    of them, so a participant never gets an invitation and two reminders at once.
    """
    opened_on = opens_at.astimezone(zoneinfo.ZoneInfo(zone)).date()
    steps = [("invitation", 0)] + [(f"reminder-{i}", int(days)) for i, days in enumerate(sorted(set(reminder_days)), 1)]
    planned = []
    for step, days in steps:
        at = local_at(opened_on + dt.timedelta(days=days), send_hour, zone)
        at = allowed_send_time(max(at, opens_at), zone=zone, quiet_start=quiet_start, quiet_end=quiet_end)
        if at < closes_at:
            planned.append(PlannedMessage(step, at))
    overdue = [p for p in planned if p.planned_at <= now]
    return overdue[-1:] + [p for p in planned if p.planned_at > now]
