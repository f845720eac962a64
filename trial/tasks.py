"""Trial-level tasks."""

from __future__ import annotations

from trial import services
from trial.tasking import system_task


@system_task(name="trial.heartbeat", time_limit=30)
def heartbeat(name: str = "worker") -> None:
    """Beat queues this every minute; the row it updates shows the pipeline works end to end."""
    services.heartbeat_record(name=name)


@system_task(name="trial.send_notification", time_limit=60)
def send_notification(notification_id: int) -> None:
    """Send one staff e-mail; a second run finds it already claimed and does nothing."""
    services.notification_send(notification_id=notification_id)


@system_task(name="trial.run_quality_checks", time_limit=3600)
def run_quality_checks(trial_id: int | None = None) -> int:
    """The data-quality checks (nightly by beat, or on demand); a finding raises its query once, so
    running twice raises nothing new."""
    from trial.queries.checks import checks_run_all

    return checks_run_all(trial_id=trial_id)


@system_task(name="trial.build_release", time_limit=3 * 3600)
def build_release(release_id: int) -> None:
    """Build one dataset release; a second run finds it already claimed and does nothing."""
    from trial.releases.services import release_build

    release_build(release_id=release_id)
