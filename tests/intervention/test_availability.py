"""Free slots as pure functions: what is offered can be booked."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from intervention.availability import Weekly, free_slots

SYDNEY = "Australia/Sydney"


def test_a_slot_starting_this_very_minute_is_not_offered_because_booking_would_refuse_it() -> None:
    monday = dt.date(2026, 3, 2)
    now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=zoneinfo.ZoneInfo(SYDNEY))
    slots = free_slots(
        date_from=monday,
        date_to=monday,
        weekly=[Weekly(1, SYDNEY, 0, dt.time(9), dt.time(11), frozenset({"phone"}))],
        extras=[],
        blocked=[],
        holidays=[],
        offered_modes=frozenset({"phone"}),
        slot_minutes=60,
        not_before=now,
    )
    assert [slot.starts_at for slot in slots] == [now + dt.timedelta(hours=1)]
