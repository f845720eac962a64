"""Free time, as pure functions: weekly hours at a clinic (in the clinic's time zone), one-off
extra time, minus leave, public holidays and sessions already booked, cut into slots."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Weekly:
    site_id: int
    zone: str
    weekday: int  # 0 = Monday
    start: dt.time
    end: dt.time
    modes: frozenset[str]


@dataclass(frozen=True)
class Extra:
    site_id: int
    zone: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    modes: frozenset[str]


@dataclass(frozen=True)
class Slot:
    site_id: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    modes: frozenset[str]


def _local(day: dt.date, at: dt.time, zone: str) -> dt.datetime:
    return dt.datetime.combine(day, at, tzinfo=zoneinfo.ZoneInfo(zone)).astimezone(dt.UTC)


def _cut(site_id: int, start: dt.datetime, end: dt.datetime, modes: frozenset[str], minutes: int) -> list[Slot]:
    step = dt.timedelta(minutes=minutes)
    slots = []
    at = start
    while at + step <= end:
        slots.append(Slot(site_id, at, at + step, modes))
        at += step
    return slots


def free_slots(
    *,
    date_from: dt.date,
    date_to: dt.date,
    weekly: Iterable[Weekly],
    extras: Iterable[Extra],
    blocked: Iterable[tuple[dt.datetime, dt.datetime]],
    holidays: Iterable[tuple[int, dt.date]],
    offered_modes: frozenset[str],
    slot_minutes: int,
    not_before: dt.datetime | None = None,
) -> list[Slot]:
    """Every free slot from ``date_from`` to ``date_to`` (inclusive, local dates of each clinic).

    Weekly hours are wall-clock times at the clinic, so a 09:00 start stays 09:00 across a
    daylight-saving change. A slot offers the modes of its hours (or every mode the
    physiotherapist offers, when its hours list none) that the physiotherapist offers.
    """
    closed = set(holidays)
    blocked = sorted(blocked)
    slots: list[Slot] = []
    weekly = list(weekly)
    day = date_from
    while day <= date_to:
        for hours in weekly:
            if hours.weekday != day.weekday() or (hours.site_id, day) in closed:
                continue
            modes = (hours.modes or offered_modes) & offered_modes
            if modes:
                slots += _cut(
                    hours.site_id, _local(day, hours.start, hours.zone), _local(day, hours.end, hours.zone), modes, slot_minutes
                )
        day += dt.timedelta(days=1)
    for extra in extras:
        first, last = _local(date_from, dt.time(0), extra.zone), _local(date_to + dt.timedelta(days=1), dt.time(0), extra.zone)
        modes = (extra.modes or offered_modes) & offered_modes
        if modes and extra.ends_at > first and extra.starts_at < last:
            slots += [
                s for s in _cut(extra.site_id, extra.starts_at, extra.ends_at, modes, slot_minutes) if first <= s.starts_at < last
            ]
    free = []
    seen: set[dt.datetime] = set()
    for slot in sorted(slots, key=lambda s: (s.starts_at, s.site_id)):
        if slot.starts_at in seen:
            continue  # extra time over weekly hours: one slot
        if not_before is not None and slot.starts_at <= not_before:
            continue
        if any(start < slot.ends_at and slot.starts_at < end for start, end in blocked):
            continue
        seen.add(slot.starts_at)
        free.append(slot)
    return free
