"""Trial-level tasks."""

from __future__ import annotations

from trial import notifications, services
from trial.tasking import system_task


@system_task(name="trial.heartbeat", time_limit=30)
def heartbeat(name: str = "worker") -> None:
    """Beat queues this every minute; the row it updates shows the pipeline works end to end."""
    services.heartbeat_record(name=name)


@system_task(name="trial.send_notification", time_limit=60)
def send_notification(notification_id: int) -> None:
    """Send one staff e-mail; a second run finds it already claimed and does nothing."""
    notifications.notification_send(notification_id=notification_id)


@system_task(name="trial.send_pending_notifications", time_limit=300)
def send_pending_notifications() -> None:
    """The outbox sweep: send staff e-mails whose own task never ran (the broker was down at commit)."""
    notifications.notifications_send_pending()


@system_task(name="trial.verify_audit", time_limit=3600)
def verify_audit() -> int:
    """Nightly: recompute every audit chain and compare each tracked row with its latest snapshot;
    a break is recorded and alerted once (running twice alerts nothing new). Returns the problems."""
    return len(services.audit_trail_check())
