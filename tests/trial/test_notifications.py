"""Staff notifications: a worker that dies between claiming an e-mail and recording it sent leaves
it ``sending``; after the lease the outbox sweep sends it again, once (at least once, never lost)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import time_machine
from django.core import mail
from django.utils import timezone

from trial import notifications, tasks
from trial.models import Notification, NotificationStatus

T0 = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)


def test_a_notification_left_sending_by_a_dead_worker_is_sent_again_after_the_lease_once(db: Any, settings: Any) -> None:
    settings.NOTIFICATION_LEASE_SECONDS = 300
    with time_machine.travel(T0, tick=False):
        stuck = notifications.notification_queue(
            key="sae:1", kind="sae", recipients=["safety@example.org"], subject="Serious adverse event", body="Details"
        )
        assert stuck is not None
        # A worker claims it, then is killed before the e-mail goes (or before it records the send).
        Notification.objects.filter(pk=stuck.pk).update(status=NotificationStatus.SENDING, attempts=1, claimed_at=timezone.now())

    # Within the lease the worker may still be sending: the sweep leaves it alone.
    with time_machine.travel(T0 + dt.timedelta(minutes=4), tick=False):
        assert notifications.notifications_send_pending() == 0
    assert mail.outbox == [] and Notification.objects.get().status == NotificationStatus.SENDING

    with time_machine.travel(T0 + dt.timedelta(minutes=6), tick=False):
        tasks.send_pending_notifications.apply()
        tasks.send_pending_notifications.apply()  # twice: nothing more
    assert [m.to for m in mail.outbox] == [["safety@example.org"]]
    sent = Notification.objects.get()
    assert sent.status == NotificationStatus.SENT and sent.attempts == 2
    assert sent.last_error == "The worker sending it stopped; sent again."


def test_a_live_send_is_not_taken_for_a_dead_one(db: Any) -> None:
    """The lease starts when a worker claims it, not when it was recorded: an e-mail queued an hour
    ago (the broker was down) and claimed now is not sent twice."""
    with time_machine.travel(T0, tick=False):
        notification = notifications.notification_queue(
            key="sae:2", kind="sae", recipients=["safety@example.org"], subject="Serious adverse event", body="Details"
        )
    assert notification is not None
    with time_machine.travel(T0 + dt.timedelta(hours=1), tick=False):
        Notification.objects.filter(pk=notification.pk).update(status=NotificationStatus.SENDING, claimed_at=timezone.now())
        assert notifications.notifications_reclaim() == 0
        assert notifications.notifications_send_pending() == 0
    assert mail.outbox == []
