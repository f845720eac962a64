"""Sessions for the intervention arm only, booked into physiotherapists' free time, recorded with
the walking prescription; the walking diary and adherence."""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Any

import pytest
import time_machine
from django.db import connection

from intervention import selectors, services
from intervention.models import Holiday, Leave, Session, SessionStatus, WorkingHours
from messaging.models import Message, MessageStatus
from participants import services as journey
from participants.models import ContactDetails, Participant
from tests.factories import ParticipantFactory
from trial.errors import ApplicationError, Conflict, NotAllowed
from trial.models import Trial

UTC = dt.UTC
# Monday 2 March 2026, 09:00 in Sydney (AEDT, +11).
RANDOMISED_AT = dt.datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
NOW = dt.datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def sydney(day: int, hour: int, minute: int = 0, month: int = 3) -> dt.datetime:
    import zoneinfo

    return dt.datetime(2026, month, day, hour, minute, tzinfo=zoneinfo.ZoneInfo("Australia/Sydney")).astimezone(UTC)


@pytest.fixture
def physio(walkback: Trial, make_staff) -> Any:  # type: ignore[no-untyped-def]
    user = make_staff("physiotherapist", sites=["SYD", "BNE"], username="phil")
    for site in walkback.sites.filter(code__in=["SYD", "BNE"]):
        for weekday in range(5):  # the clinics' default hours, Monday to Friday 09:00-12:00
            WorkingHours.objects.create(site=site, weekday=weekday, start=dt.time(9), end=dt.time(12))
    return user


@pytest.fixture
def booker(make_staff) -> Any:  # type: ignore[no-untyped-def]
    return make_staff("coordinator", sites=["SYD", "BNE"], username="booker")


def randomised(walkback: Trial, arm: str, site: str = "SYD", **contact: Any) -> Participant:
    with time_machine.travel(RANDOMISED_AT, tick=False):
        participant = ParticipantFactory(site=walkback.sites.get(code=site), randomised_to=walkback.arms.get(code=arm))
    if contact:
        ContactDetails.objects.create(participant=participant, timezone=participant.site.timezone, **contact)
    services.sessions_plan(participant=participant)
    participant.refresh_from_db()
    return participant


def session(participant: Participant, number: int) -> Session:
    return Session.objects.get(participant=participant, number=number)


def book(s: Session, starts_at: dt.datetime, by: Any, mode: str = "in_person", **kwargs: Any) -> services.Booked:
    with time_machine.travel(NOW, tick=False):
        return services.session_book(session_id=s.pk, starts_at=starts_at, mode=mode, by=by, now=NOW, **kwargs)


def test_the_intervention_arm_gets_six_sessions_with_windows_and_a_physiotherapist(walkback: Trial, physio) -> None:
    participant = randomised(walkback, "walking")
    sessions = list(Session.objects.filter(participant=participant).order_by("number"))
    assert [s.number for s in sessions] == [1, 2, 3, 4, 5, 6]
    first = sessions[0]
    assert (first.window_start, first.target_date, first.window_end) == (
        dt.date(2026, 3, 2),
        dt.date(2026, 3, 9),
        dt.date(2026, 3, 23),
    )
    assert [s.sets_prescription for s in sessions] == [True, False, True, False, True, False]
    assert {s.physiotherapist_id for s in sessions} == {physio.pk}
    assert participant.physiotherapist_id == physio.pk
    assert services.sessions_plan(participant=participant) == 0  # idempotent


def test_a_control_participant_never_gets_a_session_or_a_diary(walkback: Trial, physio, booker) -> None:
    control = randomised(walkback, "control")
    assert not Session.objects.filter(participant=control).exists()
    # Even a session row forced in by hand cannot be booked, and no walk can be logged.
    forced = Session.objects.create(
        participant=control, number=1, name="x", target_date=NOW.date(), window_start=NOW.date(), window_end=NOW.date()
    )
    with pytest.raises(services.NotInInterventionArm, match="not in the Walking"):
        book(forced, sydney(3, 9), booker)
    with pytest.raises(services.NotInInterventionArm):
        services.walk_log(participant=control, walked_on=NOW.date(), minutes=20, now=NOW)


def test_randomising_through_the_service_plans_sessions_for_the_walking_arm_only(
    walkback: Trial, physio, enrol, coordinator, sealed_list
) -> None:  # type: ignore[no-untyped-def]
    people = [enrol() for _ in range(6)]
    for person in people:
        journey.participant_randomise(participant_id=person.pk, by=coordinator)
    for person in Participant.objects.filter(pk__in=[p.pk for p in people]).select_related("allocation__arm"):
        expected = 6 if person.allocation.arm.code == "walking" else 0
        assert Session.objects.filter(participant=person).count() == expected


def test_free_slots_follow_clinic_hours_minus_leave_holidays_and_bookings(walkback: Trial, physio, booker) -> None:
    participant = randomised(walkback, "walking")
    syd = walkback.sites.get(code="SYD")
    Leave.objects.create(physiotherapist=physio, starts_at=sydney(4, 0), ends_at=sydney(5, 0), reason="Course")
    Holiday.objects.create(trial=walkback, date=dt.date(2026, 3, 5), name="Clinic closed").sites.add(syd)
    book(session(participant, 1), sydney(3, 9), booker)

    slots = selectors.physiotherapist_slots(
        physiotherapist=physio, trial=walkback, date_from=dt.date(2026, 3, 3), date_to=dt.date(2026, 3, 6), now=NOW
    )
    syd_slots = [s.starts_at for s in slots if s.site_id == syd.pk]
    # 45-minute slots 09:00-12:00 (four), Tuesday minus the booking, Wednesday on leave,
    # Thursday a holiday at SYD, Friday free.
    assert syd_slots == [
        sydney(3, 9, 45),
        sydney(3, 10, 30),
        sydney(3, 11, 15),
        sydney(6, 9),
        sydney(6, 9, 45),
        sydney(6, 10, 30),
        sydney(6, 11, 15),
    ]


def test_a_physiotherapists_own_hours_replace_the_clinic_default(walkback: Trial, physio) -> None:
    syd = walkback.sites.get(code="SYD")
    WorkingHours.objects.create(site=syd, physiotherapist=physio, weekday=1, start=dt.time(14), end=dt.time(15, 30))
    slots = selectors.physiotherapist_slots(
        physiotherapist=physio, trial=walkback, date_from=dt.date(2026, 3, 3), date_to=dt.date(2026, 3, 3), now=NOW
    )
    assert [s.starts_at for s in slots if s.site_id == syd.pk] == [sydney(3, 14), sydney(3, 14, 45)]


def test_brisbane_hours_are_brisbane_wall_time_while_sydney_is_on_daylight_saving(walkback: Trial, physio) -> None:
    bne = walkback.sites.get(code="BNE")
    slots = selectors.physiotherapist_slots(
        physiotherapist=physio, trial=walkback, date_from=dt.date(2026, 3, 3), date_to=dt.date(2026, 3, 3), now=NOW
    )
    first = next(s for s in slots if s.site_id == bne.pk)
    assert first.starts_at == dt.datetime(2026, 3, 2, 23, 0, tzinfo=UTC)  # 09:00 in Brisbane (+10)
    assert first.starts_at == sydney(3, 10)  # which staff in Sydney see as 10:00


def test_booking_inside_the_window_then_moving_it_frees_the_first_slot(walkback: Trial, physio, booker) -> None:
    participant = randomised(walkback, "walking", email="w@example.org")
    first = book(session(participant, 1), sydney(5, 9), booker)
    assert first.session.status == SessionStatus.BOOKED and not first.rescheduled
    assert first.session.ends_at == sydney(5, 9, 45)
    moved = book(session(participant, 1), sydney(5, 9, 45), booker, mode="video")
    assert moved.rescheduled and moved.session.meeting_link.startswith("https://")
    slots = selectors.physiotherapist_slots(
        physiotherapist=physio, trial=walkback, date_from=dt.date(2026, 3, 5), date_to=dt.date(2026, 3, 5), now=NOW
    )
    assert sydney(5, 9) in [s.starts_at for s in slots] and sydney(5, 9, 45) not in [s.starts_at for s in slots]
    steps = sorted(Message.objects.filter(session=first.session).values_list("step", "status"))
    # The unsent confirmation of the old time is dropped; the update and its reminder replace it.
    assert steps == [
        ("confirmation-1", "cancelled"),
        ("reminder-1", "cancelled"),
        ("reminder-2", "planned"),
        ("update-2", "planned"),
    ]


def test_video_rooms_are_random_per_session_and_never_derived_from_its_id(walkback: Trial, physio, booker) -> None:
    participant = randomised(walkback, "walking", email="w@example.org")
    rooms = list(Session.objects.filter(participant=participant).values_list("id", "video_room"))
    assert len({room for _, room in rooms}) == len(rooms) == 6
    assert all(len(room) >= 24 and str(pk) != room for pk, room in rooms)
    booked = book(session(participant, 1), sydney(5, 9), booker, mode="video").session
    assert booked.meeting_link == f"https://meet.jit.si/walkback-{booked.video_room}"
    assert f"-{booked.pk}" not in booked.meeting_link and f"session-{booked.pk}" not in booked.meeting_link


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("https://meet.jit.si/walkback-session-{session}", "{session} (its id) would make rooms guessable"),
        ("https://meet.jit.si/walkback", "must contain {room}"),
        ("https://meet.jit.si/{room}-{session}", "{session} (its id) would make rooms guessable"),
        ("https://meet.jit.si/{room}/{other}", "no other placeholder"),
    ],
)
def test_a_video_link_template_without_the_room_or_with_the_session_id_is_refused(walkback: Trial, template, message) -> None:
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError, transaction

    policy = walkback.intervention_policy
    policy.video_link_template = template
    with pytest.raises(ValidationError, match=re.escape(message)):
        policy.full_clean()
    if "{room}" not in template or "{session}" in template:  # the database refuses it too, whatever the path
        with pytest.raises(IntegrityError), transaction.atomic():
            policy.save()


def test_a_taken_slot_a_wrong_mode_and_an_unexplained_booking_outside_the_window_are_refused(
    walkback: Trial, physio, booker
) -> None:
    a, b = randomised(walkback, "walking"), randomised(walkback, "walking")
    book(session(a, 1), sydney(3, 9), booker)
    with pytest.raises(Conflict, match="no longer free"):
        book(session(b, 1), sydney(3, 9), booker)
    with pytest.raises(ApplicationError, match="can be in person, video call") as wrong:
        book(session(b, 1), sydney(3, 9, 45), booker, mode="phone")
    assert "mode" in wrong.value.errors
    late = sydney(27, 9)  # after session 1's window (2-23 March)
    with pytest.raises(ApplicationError, match="outside session 1's window") as outside:
        book(session(b, 1), late, booker)
    assert "reason" in outside.value.errors
    booked = book(session(b, 1), late, booker, reason="Participant travelling until the 26th")
    assert booked.session.outside_window_reason == "Participant travelling until the 26th"


def test_only_roles_that_book_may_book(walkback: Trial, physio, make_staff) -> None:
    participant = randomised(walkback, "walking")
    with pytest.raises(NotAllowed):
        book(session(participant, 1), sydney(3, 9), make_staff("statistician"))
    with pytest.raises(NotAllowed, match="site"):
        book(session(participant, 1), sydney(3, 9), make_staff("coordinator", sites=["NCL"]))


def test_cancelling_a_booking_needs_a_reason_and_frees_the_slot(walkback: Trial, physio, booker) -> None:
    participant = randomised(walkback, "walking", email="w@example.org")
    booked = book(session(participant, 1), sydney(3, 9), booker).session
    with pytest.raises(ApplicationError, match="why"):
        services.session_cancel_booking(session_id=booked.pk, reason=" ", by=booker)
    with time_machine.travel(NOW, tick=False):
        services.session_cancel_booking(session_id=booked.pk, reason="Participant unwell", by=booker)
    booked.refresh_from_db()
    assert booked.status == SessionStatus.PLANNED and booked.starts_at is None
    assert booked.cancelled_reason == "Participant unwell"
    assert Message.objects.get(session=booked, step="cancelled-1").payload == {"was_at": sydney(3, 9).isoformat()}
    other = randomised(walkback, "walking")
    assert book(session(other, 1), sydney(3, 9), booker).session.starts_at == sydney(3, 9)


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_bookings_of_one_slot_give_exactly_one(walkback: Trial, physio, booker) -> None:
    people = [randomised(walkback, "walking") for _ in range(20)]
    barrier = threading.Barrier(20)
    outcomes: list[str] = []

    def attempt(participant: Participant) -> None:
        try:
            barrier.wait()
            services.session_book(
                session_id=session(participant, 1).pk, starts_at=sydney(3, 9), mode="in_person", by=booker, now=NOW
            )
            outcomes.append("booked")
        except Conflict:
            outcomes.append("409")
        except Exception as exc:
            outcomes.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["409"] * 19 + ["booked"]
    assert Session.objects.filter(physiotherapist=physio, starts_at=sydney(3, 9), status="booked").count() == 1


def test_the_database_refuses_two_sessions_in_one_physiotherapists_time(walkback: Trial, physio) -> None:
    from django.db import IntegrityError, transaction

    a, b = randomised(walkback, "walking"), randomised(walkback, "walking")
    Session.objects.filter(pk=session(a, 1).pk).update(
        status="booked", starts_at=sydney(3, 9), ends_at=sydney(3, 10), mode="video"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Session.objects.filter(pk=session(b, 1).pk).update(
            status="booked", starts_at=sydney(3, 9, 30), ends_at=sydney(3, 10, 15), mode="video"
        )


def test_recording_a_prescription_session_requires_the_prescription(walkback: Trial, physio, booker) -> None:
    participant = randomised(walkback, "walking")
    booked = book(session(participant, 1), sydney(3, 9), booker).session
    after = sydney(3, 10)
    with pytest.raises(ApplicationError) as missing:
        services.session_record(session_id=booked.pk, attendance="attended", duration_minutes=40, by=physio, now=after)
    assert set(missing.value.errors) == {"prescription"}
    record = services.session_record(
        session_id=booked.pk,
        attendance="attended",
        duration_minutes=40,
        topics=["pain_science", "walking_goals"],
        notes="Good start",
        prescription=services.PrescriptionInput(walks_per_week=3, minutes_per_walk=15, progression="+5 min a fortnight"),
        by=physio,
        now=after,
    )
    booked.refresh_from_db()
    assert booked.status == SessionStatus.ATTENDED and record.topics == ["pain_science", "walking_goals"]
    assert booked.prescription.walks_per_week == 3 and booked.prescription.starts_on == dt.date(2026, 3, 3)
    with pytest.raises(ApplicationError, match="reason"):
        services.session_record(session_id=booked.pk, attendance="no_show", by=physio, now=after)
    services.session_record(
        session_id=booked.pk, attendance="no_show", by=physio, now=after, reason="Entered on the wrong person"
    )
    booked.refresh_from_db()
    assert booked.status == SessionStatus.NO_SHOW


def test_a_session_cannot_be_recorded_before_it_starts_or_by_a_coordinator(walkback: Trial, physio, booker) -> None:
    participant = randomised(walkback, "walking")
    booked = book(session(participant, 2), sydney(16, 9), booker, mode="phone").session
    with pytest.raises(Conflict, match="not started"):
        services.session_record(session_id=booked.pk, attendance="attended", duration_minutes=20, by=physio, now=NOW)
    with pytest.raises(NotAllowed):
        services.session_record(session_id=booked.pk, attendance="attended", duration_minutes=20, by=booker, now=sydney(17, 9))


def test_withdrawal_from_the_intervention_cancels_future_sessions_and_their_reminders(
    walkback: Trial, physio, booker, coordinator
) -> None:  # type: ignore[no-untyped-def]
    participant = randomised(walkback, "walking", email="w@example.org")
    book(session(participant, 1), sydney(3, 9), booker)
    with time_machine.travel(NOW, tick=False):
        journey.participant_withdraw(participant=participant, scope="intervention", reason="Too busy", by=coordinator)
    assert set(Session.objects.filter(participant=participant).values_list("status", flat=True)) == {"cancelled"}
    assert not Message.objects.filter(participant=participant, status=MessageStatus.PLANNED).exists()


def test_walks_are_logged_for_past_days_and_adherence_is_weekly_against_the_prescription(walkback: Trial, physio, booker) -> None:
    participant = randomised(walkback, "walking")
    booked = book(session(participant, 1), sydney(3, 9), booker).session
    services.session_record(
        session_id=booked.pk,
        attendance="attended",
        duration_minutes=40,
        prescription=services.PrescriptionInput(walks_per_week=2, minutes_per_walk=20),
        by=physio,
        now=sydney(3, 10),
    )
    today = dt.datetime(2026, 3, 20, 1, 0, tzinfo=UTC)  # Friday 20 March in Sydney
    for day, minutes in ((3, 20), (5, 25), (10, 15)):
        services.walk_log(participant=participant, walked_on=dt.date(2026, 3, day), minutes=minutes, steps=2000, now=today)
    with pytest.raises(ApplicationError) as future:
        services.walk_log(participant=participant, walked_on=dt.date(2026, 3, 21), minutes=10, now=today)
    assert "walked_on" in future.value.errors
    with pytest.raises(ApplicationError) as too_long:
        services.walk_log(participant=participant, walked_on=dt.date(2026, 3, 19), minutes=0, now=today)
    assert "minutes" in too_long.value.errors

    report = selectors.adherence(participant=participant, today=dt.date(2026, 3, 20))
    assert [(w.starts_on, w.walks, w.minutes, w.met) for w in report.weeks[:3]] == [
        (dt.date(2026, 3, 2), 2, 45, True),
        (dt.date(2026, 3, 9), 1, 15, False),
        (dt.date(2026, 3, 16), 0, 0, False),
    ]
    assert len(report.weeks) == 3  # the weeks so far
    assert not report.inactive and report.inactive_days == 10
    assert selectors.adherence(participant=participant, today=dt.date(2026, 3, 24)).inactive  # 14 days with nothing
