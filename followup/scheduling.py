"""Follow-up schedule arithmetic, as pure functions: calendar months, windows, time zones."""

from __future__ import annotations

import calendar
import datetime as dt
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass


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


def plan(
    *, randomised_on: dt.date, followup_end: dt.date, max_months: int, rules: Iterable[RuleSpec], zone: str
) -> list[Planned]:
    """Every occurrence due from one month after randomisation to the earlier of ``max_months``
    and the trial's common end of follow-up. A window opens at local midnight
    ``open_days_before`` the due date and closes at the end of the local day ``close_days_after`` it."""
    planned = []
    for rule in rules:
        for month in rule.months:
            if month < 1 or month > max_months:
                continue
            due = add_months(randomised_on, month)
            if due > followup_end:
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
