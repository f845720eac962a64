"""A real Celery worker on Redis, killed with SIGKILL in the middle of sending a batch of messages.

Each send is recorded as it happens; the claimed messages not recorded sent stay ``sending`` until
their lease passes; a new worker then sends them again with the same idempotency keys, and the
outbox (which, like a provider honouring the keys, delivers a key once) ends with each message
exactly once. Runs against the configured database and Redis (CI's second pass); skipped with the
filesystem broker. (tests/integration/test_smtp_kill.py does the same against an SMTP server.)
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.utils import timezone

from bench.randomise import participants_make_ready
from followup import services
from messaging import services as messaging
from messaging.models import Message, MessagePolicy, MessageStatus
from participants import services as journey
from participants.models import ContactDetails
from tests.integration.test_stack import _database_url, _wait_for
from tests.integration.workers import celery_workers
from trial import services as trial_services
from trial.models import Trial

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL.startswith("redis"),
        reason="needs a real broker: run with CELERY_BROKER_URL=redis://... (CI's second pass)",
    ),
]

PARTICIPANTS = 30  # at 0.2 s a message (tests/integration/slow_backend.py), a six-second batch


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """start() runs a Celery worker exactly as docker/entrypoint.sh does, with e-mail going to a
    slow outbox in ``outbox``; every worker still running at the end is stopped."""
    outbox = tmp_path / "outbox"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.integration.kill_settings",
        "KILL_TEST_OUTBOX": str(outbox),
        "SMS_URL": f"file://{tmp_path / 'sms'}",
        "DATABASE_URL": _database_url(),
        "DATABASE_TEST_NAME": "unused",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "WALKBACK_VAR_DIR": str(settings.VAR_DIR),
        "CELERY_CONCURRENCY": "1",
        "MESSAGES_BATCH_SIZE": str(PARTICIPANTS),  # one batch: the kill is in its middle
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    with celery_workers(tmp_path, env) as workers:
        yield {**workers, "outbox": outbox}


@pytest.fixture
def invitations_due(walkback: Trial, make_staff) -> list[int]:  # type: ignore[no-untyped-def]
    """Participants randomised a month ago, each with an invitation by e-mail due now (committed)."""
    coordinator = make_staff("coordinator", sites=list(walkback.sites.values_list("code", flat=True)), username="kill-test")
    trial_services.randomisation_list_generate(
        trial=walkback, seed="kill-test-seed-not-secret", per_stratum=PARTICIPANTS, by="stats"
    )
    now = timezone.now()
    Trial.objects.filter(pk=walkback.pk).update(followup_end=now.date() + relativedelta(years=3))  # whenever it runs
    # Month 1 is due in two days: its window opened (three days before) about yesterday.
    with time_machine.travel(now - relativedelta(months=1) + dt.timedelta(days=2), tick=False):
        ids = participants_make_ready(trial=walkback, count=PARTICIPANTS, by=coordinator, prefix="KILL")
        ContactDetails.objects.bulk_create(
            ContactDetails(participant_id=pk, email=f"kill-{pk}@example.org", timezone="Australia/Sydney") for pk in ids
        )
        for pk in ids:
            journey.participant_randomise(participant_id=pk, by=coordinator)
    MessagePolicy.objects.filter(trial=walkback).update(quiet_start=0, quiet_end=0)  # whatever hour the test runs
    services.occurrences_advance(now=now)
    services.messages_plan(now=now)
    invitations = Message.objects.filter(step="invitation", status=MessageStatus.PLANNED)
    invitations.update(due_at=now - dt.timedelta(minutes=1))  # the window may have opened today, before 10:00
    due = sorted(invitations.values_list("pk", flat=True))
    assert len(due) == PARTICIPANTS and set(invitations.values_list("channel", flat=True)) == {"email"}
    assert not Message.objects.exclude(pk__in=due).filter(due_at__lte=now + dt.timedelta(hours=1)).exists()  # reminders: later
    return due


def _delivered(outbox: Path) -> dict[str, tuple[int, int]]:
    return {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in outbox.glob("*.eml")}


def test_a_worker_killed_mid_batch_leaves_its_claim_and_the_next_worker_delivers_each_message_once(
    invitations_due: list[int], workers: dict[str, Any]
) -> None:
    from trial.celery import app

    ids = invitations_due
    outbox: Path = workers["outbox"]
    rows = Message.objects.filter(pk__in=ids)

    # Worker 1 takes the task and claims the whole batch; it is killed part-way through sending it.
    first = workers["start"]()
    app.send_task("followup.send_due_messages")
    try:
        _wait_for(lambda: len(_delivered(outbox)) >= 3, 90, "worker 1 to start sending")
    except AssertionError:
        pytest.fail(workers["dump"]())
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)

    before = _delivered(outbox)
    assert 3 <= len(before) < PARTICIPANTS, f"killed after {len(before)} of {PARTICIPANTS}: not mid-batch"
    # Each send is recorded as it happens: all those delivered, but perhaps the one in flight.
    recorded = set(rows.filter(status=MessageStatus.SENT).values_list("pk", flat=True))
    assert len(before) - 1 <= len(recorded) <= len(before)
    assert rows.filter(status=MessageStatus.SENDING).count() == PARTICIPANTS - len(recorded)
    assert set(rows.values_list("attempts", flat=True)) == {1}

    # Until the claim's lease passes, a sweep leaves those messages alone.
    assert messaging.messages_send_due().sent == 0
    assert rows.filter(status=MessageStatus.SENDING).count() == PARTICIPANTS - len(recorded)

    # The lease (the batch size times 15 s) passes; worker 2, a new process, runs the task again.
    rows.filter(status=MessageStatus.SENDING).update(due_at=timezone.now() - dt.timedelta(seconds=1))
    workers["start"]()
    app.send_task("followup.send_due_messages")
    try:
        _wait_for(lambda: rows.filter(status=MessageStatus.SENT).count() == PARTICIPANTS, 90, "worker 2 to send the rest")
    except AssertionError:
        pytest.fail(workers["dump"]())

    # Every message is in the outbox once, under its own key; what worker 1 delivered was not delivered again.
    after = _delivered(outbox)
    assert sorted(after) == sorted(f"walkback-msg-{pk}_walkback.eml" for pk in ids)  # named by Message-ID
    assert not list(outbox.glob("*.tmp"))
    assert all(after[name] == stamp for name, stamp in before.items())
    for pk in ids:
        assert (outbox / f"walkback-msg-{pk}_walkback.eml").read_text().count(f"Message-ID: <walkback-msg-{pk}@walkback>") == 1
    # Every row sent once, none left sending, none lost: those recorded sent before the kill were
    # claimed once, the others twice (killed, then re-claimed).
    assert rows.count() == PARTICIPANTS
    assert set(rows.values_list("status", flat=True)) == {MessageStatus.SENT}
    assert set(rows.filter(pk__in=recorded).values_list("attempts", flat=True)) == {1}
    assert set(rows.exclude(pk__in=recorded).values_list("attempts", flat=True)) == {2}
    assert all(m.provider_id == m.key and m.sent_at is not None for m in rows)
    assert not Message.objects.filter(status=MessageStatus.SENDING).exists()
