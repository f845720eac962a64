"""Health checks beyond django-health-check's own: the Celery broker."""

from __future__ import annotations

import dataclasses

from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from trial.celery import app


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker accepts a connection (Redis, or the filesystem broker under var/)."""

    def run(self) -> None:
        try:
            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
        except Exception as exc:  # any failure to connect is "unavailable"; the detail stays in the log
            raise ServiceUnavailable(f"Broker unavailable ({type(exc).__name__})") from exc
