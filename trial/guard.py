"""The write guard: the one place that decides whether the trial's data may change.

Every service that writes clinical data or trial configuration calls ``ensure_writable``
inside its transaction. The database lock (and anything else that must stop writes) is
enforced by changing this module only.

Writers hold the trial's advisory lock in shared mode until they commit; whatever must not
interleave with writes (locking the database, changing arms or strata) takes it exclusively
with ``hold_exclusive``, so it waits for writes in flight and later writes wait for it. An
advisory lock lives in PostgreSQL's lock table: unlike a row lock on the trial row, sharing it
between many writers costs no disk write.
"""

from __future__ import annotations

from django.db import connection

from trial.errors import DataLocked
from trial.models import Trial

_LOCK_SPACE = 0x5742  # "WB": the first key of this product's advisory locks


def write_block_reason(*, trial: Trial) -> str | None:
    """Why writes are refused now, or None when they are allowed."""
    if trial.data_locked_at is not None:
        return (
            f"The {trial.name} database was locked on {trial.data_locked_at:%d %b %Y %H:%M} UTC; its data can no longer change."
        )
    return None


def ensure_writable(*, trial: Trial) -> None:
    """Raise DataLocked when the trial's data may not change. Call inside the writing transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", [_LOCK_SPACE, trial.pk])
        # A new statement, so a new snapshot: it sees a lock committed while we waited.
        cursor.execute("SELECT data_locked_at FROM trial_trial WHERE id = %s", [trial.pk])
        row = cursor.fetchone()
    trial.data_locked_at = row[0] if row else None
    reason = write_block_reason(trial=trial)
    if reason:
        raise DataLocked(reason)


def hold_exclusive(*, trial: Trial) -> None:
    """Wait for every write in flight to commit and hold later ones off until this transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_SPACE, trial.pk])
