"""System checks run by ``manage.py check`` (the web process's start, docker/entrypoint.sh), by
runserver, and at a Celery worker's start (trial.celery)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, register
from django.db import DatabaseError, connection

KEYS_MISMATCH = "trial.E010"


@register()
def keys_match_data(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Refuse to start with a secret key or lock-signing key other than the one the data was made
    with (trial.keys). Without a database to ask (``check`` on a build machine, or before
    ``migrate``), there is nothing to compare: no message."""
    from trial.keys import key_fingerprints_recorded, key_mismatches

    try:
        recorded = key_fingerprints_recorded()
    except DatabaseError:
        connection.close()
        return []
    return [
        Error(
            problem,
            hint="Configure the keys this database was made with (kept apart from its backups, see README 'Backups and "
            "restore'). If the key was changed on purpose, accept the consequence with `manage.py restore --force-keys` "
            "on restore, or `manage.py shell -c 'from trial.keys import key_fingerprints_adopt as a; a()'`.",
            id=KEYS_MISMATCH,
        )
        for problem in key_mismatches(recorded)
    ]
