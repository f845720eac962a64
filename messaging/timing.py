"""When a message may go out: local hours and quiet hours, across daylight-saving changes."""

from __future__ import annotations

import datetime as dt
import zoneinfo


def in_quiet_hours(hour: int, *, quiet_start: int, quiet_end: int) -> bool:
    """Whether a local hour falls in quiet hours (which may span midnight, e.g. 21 to 8)."""
    if quiet_start == quiet_end:
        return False
    if quiet_start < quiet_end:
        return quiet_start <= hour < quiet_end
    return hour >= quiet_start or hour < quiet_end


def local_at(day: dt.date, hour: int, zone: str) -> dt.datetime:
    """The instant (UTC) a local day reaches ``hour``. A wall time skipped by a daylight-saving
    change resolves to the instant just after the gap (02:30 on a spring-forward day is 03:30)."""
    # fold=0 reads a wall time in a gap with the offset in force before it, which lands just
    # after the gap; a repeated wall time (clocks going back) resolves to its first instant.
    return dt.datetime.combine(day, dt.time(hour, 0), tzinfo=zoneinfo.ZoneInfo(zone)).astimezone(dt.UTC)


def allowed_send_time(instant: dt.datetime, *, zone: str, quiet_start: int, quiet_end: int) -> dt.datetime:
    """``instant`` itself, or when it falls in the participant's quiet hours, the end of them."""
    tz = zoneinfo.ZoneInfo(zone)
    local = instant.astimezone(tz)
    if not in_quiet_hours(local.hour, quiet_start=quiet_start, quiet_end=quiet_end):
        return instant
    day = local.date() if local.hour < quiet_end else local.date() + dt.timedelta(days=1)
    return local_at(day, quiet_end, zone)
