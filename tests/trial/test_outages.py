"""Honest outages: a database or broker that is down answers 503 with Retry-After and a plain
message, never a 500; a broker down at commit never turns a saved action into an error, and the
staff e-mail it owed is sent by the outbox sweep, once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.db import OperationalError, connection
from django.test import Client
from django.urls import reverse
from kombu.exceptions import OperationalError as BrokerError

from participants import services
from participants.models import Unblinding
from trial import notifications, tasks
from trial.celery import app
from trial.models import Notification, NotificationStatus, Trial, TrialContact


def test_every_connection_has_statement_lock_and_connect_timeouts(db: Any, settings: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('statement_timeout'), current_setting('lock_timeout')")
        statement, lock = cursor.fetchone()
    assert (statement, lock) == ("30s", "10s")
    assert connection.settings_dict["OPTIONS"]["connect_timeout"] == settings.DATABASE_CONNECT_TIMEOUT == 5


def test_a_statement_over_the_limit_is_cancelled(db: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 50")
        with pytest.raises(OperationalError, match="statement timeout"):
            cursor.execute("SELECT pg_sleep(1)")


def database_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on every page's first query fails as it does when PostgreSQL is stopped."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OperationalError('connection to server on socket "/run/postgresql/.s.PGSQL.5432" failed: No such file or directory')

    monkeypatch.setattr("django.contrib.sessions.backends.db.SessionStore.load", refuse)


def test_pages_and_the_api_answer_503_with_retry_after_when_the_database_is_down(
    coordinator: Any, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.raise_request_exception = False
    client.force_login(coordinator)
    database_down(monkeypatch)
    page = client.get(reverse("dashboard"))
    assert page.status_code == 503 and page["Retry-After"] == "30"
    html = page.content.decode()
    assert '<html lang="en-au">' in html and "cannot reach its database" in html and "Traceback" not in html
    api = client.get("/api/v1/participants/")
    assert api.status_code == 503 and api["Retry-After"] == "30"
    assert "cannot reach its database" in api.json()["detail"]


def test_a_bug_is_still_a_500_not_an_outage(coordinator: Any, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    client.raise_request_exception = False
    client.force_login(coordinator)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ValueError("a bug")

    monkeypatch.setattr("django.contrib.sessions.backends.db.SessionStore.load", broken)
    assert client.get(reverse("dashboard")).status_code == 500


def test_health_answers_503_naming_the_failed_check(client: Client, monkeypatch: pytest.MonkeyPatch, db: Any) -> None:
    def no_broker(*args: Any, **kwargs: Any) -> None:
        raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(app, "connection_for_write", no_broker)
    response = client.get("/health/", HTTP_ACCEPT="application/json")
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert "Broker unavailable" in str(response.json())


def test_a_broker_down_at_commit_keeps_the_unblinding_saved_and_the_outbox_sends_its_alert_once(
    walkback: Trial,
    enrol: Any,
    coordinator: Any,
    make_staff: Any,
    password: str,
    sealed_list: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    TrialContact.objects.create(trial=walkback, kind="unblinding", name="Chief Investigator", email="ci@example.org")
    participant = enrol()
    services.participant_randomise(participant_id=participant.pk, by=coordinator)
    investigator = make_staff("investigator")
    app.loader.import_default_modules()

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(app.tasks["trial.send_notification"], "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        first = services.participant_unblind(
            participant=participant, user=investigator, reason="Serious adverse event", password=password
        )
    with django_capture_on_commit_callbacks(execute=True):
        again = services.participant_unblind(
            participant=participant, user=investigator, reason="Serious adverse event", password=password
        )
    assert again == first and Unblinding.objects.count() == 1
    alert = Notification.objects.get()
    assert alert.status == NotificationStatus.PENDING and mail.outbox == []

    # Too fresh for the sweep: the task queued at commit may still be on its way.
    assert notifications.notifications_send_pending() == 0
    with time_machine.travel(dt.datetime.now(tz=dt.UTC) + dt.timedelta(minutes=2)):
        tasks.send_pending_notifications.apply()
        tasks.send_pending_notifications.apply()
    assert [m.to for m in mail.outbox] == [["ci@example.org"]]
    alert.refresh_from_db()
    assert alert.status == NotificationStatus.SENT and alert.attempts == 1
