"""The write guard: the one place that decides whether the trial's data may change.

Every service that writes clinical data or trial configuration calls
``ensure_writable`` inside its transaction. The database lock (and anything else that
must stop writes) is enforced by changing this module only.
"""

from __future__ import annotations

from django.db import connection

from trial.errors import DataLocked
from trial.models import Trial


def write_block_reason(*, trial: Trial) -> str | None:
    """Why writes are refused now, or None when they are allowed."""
    if trial.data_locked_at is not None:
        return (
            f"The {trial.name} database was locked on {trial.data_locked_at:%d %b %Y %H:%M} UTC; its data can no longer change."
        )
    return None


def ensure_writable(*, trial: Trial) -> None:
    """Raise DataLocked when the trial's data may not change. Call inside the writing transaction."""
    # FOR SHARE: writers do not block each other, but a lock being taken waits for them
    # (and they for it), so no write slips in beside a committing lock.
    with connection.cursor() as cursor:
        cursor.execute("SELECT data_locked_at FROM trial_trial WHERE id = %s FOR SHARE", [trial.pk])
        row = cursor.fetchone()
    trial.data_locked_at = row[0] if row else None
    reason = write_block_reason(trial=trial)
    if reason:
        raise DataLocked(reason)
