"""The broker down for real during an emergency unblinding and a serious adverse event report: a
private redis-server is this process's Celery broker (tasks go through it, not in process), and it
is stopped before the two requests. Both answer success, each writes one record and one staff
notification left pending; once Redis is back the outbox sweep (the beat's "Send staff
notifications left pending") sends each alert once, and an unblinding asked again is not doubled."""

# ruff: noqa: F811 - pytest fixtures imported from other test modules are redefined as arguments
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kombu.pools
import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from participants.models import Unblinding
from safety.models import AdverseEvent
from tests.factories import PASSWORD
from tests.faults.servers import RedisServer, redis_server
from tests.safety.test_safety import randomised  # noqa: F401
from tests.safety.test_safety_pages import form_post
from trial import tasks
from trial.celery import app
from trial.models import ContactKind, Notification, NotificationStatus, Trial, TrialContact

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _forget_connections() -> None:
    """Drop the app's and kombu's cached broker connections and producer pools (kombu keeps them per
    broker address, process-wide), so the next task is sent to the broker now configured and a
    later test gets fresh pools, not closed ones."""
    celery: Any = app
    celery.pool.force_close_all()
    celery._pool = None
    celery.amqp._producer_pool = None
    kombu.pools.reset()


@pytest.fixture
def broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisServer]:
    """A private Redis as the broker of this process, tasks sent through it (not run in process)."""
    saved = {key: app.conf[key] for key in ("broker_url", "broker_transport_options", "task_always_eager")}
    with redis_server(tmp_path / "redis") as server:
        _forget_connections()
        # Celery prefers CELERY_BROKER_URL from the environment (set in CI) to its configuration.
        monkeypatch.setenv("CELERY_BROKER_URL", server.url)
        app.conf.update(broker_url=server.url, broker_transport_options={}, task_always_eager=False)
        try:
            yield server
        finally:
            monkeypatch.undo()
            app.conf.update(saved)
            _forget_connections()


def test_with_the_broker_down_unblinding_and_a_serious_event_are_saved_once_and_alerted_once(
    broker: RedisServer, walkback: Trial, randomised: Any, coordinator: Any, make_staff: Any, record_property: Any
) -> None:
    TrialContact.objects.create(trial=walkback, kind=ContactKind.UNBLINDING, name="Chief Investigator", email="ci@example.org")
    investigator = make_staff("investigator", username="unblinder")
    # The broker really is this process's: a task queued now waits in Redis.
    tasks.heartbeat.delay(name="broker-check")
    assert broker.queued() == 1
    broker.stop()

    staff = Client(raise_request_exception=False)
    staff.force_login(investigator)
    reason = "Serious adverse event: treating physician needs the arm"
    started = time.monotonic()
    page = staff.post(reverse("participant-unblind", args=[randomised.pk]), {"reason": reason, "password": PASSWORD})
    api = APIClient(raise_request_exception=False)
    api.force_authenticate(investigator)
    again = api.post(f"/api/v1/participants/{randomised.pk}/unblind/", {"reason": reason, "password": PASSWORD}, format="json")
    reporter = Client(raise_request_exception=False)
    reporter.force_login(coordinator)
    report = reporter.post(reverse("adverse-event-new", args=[randomised.pk]), form_post())
    seconds = time.monotonic() - started
    health = staff.get("/health/", HTTP_ACCEPT="application/json")

    assert page.status_code == 302 and page["Location"] == reverse("participant-detail", args=[randomised.pk])
    assert again.status_code == 201 and again.json()["arm"] in {"walking", "control"}
    event = AdverseEvent.objects.get()
    assert report.status_code == 302 and report["Location"] == reverse("adverse-event-detail", args=[event.pk])
    assert health.status_code == 503 and "Broker unavailable" in str(health.json())
    assert Unblinding.objects.count() == 1 and event.serious
    alerts = Notification.objects.order_by("pk")
    assert [(n.kind, n.status) for n in alerts] == [
        ("unblinding", NotificationStatus.PENDING),
        ("serious_adverse_event", NotificationStatus.PENDING),
    ]
    assert mail.outbox == []

    broker.start()  # Redis is back (empty: nothing was half-queued while it was down)
    assert broker.queued() == 0
    assert Client().get("/health/", HTTP_ACCEPT="application/json").status_code == 200
    with time_machine.travel(dt.datetime.now(tz=dt.UTC) + dt.timedelta(minutes=2)):
        tasks.send_pending_notifications.apply()  # the beat's outbox sweep, as a worker runs it
        tasks.send_pending_notifications.apply()  # and once more (beat doubled): nothing new

    sent = [(m.to, m.subject) for m in mail.outbox]
    to = [recipients for recipients, _ in sent]
    print(f"\nBroker down: 3 requests in {seconds:.1f} s, {len(sent)} alerts sent after Redis came back: {sent}")
    record_property("faults_broker_down_requests", 3)
    record_property("faults_broker_down_errors", sum(r.status_code >= 500 for r in (page, again, report)))
    record_property("faults_broker_down_records", Unblinding.objects.count() + AdverseEvent.objects.count())
    record_property("faults_broker_down_alerts_sent", len(sent))
    record_property("faults_broker_down_alerts_twice", len(sent) - len({(tuple(r), s) for r, s in sent}))
    record_property("faults_broker_down_alerts_lost", Notification.objects.exclude(status=NotificationStatus.SENT).count())
    assert to.count(["ci@example.org"]) == 1 and to.count(["safety@example.org"]) == 1 and len(sent) == 2
    assert set(alerts.values_list("status", "attempts")) == {(NotificationStatus.SENT, 1)}
