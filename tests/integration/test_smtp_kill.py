"""A sweep killed mid-batch against a real SMTP server (a local sink that, as any SMTP server,
delivers a message sent twice twice: the Message-ID deduplicates nothing there).

Each send is recorded the moment the server accepts it, so the next sweep re-sends only what was
not recorded: of the killed batch, at most the one message in flight. The sink holds its answer
to message ``K`` (it has the message, the sweep does not know) and the sweep is SIGKILLed then.
Runs ``manage.py send_due_reminders`` in a subprocess on the test database (committed rows)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import time_machine
from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.utils import timezone

from bench.randomise import participants_make_ready
from followup import services
from messaging.models import Message, MessagePolicy, MessageStatus
from participants import services as journey
from participants.models import ContactDetails
from tests.integration.smtp_sink import SmtpSink
from tests.integration.test_stack import ROOT, _database_url, _wait_for
from trial import services as trial_services
from trial.models import Trial

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

MESSAGES = 50
BATCH = 20
K = 27  # the sink holds its answer to the 27th message: the 7th of the second batch


@pytest.fixture
def invitations_due(walkback: Trial, make_staff) -> list[int]:  # type: ignore[no-untyped-def]
    """MESSAGES participants randomised a month ago, each with an e-mail invitation due now (committed)."""
    coordinator = make_staff("coordinator", sites=list(walkback.sites.values_list("code", flat=True)), username="smtp-kill")
    trial_services.randomisation_list_generate(trial=walkback, seed="smtp-kill-seed-not-secret", per_stratum=MESSAGES, by="stats")
    now = timezone.now()
    Trial.objects.filter(pk=walkback.pk).update(followup_end=now.date() + relativedelta(years=3))
    with time_machine.travel(now - relativedelta(months=1) + dt.timedelta(days=2), tick=False):
        ids = participants_make_ready(trial=walkback, count=MESSAGES, by=coordinator, prefix="SMTP")
        ContactDetails.objects.bulk_create(
            ContactDetails(participant_id=pk, email=f"smtp-{pk}@example.org", timezone="Australia/Sydney") for pk in ids
        )
        for pk in ids:
            journey.participant_randomise(participant_id=pk, by=coordinator)
    MessagePolicy.objects.filter(trial=walkback).update(quiet_start=0, quiet_end=0)  # whatever hour the test runs
    services.occurrences_advance(now=now)
    services.messages_plan(now=now)
    invitations = Message.objects.filter(step="invitation", status=MessageStatus.PLANNED)
    invitations.update(due_at=now - dt.timedelta(minutes=1))
    due = sorted(invitations.values_list("pk", flat=True))
    assert len(due) == MESSAGES and set(invitations.values_list("channel", flat=True)) == {"email"}
    assert not Message.objects.exclude(pk__in=due).filter(due_at__lte=now + dt.timedelta(hours=1)).exists()
    return due


def sweep(port: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    """The sweep as an operator runs it, in its own process group, e-mail to the sink."""
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "EMAIL_URL": f"smtp://127.0.0.1:{port}",
        "MESSAGES_BATCH_SIZE": str(BATCH),
        "WALKBACK_VAR_DIR": str(settings.VAR_DIR),
    }
    log = (tmp_path / "sweep.log").open("ab")
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "send_due_reminders"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_a_sweep_killed_mid_batch_re_sends_only_the_message_in_flight(
    invitations_due: list[int], tmp_path: Path, record_property: Any
) -> None:
    ids = invitations_due
    rows = Message.objects.filter(pk__in=ids)
    keys = {f"walkback-msg-{pk}@walkback": pk for pk in ids}
    started = time.monotonic()
    with SmtpSink(hold_at=K) as sink:
        first = sweep(sink.port, tmp_path)
        try:
            _wait_for(sink.held.is_set, 60, f"the sink to hold message {K}")
        except AssertionError:
            first.kill()
            pytest.fail((tmp_path / "sweep.log").read_text())
        os.killpg(first.pid, signal.SIGKILL)  # the server has message K; the sweep never heard back
        first.wait(timeout=10)
        sink.release()

        killed = sink.counts()
        assert len(sink) == K and set(killed.values()) == {1}
        in_flight = keys[sink.received[-1]]
        # Every message the server acknowledged is recorded sent; the one in flight is not.
        assert rows.filter(status=MessageStatus.SENT).count() == K - 1
        assert set(rows.filter(status=MessageStatus.SENT).values_list("pk", flat=True)) == {keys[k] for k in sink.received[:-1]}
        assert rows.get(pk=in_flight).status == MessageStatus.SENDING
        unsent_of_batch = BATCH - (K - 1) % BATCH  # the killed batch: in flight and not yet sent
        assert rows.filter(status=MessageStatus.SENDING).count() == unsent_of_batch
        assert rows.filter(status=MessageStatus.PLANNED).count() == MESSAGES - (K - 1) - unsent_of_batch

        # Before the lease passes a new sweep sends the rest, but leaves the killed batch alone.
        again = sweep(sink.port, tmp_path)
        assert again.wait(timeout=60) == 0, (tmp_path / "sweep.log").read_text()
        assert rows.filter(status=MessageStatus.SENDING).count() == unsent_of_batch
        # The lease (the batch size times 15 s) passes; the next sweep sends the killed batch's rest.
        rows.filter(status=MessageStatus.SENDING).update(due_at=timezone.now() - dt.timedelta(seconds=1))
        last = sweep(sink.port, tmp_path)
        assert last.wait(timeout=60) == 0, (tmp_path / "sweep.log").read_text()
        counts = sink.counts()

    seconds = time.monotonic() - started
    twice = sorted(keys[key] for key, n in counts.items() if n > 1)
    print(
        f"\nSMTP kill: {MESSAGES} messages in batches of {BATCH}, killed with {K} at the server: "
        f"{sum(counts.values())} delivered, {len(counts)} distinct, {len(twice)} twice {twice}, "
        f"{MESSAGES - len(counts)} lost ({seconds:.1f} s)"
    )
    record_property("faults_smtp_kill_messages", MESSAGES)
    record_property("faults_smtp_kill_delivered", sum(counts.values()))
    record_property("faults_smtp_kill_twice", len(twice))
    record_property("faults_smtp_kill_lost", MESSAGES - len(counts))
    assert set(counts) == set(keys)  # none lost
    assert twice in ([], [in_flight])  # at most the one in flight when killed
    assert sum(counts.values()) <= MESSAGES + 1
    assert set(rows.values_list("status", flat=True)) == {MessageStatus.SENT}
    assert rows.get(pk=in_flight).attempts == 2 and set(rows.exclude(pk=in_flight).values_list("attempts", flat=True)) <= {1, 2}
