"""Trial-level tasks."""

from __future__ import annotations

from trial import services
from trial.tasking import system_task


@system_task(name="trial.heartbeat", time_limit=30)
def heartbeat(name: str = "worker") -> None:
    """Beat queues this every minute; the row it updates shows the pipeline works end to end."""
    services.heartbeat_record(name=name)
