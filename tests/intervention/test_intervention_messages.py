"""Session confirmations with calendar invites, reminders the day before, notices of changes, and
physiotherapists' daily agenda: message rows sent once by the same sweep as questionnaire reminders."""

# ruff: noqa: F811 - pytest fixtures imported from test_intervention are redefined as arguments
from __future__ import annotations

import datetime as dt

import time_machine
from django.core import mail
from icalendar import Calendar

from intervention import messages, services
from messaging.models import Message, MessageStatus
from messaging.services import messages_send_due
from participants import services as journey
from tests.intervention.test_intervention import NOW, book, booker, physio, randomised, session, sydney  # noqa: F401
from trial.models import Trial


def sweep(at: dt.datetime) -> int:
    with time_machine.travel(at, tick=False):
        return messages_send_due(now=at).sent


def invite(email: mail.EmailMessage) -> Calendar:
    ((name, content, mimetype),) = email.attachments
    assert name == "session.ics" and mimetype.startswith("text/calendar")
    return Calendar.from_ical(content)


def test_a_booking_confirms_at_once_with_an_invite_and_reminds_the_day_before(walkback: Trial, physio, booker) -> None:
    participant = randomised(walkback, "walking", email="w@example.org")
    book(session(participant, 1), sydney(5, 9), booker, mode="video")

    assert sweep(NOW) == 1
    (confirmation,) = mail.outbox
    assert confirmation.to == ["w@example.org"] and confirmation.subject.startswith("Booked")
    assert "Thursday 05 March 2026 at 09:00 (AEDT)" in confirmation.body
    assert "Video call: https://" in confirmation.body and "/sessions/" in confirmation.body
    (event,) = invite(confirmation).walk("VEVENT")
    assert event["UID"] == f"walkback-session-{session(participant, 1).pk}@walkback"
    assert event.decoded("DTSTART") == sydney(5, 9)

    assert sweep(sydney(4, 9, 59)) == 0  # the reminder goes at 10:00 the day before
    assert sweep(sydney(4, 10)) == 1
    assert mail.outbox[-1].subject.startswith("Tomorrow") and not mail.outbox[-1].attachments
    assert sweep(sydney(4, 12)) == 0  # and only once


def test_moving_a_booking_sends_an_update_with_the_same_calendar_entry(walkback: Trial, physio, booker) -> None:
    participant = randomised(walkback, "walking", email="w@example.org")
    book(session(participant, 1), sydney(5, 9), booker)
    sweep(NOW)
    book(session(participant, 1), sydney(6, 9), booker)
    sweep(NOW + dt.timedelta(minutes=1))

    first, update = mail.outbox
    assert update.subject.startswith("Changed") and "Friday 06 March" in update.body
    old, new = (next(iter(invite(m).walk("VEVENT"))) for m in (first, update))
    assert old["UID"] == new["UID"] and new["SEQUENCE"] > old["SEQUENCE"]
    sweep(sydney(4, 10))
    assert len(mail.outbox) == 2  # the reminder for the old time was dropped
    sweep(sydney(5, 10))
    assert mail.outbox[-1].subject.startswith("Tomorrow") and "Friday 06 March" in mail.outbox[-1].body


def test_cancelling_sends_a_cancellation_and_no_reminder(walkback: Trial, physio, booker) -> None:
    participant = randomised(walkback, "walking", email="w@example.org")
    booked = book(session(participant, 1), sydney(5, 9), booker).session
    with time_machine.travel(NOW, tick=False):
        services.session_cancel_booking(session_id=booked.pk, reason="Clinic flooded", by=booker)
    sweep(NOW)
    sweep(sydney(4, 10))

    (notice,) = mail.outbox  # the unsent confirmation was dropped in favour of the cancellation
    assert notice.subject.startswith("Cancelled") and "05 March 2026 at 09:00" in notice.body
    calendar = invite(notice)
    assert calendar["METHOD"] == "CANCEL"
    assert next(iter(calendar.walk("VEVENT")))["STATUS"] == "CANCELLED"


def test_a_withdrawn_participant_gets_no_session_messages(walkback: Trial, physio, booker, coordinator) -> None:  # type: ignore[no-untyped-def]
    participant = randomised(walkback, "walking", email="w@example.org")
    book(session(participant, 1), sydney(5, 9), booker)
    with time_machine.travel(NOW, tick=False):
        journey.participant_withdraw(participant=participant, scope="intervention", reason="Too busy", by=coordinator)
    sweep(NOW)
    sweep(sydney(4, 10))
    assert mail.outbox == []
    assert not Message.objects.filter(status=MessageStatus.SENT).exists()


def test_each_physiotherapist_gets_the_days_agenda_once_at_seven(
    walkback: Trial, physio, booker, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    physio.email = "phil@example.org"
    physio.save()
    a, b = randomised(walkback, "walking"), randomised(walkback, "walking")
    book(session(a, 1), sydney(5, 9), booker)
    book(session(b, 1), sydney(5, 10, 30), booker)

    assert messages.agendas_send(now=sydney(5, 6, 59)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert messages.agendas_send(now=sydney(5, 7)) == 1
        assert messages.agendas_send(now=sydney(5, 9)) == 0  # once a day
    (agenda,) = [m for m in mail.outbox if m.to == ["phil@example.org"]]
    assert "09:00" in agenda.body and "10:30" in agenda.body and a.study_id in agenda.body
    assert messages.agendas_send(now=sydney(6, 7)) == 0  # nothing booked on the 6th


def test_the_agenda_task_is_safe_to_run_twice(walkback: Trial, physio, booker) -> None:
    from intervention import tasks
    from trial.models import Notification

    physio.email = "phil@example.org"
    physio.save()
    book(session(randomised(walkback, "walking"), 1), sydney(5, 9), booker)
    with time_machine.travel(sydney(5, 7, 30), tick=False):
        tasks.send_agendas.delay()
        tasks.send_agendas.delay()
    assert Notification.objects.filter(kind="physiotherapist_agenda").count() == 1
