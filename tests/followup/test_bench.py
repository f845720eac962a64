"""The message-sweep benchmark's own helpers, at a small size: the data it builds is what it
claims, and its integrity figures hold."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings

from bench.reminders import BENCH_NOW, EARLIER, CountingEmailBackend, reminders_setup, sweep_integrity, sweep_once
from followup.models import Occurrence, OccurrenceStatus
from messaging.models import Message, MessageStatus
from participants.models import Participant

pytestmark = pytest.mark.django_db


@override_settings(EMAIL_BACKEND="bench.reminders.CountingEmailBackend", SMS_URL="null://")
def test_one_sweep_over_200_participants_sends_each_due_message_once() -> None:
    setup = reminders_setup(participants=200)

    assert Participant.objects.count() == 200
    assert setup.occurrences == Occurrence.objects.count() == 200 * 40  # full schedules: 36 monthly + 4 timepoints
    assert 0 < setup.sms_preferred < 100
    # The days before were swept already: their messages are recorded, the next ones planned.
    assert Message.objects.filter(provider_id=EARLIER, status=MessageStatus.SENT).exists()
    assert not Message.objects.filter(status=MessageStatus.PLANNED, due_at__lte=BENCH_NOW - dt.timedelta(days=3)).exists()

    run = sweep_once(batch_size=50, reference=True)
    integrity = sweep_integrity()

    # About one message per participant was due, and each went out exactly once.
    assert 200 <= integrity.due <= 240
    assert run.result.sent == integrity.sent == integrity.due
    assert integrity.left_sending == 0
    assert integrity.due_left_planned == 0
    assert integrity.sent_more_than_once == 0
    assert integrity.by_status == {MessageStatus.SENT: integrity.due}
    emailed = Message.objects.exclude(provider_id=EARLIER).filter(channel="email", status=MessageStatus.SENT)
    assert sorted(run.keys) == sorted(f"<{m.key}@walkback>" for m in emailed)  # each e-mail handed over once
    assert run.keys and CountingEmailBackend.keys == run.keys
    # One window of each participant opened today; reads grew with batches, and writes by one per
    # message sent (each send is recorded as it happens, so a killed sweep never sends it again).
    assert run.opened >= 40
    assert run.result.batches >= integrity.due // 50
    assert run.queries - run.result.sent < 25 + 12 * run.result.batches < integrity.due
    assert Occurrence.objects.filter(status=OccurrenceStatus.OPEN, messages_planned_at__isnull=True).count() == 0
    # The floor was measured over the same rows, then put back: the sweep still sent every one.
    assert run.reference_rows == integrity.due and run.reference_seconds and run.sending_seconds > 0
    assert not Message.objects.filter(provider_id__startswith="reference-").exists()
