"""Health checks beyond django-health-check's own: the Celery broker."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.conf import settings
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView

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


class HealthView(HealthCheckView):
    """``/health/``: 200 when every check passes; otherwise 503 with Retry-After (a load balancer
    and a person both read it as "unavailable, come back"), naming the failed checks."""

    async def get(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        response = await super().get(request, *args, **kwargs)
        if response.status_code == 500:
            response.status_code = 503
            response.reason_phrase = "Service Unavailable"
            response["Retry-After"] = str(settings.OUTAGE_RETRY_AFTER_SECONDS)
        return response
