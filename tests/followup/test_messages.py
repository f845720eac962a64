"""Invitations and reminders: planned as rows, sent once, re-checked, in the participant's local time."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends import locmem
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from followup import services, tasks
from followup.models import Occurrence, ResponseSource
from followup.scheduling import message_steps
from messaging import services as messaging
from messaging.channels import ClickSendSmsBackend, SendError, Sms
from messaging.models import Message, MessagePolicy, MessageStatus, MessageTemplate
from messaging.timing import allowed_send_time, in_quiet_hours, local_at
from participants import services as journey
from participants.models import ContactDetails
from trial.models import Trial

UTC = dt.UTC
RANDOMISED_AT = dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 2 Mar 2026, 12:00 in Sydney (AEDT, +11)
# Month 1 is due on 2 Apr; its window opens at Sydney midnight on 30 Mar. Daylight saving ends on 5 Apr.
INVITATION_AT = dt.datetime(2026, 3, 29, 23, 0, tzinfo=UTC)  # 30 Mar 10:00 AEDT
REMINDER_1_AT = dt.datetime(2026, 4, 1, 23, 0, tzinfo=UTC)  # 2 Apr 10:00 AEDT
REMINDER_2_AT = dt.datetime(2026, 4, 6, 0, 0, tzinfo=UTC)  # 6 Apr 10:00 AEST: the clocks went back
DAY_AFTER_OPENING = dt.datetime(2026, 3, 30, 3, 0, tzinfo=UTC)  # 30 Mar 14:00 AEDT


@pytest.fixture
def randomised(walkback: Trial, enrol, coordinator, sealed_list):  # type: ignore[no-untyped-def]
    with time_machine.travel(RANDOMISED_AT, tick=False):
        participant = enrol()
        journey.participant_randomise(participant_id=participant.pk, by=coordinator)
    participant.refresh_from_db()
    return participant


def sweep(at: dt.datetime, **kwargs: Any) -> messaging.SweepResult:
    with time_machine.travel(at, tick=False):
        services.occurrences_advance(now=at)
        return messaging.messages_send_due(now=at, **kwargs)


def month_one(participant: Any) -> Occurrence:
    return Occurrence.objects.get(participant=participant, instrument="monthly", month=1)


def test_an_opened_questionnaire_gets_an_invitation_and_two_reminders_at_10_local_across_dst(randomised) -> None:
    sweep(DAY_AFTER_OPENING)

    planned = {(m.step, m.channel): m.planned_at for m in Message.objects.filter(occurrence=month_one(randomised))}
    # Preferred channel only (e-mail), at 10:00 Sydney time on days 0, 3 and 7 of the window.
    assert planned == {
        ("invitation", "email"): INVITATION_AT,
        ("reminder-1", "email"): REMINDER_1_AT,
        ("reminder-2", "email"): REMINDER_2_AT,
    }


def test_the_invitation_is_sent_once_with_a_working_link_and_an_opt_out(randomised, client: Client) -> None:
    result = sweep(DAY_AFTER_OPENING)

    assert result.sent == 1
    (email,) = mail.outbox
    assert email.to == ["pat@example.org"]
    assert "ready" in email.subject
    assert "Monthly" in email.body or "monthly" in email.body
    link = next(word for word in email.body.split() if "/p/" in word and "/stop/" not in word)
    path = link.split("://", 1)[1].split("/", 1)[1]
    with time_machine.travel(DAY_AFTER_OPENING, tick=False):
        page = client.get("/" + path)
    assert page.status_code == 200 and str(month_one(randomised).pk) in page.content.decode()
    assert "/stop/email/" in email.body
    sent = Message.objects.get(step="invitation")
    assert sent.status == MessageStatus.SENT and sent.sent_at is not None and sent.template is not None
    assert sent.attempts == 1


def test_five_sweeps_over_the_same_due_set_send_each_message_once(randomised) -> None:
    for _ in range(5):
        sweep(REMINDER_1_AT + dt.timedelta(minutes=5))
    # The invitation was overdue when planned together with reminder 1: only the latest went.
    assert len(mail.outbox) == 1
    for _ in range(5):
        sweep(REMINDER_2_AT + dt.timedelta(minutes=5))
    assert len(mail.outbox) == 2
    assert Message.objects.filter(status=MessageStatus.SENT).count() == 2
    assert set(Message.objects.values_list("attempts", flat=True)) <= {0, 1}


def test_a_completed_questionnaire_gets_no_more_reminders(randomised) -> None:
    sweep(DAY_AFTER_OPENING)
    with time_machine.travel(DAY_AFTER_OPENING + dt.timedelta(hours=1), tick=False):
        services.response_submit(
            occurrence=month_one(randomised), raw={"lbp_any": "no", "new_health_problem": "no"}, source="participant"
        )

    sweep(REMINDER_1_AT + dt.timedelta(minutes=1))
    sweep(REMINDER_2_AT + dt.timedelta(minutes=1))

    assert len(mail.outbox) == 1  # the invitation only
    reasons = set(Message.objects.filter(status=MessageStatus.CANCELLED).values_list("cancelled_reason", flat=True))
    assert reasons == {"Questionnaire completed"}


def test_completion_between_claim_and_send_is_caught_by_the_recheck(randomised) -> None:
    sweep(DAY_AFTER_OPENING)
    ids = messaging._claim(now=REMINDER_1_AT, batch_size=10, lease=dt.timedelta(minutes=5))
    Occurrence.objects.filter(pk=month_one(randomised).pk).update(status="completed", completed_at=REMINDER_1_AT)
    result = messaging._deliver(ids=ids, now=REMINDER_1_AT, renderer=messaging._Renderer(), mail=mail.get_connection())
    assert (result.sent, result.cancelled) == (0, 1)
    assert len(mail.outbox) == 1


def test_a_participant_withdrawn_from_followup_gets_nothing(randomised, coordinator) -> None:
    sweep(DAY_AFTER_OPENING)
    with time_machine.travel(DAY_AFTER_OPENING + dt.timedelta(hours=1), tick=False):
        journey.participant_withdraw(participant=randomised, scope="followup", reason="Moved overseas", by=coordinator)

    sweep(REMINDER_2_AT + dt.timedelta(minutes=1))

    assert len(mail.outbox) == 1
    assert not Message.objects.filter(status__in=[MessageStatus.PLANNED, MessageStatus.SENDING]).exists()


def test_opting_out_by_the_link_stops_that_channel(randomised, client: Client) -> None:
    sweep(DAY_AFTER_OPENING)
    link = next(word for word in mail.outbox[0].body.split() if "/stop/email/" in word)
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]

    asked = client.get(path)  # a mail scanner following the link changes nothing
    assert asked.status_code == 200 and b"Stop E-mail messages?" in asked.content
    assert ContactDetails.objects.get(participant=randomised).email_opted_out_at is None
    done = client.post(path)
    assert done.status_code == 200 and b"opted-out" in done.content

    sweep(REMINDER_2_AT + dt.timedelta(minutes=1))
    assert len(mail.outbox) == 1
    assert set(Message.objects.filter(status=MessageStatus.CANCELLED).values_list("cancelled_reason", flat=True)) == {
        "Opted out of E-mail"
    }


def test_a_sweep_in_quiet_hours_waits_for_the_morning(randomised, walkback: Trial) -> None:
    sweep(DAY_AFTER_OPENING - dt.timedelta(hours=10))  # plans only: nothing is due before 10:00
    assert mail.outbox == []
    late = dt.datetime(2026, 3, 30, 11, 30, tzinfo=UTC)  # 22:30 in Sydney: quiet
    MessagePolicy.objects.filter(trial=walkback).update(quiet_start=21, quiet_end=8)

    result = sweep(late)

    assert (result.sent, result.deferred) == (0, 1)
    invitation = Message.objects.get(step="invitation")
    assert invitation.status == MessageStatus.PLANNED and invitation.attempts == 0
    assert invitation.due_at == dt.datetime(2026, 3, 30, 21, 0, tzinfo=UTC)  # 31 Mar 08:00 AEDT
    assert sweep(invitation.due_at).sent == 1


def test_the_wording_is_the_template_version_current_at_send_time(randomised, walkback: Trial) -> None:
    sweep(DAY_AFTER_OPENING)
    messaging.message_template_publish(
        trial=walkback, code="reminder", channel="email", subject="Still time: {{ questionnaire }}", body="New words {{ link }}"
    )
    sweep(REMINDER_1_AT + dt.timedelta(minutes=1))
    assert mail.outbox[-1].subject.startswith("Still time")
    reminder = Message.objects.get(step="reminder-1")
    assert reminder.template.version == 2


def test_a_failing_provider_is_retried_with_backoff_then_reported(randomised, walkback: Trial, settings) -> None:  # type: ignore[no-untyped-def]
    ContactDetails.objects.filter(participant=randomised).update(preferred_channel="sms")
    MessagePolicy.objects.filter(trial=walkback).update(max_attempts=2)
    settings.SMS_URL = "clicksend+http://user:key@127.0.0.1:9"  # nothing listens on the discard port

    first = sweep(DAY_AFTER_OPENING)
    message = Message.objects.get(step="invitation")
    assert first.retrying == 1 and message.status == MessageStatus.PLANNED
    assert message.due_at == DAY_AFTER_OPENING + dt.timedelta(minutes=5)
    assert "ClickSend could not be reached" in message.last_error

    second = sweep(DAY_AFTER_OPENING + dt.timedelta(minutes=6))
    message.refresh_from_db()
    assert second.failed == 1 and message.status == MessageStatus.FAILED and message.attempts == 2


def test_a_sweep_killed_after_sending_is_retried_with_the_same_key_and_delivers_once(
    randomised, settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    settings.EMAIL_BACKEND = "messaging.channels.OutboxEmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    sweep(DAY_AFTER_OPENING - dt.timedelta(hours=10))
    ids = messaging._claim(now=DAY_AFTER_OPENING, batch_size=10, lease=dt.timedelta(minutes=30))
    # The dying sweep got as far as handing the e-mail over, then was killed before recording it.
    message = Message.objects.get(pk=ids[0])
    mail.EmailMessage("x", "y", to=["pat@example.org"], headers={"Message-ID": f"<{message.key}@walkback>"}).send()
    assert sweep(DAY_AFTER_OPENING + dt.timedelta(minutes=10)).sent == 0  # still leased

    result = sweep(DAY_AFTER_OPENING + dt.timedelta(minutes=31))

    assert result.sent == 1
    assert len(list(tmp_path.glob("*.eml"))) == 1
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT and message.attempts == 2


class CrashingBackend(locmem.EmailBackend):
    """Hands two e-mails over, then the process dies (a BaseException: nothing catches it)."""

    def send_messages(self, messages: Any) -> int:
        if len(mail.outbox) >= 2:
            raise SystemExit("killed")
        return super().send_messages(messages)


def test_each_send_is_recorded_as_it_happens_so_a_crash_mid_batch_re_sends_none_of_them(
    walkback: Trial, enrol, coordinator, sealed_list, settings
) -> None:  # type: ignore[no-untyped-def]
    with time_machine.travel(RANDOMISED_AT, tick=False):
        for _ in range(5):
            journey.participant_randomise(participant_id=enrol().pk, by=coordinator)
    settings.EMAIL_BACKEND = f"{__name__}.CrashingBackend"
    with pytest.raises(SystemExit):
        sweep(DAY_AFTER_OPENING)
    sent = Message.objects.filter(status=MessageStatus.SENT)
    assert len(mail.outbox) == 2 and sent.count() == 2
    assert {f"<{m.key}@walkback>" for m in sent} == {m.extra_headers["Message-ID"] for m in mail.outbox}
    assert all(m.provider_id == m.key and m.sent_at is not None for m in sent)
    assert Message.objects.filter(status=MessageStatus.SENDING).count() == 3  # claimed, left for the lease

    # The lease is sized to the batch: the batch size times MESSAGES_SECONDS_PER_MESSAGE (15 s).
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert sweep(DAY_AFTER_OPENING + dt.timedelta(seconds=20 * 15 - 1)).sent == 0
    assert sweep(DAY_AFTER_OPENING + dt.timedelta(seconds=20 * 15 + 1)).sent == 3
    assert len(mail.outbox) == 5 and len({m.extra_headers["Message-ID"] for m in mail.outbox}) == 5


def test_a_sweep_sends_nothing_once_its_lease_is_about_to_pass(walkback: Trial, enrol, coordinator, sealed_list) -> None:  # type: ignore[no-untyped-def]
    """Another sweep may claim the rest when the lease has passed: this one leaves them."""
    with time_machine.travel(RANDOMISED_AT, tick=False):
        for _ in range(2):
            journey.participant_randomise(participant_id=enrol().pk, by=coordinator)
    services.occurrences_advance(now=DAY_AFTER_OPENING)
    services.messages_plan(now=DAY_AFTER_OPENING)
    ids = messaging._claim(now=DAY_AFTER_OPENING, batch_size=10, lease=dt.timedelta(minutes=5))
    result = messaging._deliver(
        ids=ids, now=DAY_AFTER_OPENING, renderer=messaging._Renderer(), mail=mail.get_connection(), deadline=time.monotonic() - 1
    )
    assert (result.sent, result.expired) == (0, 2) and mail.outbox == []
    assert Message.objects.filter(pk__in=ids, status=MessageStatus.SENDING).count() == 2


def test_the_sweep_claims_batches_of_the_configured_size(walkback: Trial, enrol, coordinator, sealed_list, settings) -> None:  # type: ignore[no-untyped-def]
    settings.MESSAGES_BATCH_SIZE = 2
    settings.MESSAGES_SECONDS_PER_MESSAGE = 600  # what is measured is batches, not a busy machine's speed
    with time_machine.travel(RANDOMISED_AT, tick=False):
        for _ in range(5):
            journey.participant_randomise(participant_id=enrol().pk, by=coordinator)
    result = sweep(DAY_AFTER_OPENING)
    assert (result.sent, result.batches) == (5, 3)


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_in_parallel_send_each_message_once(walkback: Trial, enrol, coordinator, sealed_list) -> None:  # type: ignore[no-untyped-def]
    with time_machine.travel(RANDOMISED_AT, tick=False):
        for _ in range(30):
            participant = enrol()
            journey.participant_randomise(participant_id=participant.pk, by=coordinator)
    services.occurrences_advance(now=DAY_AFTER_OPENING)
    services.messages_plan(now=DAY_AFTER_OPENING)
    assert Message.objects.filter(due_at__lte=DAY_AFTER_OPENING).count() == 30
    results: list[messaging.SweepResult] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait()
            results.append(messaging.messages_send_due(now=DAY_AFTER_OPENING, batch_size=3))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(r.sent for r in results) == 30
    assert len(mail.outbox) == 30 and len({m.extra_headers["Message-ID"] for m in mail.outbox}) == 30
    assert all(r.batches >= 1 for r in results)  # both shared the work


def test_reads_grow_with_batches_and_writes_by_one_per_message_sent(walkback: Trial, enrol, coordinator, sealed_list) -> None:  # type: ignore[no-untyped-def]
    def queries_for(count: int) -> int:
        Message.objects.all().delete()
        mail.outbox.clear()
        with time_machine.travel(RANDOMISED_AT, tick=False):
            for _ in range(count):
                participant = enrol()
                journey.participant_randomise(participant_id=participant.pk, by=coordinator)
        services.occurrences_advance(now=DAY_AFTER_OPENING)
        with CaptureQueriesContext(connection) as captured:
            result = messaging.messages_send_due(now=DAY_AFTER_OPENING, batch_size=500)
        assert result.sent == count
        return len(captured)

    # Each send is recorded in its own commit the moment it goes (a killed sweep re-sends none of them).
    assert queries_for(12) - queries_for(3) == 9


def test_the_command_and_the_task_call_the_same_service_and_are_idempotent(randomised) -> None:
    call_command("send_due_reminders", "--at", "2026-03-30T14:00:00+11:00")
    call_command("send_due_reminders", "--at", "2026-03-30T14:00:00+11:00")
    assert len(mail.outbox) == 1
    with time_machine.travel(REMINDER_1_AT + dt.timedelta(minutes=1), tick=False):
        tasks.send_due_messages.delay()
        tasks.send_due_messages.delay()
    assert len(mail.outbox) == 2


def test_the_command_refuses_a_naive_time(db) -> None:  # type: ignore[no-untyped-def]
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="UTC offset"):
        call_command("send_due_reminders", "--at", "2026-03-30T14:00:00")


def test_staff_see_every_message_of_a_participant_by_api(randomised, make_staff, api: APIClient) -> None:
    sweep(DAY_AFTER_OPENING)
    api.force_authenticate(make_staff("coordinator", sites=["SYD"]))
    body = api.get(f"/api/v1/messages/?participant={randomised.pk}").json()
    items = body["results"] if isinstance(body, dict) else body
    assert [(i["step"], i["channel"], i["status"]) for i in items] == [
        ("reminder-2", "email", "planned"),
        ("reminder-1", "email", "planned"),
        ("invitation", "email", "sent"),
    ]
    assert {"occurrence", "planned_at", "sent_at"} <= set(items[0])
    assert items[2]["sent_at"] is not None

    api.force_authenticate(make_staff("coordinator", sites=["BNE"], username="brisbane"))
    body = api.get(f"/api/v1/messages/?participant={randomised.pk}").json()
    assert (body["results"] if isinstance(body, dict) else body) == []
    bad = api.get("/api/v1/messages/?participant=abc")
    assert bad.status_code == 400 and "participant" in bad.json()["errors"]


def test_templates_are_append_only(walkback: Trial) -> None:
    from django.db import InternalError, ProgrammingError, transaction

    template = MessageTemplate.objects.filter(trial=walkback).first()
    with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
        MessageTemplate.objects.filter(pk=template.pk).update(body="changed")


def test_a_broken_template_is_refused_with_a_clear_message(walkback: Trial) -> None:
    from trial.errors import ApplicationError

    with pytest.raises(ApplicationError, match="not valid"):
        messaging.message_template_publish(trial=walkback, code="reminder", channel="sms", subject="", body="{% if %}")


def test_staff_entry_on_behalf_also_stops_reminders(randomised, coordinator) -> None:
    sweep(DAY_AFTER_OPENING)
    with time_machine.travel(DAY_AFTER_OPENING, tick=False):
        services.response_submit(
            occurrence=month_one(randomised),
            raw={"lbp_any": "no", "new_health_problem": "no"},
            source=ResponseSource.STAFF,
            by=coordinator,
        )
    assert not Message.objects.filter(status=MessageStatus.PLANNED).exists()


class _FakeClickSend(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    reply: dict[str, Any] = {}
    code = 200

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append({"body": body, "auth": self.headers["Authorization"], "key": self.headers["Idempotency-Key"]})
        payload = json.dumps(type(self).reply).encode()
        self.send_response(type(self).code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def clicksend():  # type: ignore[no-untyped-def]
    server = HTTPServer(("127.0.0.1", 0), _FakeClickSend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _FakeClickSend.received = []
    yield server
    server.shutdown()


def test_the_clicksend_adapter_posts_the_message_with_its_key(clicksend) -> None:  # type: ignore[no-untyped-def]
    _FakeClickSend.code = 200
    _FakeClickSend.reply = {"response_code": "SUCCESS", "data": {"messages": [{"status": "SUCCESS", "message_id": "abc-1"}]}}
    backend = ClickSendSmsBackend(
        username="u", api_key="k", host=f"127.0.0.1:{clicksend.server_port}", sender="WalkBack", scheme="http"
    )
    assert backend.send(Sms(to="+61400000000", body="Hello", key="walkback-msg-7")) == "abc-1"
    (request,) = _FakeClickSend.received
    assert request["key"] == "walkback-msg-7" and request["auth"] == "Basic dTpr"
    assert request["body"]["messages"][0] == {
        "source": "walkback",
        "to": "+61400000000",
        "body": "Hello",
        "custom_string": "walkback-msg-7",
        "from": "WalkBack",
    }


def test_the_clicksend_adapter_reports_a_refusal(clicksend) -> None:  # type: ignore[no-untyped-def]
    _FakeClickSend.code = 401
    _FakeClickSend.reply = {"response_code": "UNAUTHORIZED"}
    backend = ClickSendSmsBackend(
        username="u", api_key="bad", host=f"127.0.0.1:{clicksend.server_port}", sender="", scheme="http"
    )
    with pytest.raises(SendError, match="401"):
        backend.send(Sms(to="+61400000000", body="Hello", key="k"))


# --- Timing, as pure functions --------------------------------------------------------------


def test_a_send_hour_skipped_by_daylight_saving_goes_just_after_the_gap() -> None:
    # Sydney clocks jump from 02:00 to 03:00 on 4 Oct 2026.
    assert local_at(dt.date(2026, 10, 4), 2, "Australia/Sydney") == dt.datetime(2026, 10, 3, 16, 0, tzinfo=UTC)  # 03:00 AEDT
    # London clocks go back on 25 Oct 2026; 10:00 exists once (GMT).
    assert local_at(dt.date(2026, 10, 25), 10, "Europe/London") == dt.datetime(2026, 10, 25, 10, 0, tzinfo=UTC)
    assert local_at(dt.date(2026, 10, 24), 10, "Europe/London") == dt.datetime(2026, 10, 24, 9, 0, tzinfo=UTC)


def test_quiet_hours_span_midnight_and_push_to_their_end() -> None:
    assert in_quiet_hours(22, quiet_start=21, quiet_end=8) and in_quiet_hours(3, quiet_start=21, quiet_end=8)
    assert not in_quiet_hours(8, quiet_start=21, quiet_end=8) and not in_quiet_hours(20, quiet_start=21, quiet_end=8)
    assert not in_quiet_hours(3, quiet_start=0, quiet_end=0)
    late = dt.datetime(2026, 6, 1, 12, 30, tzinfo=UTC)  # 22:30 in Sydney (AEST)
    assert allowed_send_time(late, zone="Australia/Sydney", quiet_start=21, quiet_end=8) == dt.datetime(
        2026, 6, 1, 22, 0, tzinfo=UTC
    )
    early = dt.datetime(2026, 6, 1, 18, 0, tzinfo=UTC)  # 04:00 on 2 Jun in Sydney
    assert allowed_send_time(early, zone="Australia/Sydney", quiet_start=21, quiet_end=8) == dt.datetime(
        2026, 6, 1, 22, 0, tzinfo=UTC
    )


def test_a_send_hour_inside_quiet_hours_moves_out_and_reminders_stop_at_the_close() -> None:
    opens = dt.datetime(2026, 6, 1, 14, 0, tzinfo=UTC)  # 2 Jun 00:00 AEST
    steps = message_steps(
        opens_at=opens,
        closes_at=opens + dt.timedelta(days=5),
        reminder_days=[3, 7],
        zone="Australia/Sydney",
        send_hour=6,
        quiet_start=21,
        quiet_end=8,
        now=opens,
    )
    assert [(s.step, s.planned_at) for s in steps] == [
        ("invitation", dt.datetime(2026, 6, 1, 22, 0, tzinfo=UTC)),  # 08:00, not 06:00
        ("reminder-1", dt.datetime(2026, 6, 4, 22, 0, tzinfo=UTC)),
    ]  # day 7 is after the window closed: no reminder 2
