"""Notifications to staff (e-mail): recorded before sending, each key once, sent by a task."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from trial.models import Notification, NotificationStatus, StaffProfile, Trial, TrialContact
from trial.tasking import queue_on_commit

logger = logging.getLogger(__name__)
# How long the task queued at commit has to send a notification before the sweep does.
PENDING_GRACE = dt.timedelta(minutes=1)


@transaction.atomic
def notification_queue(*, key: str, kind: str, recipients: Iterable[str], subject: str, body: str) -> Notification | None:
    """Record an e-mail to staff and queue its sending after commit. A key already used does nothing."""
    to = sorted({r.strip() for r in recipients if r and r.strip()})
    if not to:
        return None
    notification, created = Notification.objects.get_or_create(
        key=key, defaults={"kind": kind, "recipients": to, "subject": subject, "body": body}
    )
    if created:
        queue_on_commit("trial.send_notification", notification.pk)
    return notification if created else None


def notification_send(*, notification_id: int) -> bool:
    """Send a pending notification once. Returns whether this call sent it.

    The row is claimed (PENDING -> SENDING) and committed before the e-mail goes out, so a
    second run, or a run racing this one, finds nothing to send.
    """
    with transaction.atomic():
        notification = Notification.objects.select_for_update(skip_locked=True).filter(pk=notification_id).first()
        if notification is None or notification.status != NotificationStatus.PENDING:
            return False
        notification.status = NotificationStatus.SENDING
        notification.attempts += 1
        notification.claimed_at = timezone.now()
        notification.save(update_fields=["status", "attempts", "claimed_at"])
    try:
        send_mail(notification.subject, notification.body, None, notification.recipients, fail_silently=False)
    except Exception as exc:
        Notification.objects.filter(pk=notification.pk).update(status=NotificationStatus.FAILED, last_error=str(exc)[:300])
        raise
    Notification.objects.filter(pk=notification.pk).update(status=NotificationStatus.SENT, sent_at=timezone.now())
    return True


def notification_lease() -> dt.timedelta:
    return dt.timedelta(seconds=settings.NOTIFICATION_LEASE_SECONDS)


def notifications_reclaim(*, now: dt.datetime | None = None) -> int:
    """Put back to pending every notification left ``sending`` longer than the lease: the worker
    sending it died between the claim and recording the send. Each is then sent again (at least
    once: the e-mail in flight at the crash, if the server had it, arrives twice). Returns how many."""
    cutoff = (now or timezone.now()) - notification_lease()
    return Notification.objects.filter(status=NotificationStatus.SENDING, claimed_at__lte=cutoff).update(
        status=NotificationStatus.PENDING, last_error="The worker sending it stopped; sent again."
    )


def notifications_send_pending(*, older_than: dt.timedelta = PENDING_GRACE, limit: int = 100) -> int:
    """Send every notification still pending ``older_than`` after it was recorded (the outbox sweep):
    the task queued at commit normally sent it already; this covers a broker that was down then,
    and a worker that died mid-send (``notifications_reclaim``).
    Each is claimed as ``notification_send`` does, so the sweep and that task never both send it."""
    if reclaimed := notifications_reclaim():
        logger.warning("%s staff notifications were left sending by a worker that stopped; sending them again.", reclaimed)
    cutoff = timezone.now() - older_than
    ids = list(
        Notification.objects.filter(status=NotificationStatus.PENDING, created_at__lte=cutoff)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for notification_id in ids:
        try:
            sent += notification_send(notification_id=notification_id)
        except Exception:  # recorded on the row as failed; the others still go
            logger.warning("Notification %s could not be sent", notification_id, exc_info=True)
    return sent


def staff_emails(*, trial: Trial, role: str | None = None, contact_kind: str | None = None) -> list[str]:
    emails: set[str] = set()
    if role:
        emails |= set(
            StaffProfile.objects.filter(role=role, user__is_active=True)
            .exclude(user__email="")
            .values_list("user__email", flat=True)
        )
    if contact_kind:
        emails |= set(TrialContact.objects.filter(trial=trial, kind=contact_kind).values_list("email", flat=True))
    return sorted(emails)
