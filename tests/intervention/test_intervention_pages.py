"""The intervention's staff pages: the physiotherapist's agenda, booking, recording, availability,
and the sessions section of the participant page (shown only to those who may see the arm)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from intervention import services
from intervention.models import ExtraSlot, Leave, SessionStatus, Walk, WorkingHours
from tests.intervention import test_intervention
from tests.intervention.test_intervention import NOW, book, randomised, session, sydney
from trial.errors import Conflict, NotAllowed
from trial.models import StaffProfile, Trial

UTC = dt.UTC

# Fixtures shared with the service tests.
physio = test_intervention.physio
booker = test_intervention.booker


def _html(response: Any) -> str:
    return response.content.decode()


def _day(html: str, day: str) -> str:
    return html.split(f'data-testid="agenda-day-{day}"')[1].split("</section>")[0]


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def _agenda(date: str, view: str = "day", **params: Any) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"date": date, "view": view, **params}.items())
    return f"{reverse('intervention-agenda')}?{query}"


@pytest.fixture
def sydney_physio(physio: Any) -> Any:
    StaffProfile.objects.filter(user=physio).update(timezone="Australia/Sydney")
    return physio


# --- Agenda ---------------------------------------------------------------------------------


def test_the_day_agenda_shows_a_brisbane_session_in_sydney_time_with_the_clinics_own_time(
    client: Client, walkback: Trial, sydney_physio: Any, booker: Any
) -> None:
    syd, bne = randomised(walkback, "walking"), randomised(walkback, "walking", site="BNE")
    book(session(syd, 1), sydney(3, 9), booker)
    # 09:00 in Brisbane (UTC+10, no daylight saving) is 10:00 in Sydney (UTC+11 in March).
    book(session(bne, 1), dt.datetime(2026, 3, 2, 23, 0, tzinfo=UTC), booker, mode="video")
    client.force_login(sydney_physio)

    with time_machine.travel(sydney(3, 9, 30), tick=False):  # the Sydney session has started
        html = _html(client.get(_agenda("2026-03-03")))

    day = _day(html, "2026-03-03")
    rows = day.split('data-testid="agenda-session"')[1:]
    assert len(rows) == 2
    assert "09:00-09:45" in rows[0] and syd.study_id in rows[0] and "clinic-time" not in rows[0]
    assert f'href="{reverse("participant-detail", args=[syd.pk])}"' in rows[0]
    assert "10:00-10:45" in rows[1] and bne.study_id in rows[1] and "(09:00 Brisbane time)" in rows[1]
    assert "Video call" in rows[1] and "Booked" in rows[1]
    # Record once the session has started: the Sydney one, not yet the Brisbane one.
    assert reverse("intervention-record", args=[session(syd, 1).pk]) in rows[0]
    assert 'data-testid="record-button"' not in rows[1]
    # Free time around the bookings, each clinic's slot in Sydney time and its own.
    free = re.findall(r'data-testid="agenda-free">\s*<span class="text-nowrap">([0-9:-]+)</span>', day)
    assert free == ["10:45-11:30", "11:15-12:00", "11:30-12:15", "12:15-13:00"]
    assert "(09:45 Brisbane time)" in day
    assert 'data-testid="agenda-prev"' in html and "date=2026-03-02" in html and "date=2026-03-04" in html


def test_the_week_agenda_covers_monday_to_sunday_with_prev_and_next_weeks(
    client: Client, walkback: Trial, sydney_physio: Any, booker: Any
) -> None:
    participant = randomised(walkback, "walking")
    book(session(participant, 1), sydney(5, 9), booker)
    client.force_login(sydney_physio)
    with time_machine.travel(NOW, tick=False):
        html = _html(client.get(_agenda("2026-03-04", "week")))
    assert re.findall(r'data-testid="agenda-day-([0-9-]+)"', html) == [f"2026-03-0{d}" for d in range(2, 9)]
    assert participant.study_id in _day(html, "2026-03-05")
    assert 'data-testid="agenda-free"' not in _day(html, "2026-03-07")  # Saturday: no hours
    assert "date=2026-02-23&amp;view=week" in html and "date=2026-03-09&amp;view=week" in html
    assert "Agenda" in html and 'href="/sessions/agenda/"' in html  # the physiotherapist's nav item


def test_a_coordinator_picks_a_physiotherapist_and_bad_input_gives_a_message(
    client: Client, walkback: Trial, physio: Any, booker: Any, make_staff: Any
) -> None:
    participant = randomised(walkback, "walking")
    book(session(participant, 1), sydney(3, 9), booker)
    client.force_login(booker)
    with time_machine.travel(NOW, tick=False):
        html = _html(client.get(_agenda("2026-03-03", physiotherapist=physio.pk)))
        assert participant.study_id in html and 'data-testid="record-button"' not in html  # coordinators do not deliver
        bad = client.get(_agenda("2026-13-45", "fortnight", physiotherapist=999999))
    assert bad.status_code == 200
    assert "Give the date as YYYY-MM-DD." in _html(bad) and "Choose a physiotherapist at your sites." in _html(bad)
    assert "phil" in _html(bad)  # the default: the first physiotherapist at the coordinator's sites

    client.force_login(make_staff("investigator"))
    assert client.get(_agenda("2026-03-03")).status_code == 403


def test_the_agenda_keeps_its_query_count_as_bookings_grow(
    client: Client, walkback: Trial, sydney_physio: Any, booker: Any
) -> None:
    client.force_login(sydney_physio)
    url = _agenda("2026-03-04", "week")
    first = randomised(walkback, "walking")
    book(session(first, 1), sydney(3, 9), booker)
    with time_machine.travel(NOW, tick=False):
        few = _queries(client, url)
    for day in (4, 5, 6):
        for hour in (9, 10):
            other = randomised(walkback, "walking", site="BNE" if hour == 10 else "SYD")
            book(session(other, 1), sydney(day, hour) if hour == 9 else sydney(day, 10, 30), booker)
    with time_machine.travel(sydney(6, 12), tick=False):
        html = _html(client.get(url))
        assert html.count('data-testid="agenda-session"') == 7
        assert html.count('data-testid="record-button"') == 7
        many = _queries(client, url)
    assert many == few


# --- Booking --------------------------------------------------------------------------------


def test_the_booking_page_shows_the_window_and_free_slots_and_books_one(
    client: Client, walkback: Trial, physio: Any, booker: Any
) -> None:
    participant = randomised(walkback, "walking", email="w@example.org")
    first = session(participant, 1)
    url = reverse("intervention-book", args=[first.pk])
    client.force_login(booker)
    with time_machine.travel(NOW, tick=False):
        html = _html(client.get(url))
        assert "Mon 2 Mar \u2013 Mon 23 Mar 2026" in html
        assert "In person, Video call" in html and 'data-testid="physio">phil<' in html
        # Step 1, the mode: no days nor times before it is chosen.
        assert f'href="{url}?mode=video"' in html and 'data-testid="slot-day-' not in html and 'name="slot"' not in html
        html = _html(client.get(url, {"mode": "video", "day": "2026-03-03"}))
        assert 'data-testid="slot-day-2026-03-03"' in html and 'data-testid="slot-day-2026-03-07"' not in html
        assert sydney(3, 9).isoformat() in html
        response = client.post(url, {"slot": sydney(3, 9).isoformat(), "mode": "video", "reason": ""})
    assert response.status_code == 302 and response["Location"] == reverse("participant-detail", args=[participant.pk])
    first.refresh_from_db()
    assert (first.status, first.starts_at, first.mode) == (SessionStatus.BOOKED, sydney(3, 9), "video")

    with time_machine.travel(NOW, tick=False):
        html = _html(client.get(url))  # the same page reschedules
    assert "Move the booking to this slot" in html and 'data-testid="cancel-form"' in html
    assert 'data-testid="current-booking">Tue 03 Mar 2026 09:00-09:45<' in html


def test_a_slot_taken_meanwhile_gives_a_message_and_fresh_slots(
    client: Client, walkback: Trial, physio: Any, booker: Any
) -> None:
    a, b = randomised(walkback, "walking"), randomised(walkback, "walking")
    client.force_login(booker)
    url = reverse("intervention-book", args=[session(b, 1).pk])
    with time_machine.travel(NOW, tick=False):
        assert sydney(3, 9).isoformat() in _html(client.get(url, {"mode": "in_person", "day": "2026-03-03"}))
    book(session(a, 1), sydney(3, 9), booker)  # someone else books it first
    with time_machine.travel(NOW, tick=False):
        response = client.post(url, {"slot": sydney(3, 9).isoformat(), "mode": "in_person"})
    html = _html(response)
    assert response.status_code == 409
    assert "That time is no longer free: choose another slot." in html
    assert f'value="{sydney(3, 9).isoformat()}"' not in html and f'value="{sydney(3, 9, 45).isoformat()}"' in html
    assert session(b, 1).status == SessionStatus.PLANNED


def test_booking_outside_the_window_needs_a_reason(client: Client, walkback: Trial, physio: Any, booker: Any) -> None:
    participant = randomised(walkback, "walking")
    first = session(participant, 1)
    url = reverse("intervention-book", args=[first.pk])
    late = sydney(24, 9)  # the day after session 1's window (2-23 March)
    client.force_login(booker)
    with time_machine.travel(NOW, tick=False):
        html = _html(client.get(f"{url}?from=2026-03-24&to=2026-03-25&mode=in_person"))
        assert 'data-testid="slot-day-2026-03-24"' in html and "outside the window" in html
        assert late.isoformat() in html
        bad_range = _html(client.get(f"{url}?from=2026-03-25&to=2026-03-24&mode=in_person"))
        assert "The end comes before the start." in bad_range
        refused = client.post(f"{url}?from=2026-03-24&to=2026-03-25", {"slot": late.isoformat(), "mode": "in_person"})
        assert refused.status_code == 400
        assert "outside session 1&#x27;s window" in _html(refused) and "Required outside the window." in _html(refused)
        assert session(participant, 1).status == SessionStatus.PLANNED
        done = client.post(
            f"{url}?from=2026-03-24&to=2026-03-25",
            {"slot": late.isoformat(), "mode": "in_person", "reason": "Away until the 23rd"},
        )
    assert done.status_code == 302
    first.refresh_from_db()
    assert first.starts_at == late and first.outside_window_reason == "Away until the 23rd"


def test_booking_goes_mode_then_day_then_time_with_plain_links(client: Client, walkback: Trial, physio: Any, booker: Any) -> None:
    participant = randomised(walkback, "walking")
    url = reverse("intervention-book", args=[session(participant, 1).pk])
    client.force_login(booker)
    with time_machine.travel(NOW, tick=False):
        html = _html(client.get(url, {"mode": "in_person"}))
        days = re.findall(r'data-testid="slot-day-([0-9-]+)"', html)
        assert days and days == sorted(days) and "2026-03-07" not in days  # Saturday: no hours
        # The first day with free times is chosen; each day says how many times it has free.
        assert f'aria-current="date" data-testid="slot-day-{days[0]}"' in html
        assert re.search(r"\d+ free times", html)
        assert f'data-testid="times-{days[0]}"' in html and 'name="mode" value="in_person"' in html
        html = _html(client.get(url, {"mode": "in_person", "day": "2026-03-04"}))
        times = html.split('data-testid="times-2026-03-04"')[1].split("</fieldset>")[0]
        assert sydney(4, 9).isoformat() in times and sydney(3, 9).isoformat() not in times
        # A day link keeps the mode and the range; another mode starts the day over.
        assert f'href="{url}?mode=in_person&amp;day=2026-03-03"' in html
        assert f'href="{url}?mode=video"' in html
        # Nonsense in the query string: the first step again, never an error.
        for params in ({"mode": "teleport"}, {"mode": "in_person", "day": "someday"}, {"mode": "in_person", "day": "2026-03-07"}):
            assert client.get(url, params).status_code == 200
        response = client.post(f"{url}?mode=in_person&day=2026-03-04", {"slot": sydney(4, 9).isoformat(), "mode": "in_person"})
    assert response.status_code == 302
    assert session(participant, 1).starts_at == sydney(4, 9)


def test_booking_without_a_time_says_so_on_the_chosen_day(client: Client, walkback: Trial, physio: Any, booker: Any) -> None:
    participant = randomised(walkback, "walking")
    url = reverse("intervention-book", args=[session(participant, 1).pk])
    client.force_login(booker)
    with time_machine.travel(NOW, tick=False):
        response = client.post(f"{url}?mode=video&day=2026-03-04", {"mode": "video"})
    html = _html(response)
    assert response.status_code == 200 and "Choose a free slot." in html
    assert 'data-testid="times-2026-03-04"' in html and 'aria-current="true" data-testid="mode-video"' in html
    assert session(participant, 1).status == SessionStatus.PLANNED


def test_cancelling_a_booking_needs_a_reason(client: Client, walkback: Trial, physio: Any, booker: Any) -> None:
    participant = randomised(walkback, "walking")
    booked = book(session(participant, 1), sydney(3, 9), booker).session
    url = reverse("intervention-cancel", args=[booked.pk])
    client.force_login(booker)
    with time_machine.travel(NOW, tick=False):
        response = client.post(url, {"reason": ""})
        assert response.status_code == 200 and "Say why the booking is cancelled." in _html(response)
        assert session(participant, 1).status == SessionStatus.BOOKED
        assert client.get(url).status_code == 405
        response = client.post(url, {"reason": "Participant unwell"})
    assert response.status_code == 302
    booked.refresh_from_db()
    assert (booked.status, booked.starts_at, booked.cancelled_reason) == (SessionStatus.PLANNED, None, "Participant unwell")


# --- Recording ------------------------------------------------------------------------------


def test_recording_a_prescription_session_requires_the_prescription(
    client: Client, walkback: Trial, physio: Any, booker: Any
) -> None:
    participant = randomised(walkback, "walking")
    booked = book(session(participant, 1), sydney(3, 9), booker).session
    url = reverse("intervention-record", args=[booked.pk])
    client.force_login(physio)
    with time_machine.travel(NOW, tick=False):
        html = _html(client.get(url))
    assert 'data-testid="refusal"' in html and "has not started yet" in html

    with time_machine.travel(sydney(3, 10), tick=False):
        html = _html(client.get(url))
        assert "Pain science: why back pain recurs" in html and 'name="walks_per_week"' in html
        missing = client.post(url, {"attendance": "attended", "duration_minutes": "40", "topics": ["fear"]})
        assert missing.status_code == 400
        assert re.search(r'id="id_walks_per_week".*?This session sets the walking prescription', _html(missing), re.S)
        assert not hasattr(session(participant, 1), "record")
        half = client.post(url, {"attendance": "attended", "duration_minutes": "40", "walks_per_week": "3"})
        assert "Give both walks per week and minutes per walk." in _html(half)
        done = client.post(
            url,
            {
                "attendance": "attended",
                "duration_minutes": "40",
                "topics": ["fear", "walking_goals"],
                "notes": "Good start",
                "walks_per_week": "3",
                "minutes_per_walk": "15",
                "progression": "+5 min a fortnight",
            },
        )
        assert done.status_code == 302
        booked.refresh_from_db()
        assert booked.status == SessionStatus.ATTENDED and booked.record.topics == ["fear", "walking_goals"]
        assert (booked.prescription.walks_per_week, booked.prescription.minutes_per_walk) == (3, 15)

        html = _html(client.get(url))  # a correction needs a reason
        assert "Correct the record" in html and 'name="reason"' in html
        refused = client.post(url, {"attendance": "no_show"})
        assert "say why it is corrected" in _html(refused)
        assert client.post(url, {"attendance": "no_show", "reason": "Wrong participant"}).status_code == 302
    booked.refresh_from_db()
    assert booked.status == SessionStatus.NO_SHOW


def test_a_coordinator_may_not_record_and_a_check_in_has_no_prescription_fields(
    client: Client, walkback: Trial, physio: Any, booker: Any
) -> None:
    participant = randomised(walkback, "walking")
    booked = book(session(participant, 2), sydney(16, 9), booker, mode="phone").session
    url = reverse("intervention-record", args=[booked.pk])
    with time_machine.travel(sydney(16, 10), tick=False):
        client.force_login(booker)
        assert client.get(url).status_code == 403
        client.force_login(physio)
        html = _html(client.get(url))
    assert 'name="attendance"' in html and 'name="walks_per_week"' not in html


# --- The participant page -------------------------------------------------------------------


def test_the_participant_page_shows_sessions_prescription_and_diary_to_a_coordinator(
    client: Client, walkback: Trial, physio: Any, booker: Any
) -> None:
    participant = randomised(walkback, "walking", email="w@example.org")
    booked = book(session(participant, 1), sydney(3, 9), booker).session
    services.session_record(
        session_id=booked.pk,
        attendance="attended",
        duration_minutes=40,
        prescription=services.PrescriptionInput(walks_per_week=2, minutes_per_walk=20),
        by=physio,
        now=sydney(3, 10),
    )
    today = sydney(20, 12)
    for day, minutes in ((3, 20), (5, 25)):
        services.walk_log(participant=participant, walked_on=dt.date(2026, 3, day), minutes=minutes, now=today)
    client.force_login(booker)
    with time_machine.travel(today, tick=False):
        html = _html(client.get(reverse("participant-detail", args=[participant.pk])))
    section = html.split('data-testid="sessions-section"')[1].split("</section>")[0]
    assert section.count('data-testid="session-') >= 6
    assert "Attended" in section and "Tue 3 Mar 2026 09:00" in section and "40 min" in section
    assert reverse("intervention-book", args=[session(participant, 2).pk]) in section  # coordinators book
    assert reverse("intervention-record", args=[booked.pk]) not in section  # but do not record
    assert "2 walks a week, 20 minutes each" in section
    week1 = section.split('data-testid="week-1"')[1].split("</tr>")[0]
    assert "2 / 2" in week1 and "45 / 40" in week1 and "met" in week1
    assert 'data-testid="adherence-chart"' in section and "<rect" in section
    assert 'data-testid="inactive-flag">Inactive for 15 days<' in section
    assert "First confirmation" in html  # the session's messages, for who may see the arm


def test_a_blinded_investigator_sees_no_sessions_and_session_pages_are_not_found(
    client: Client, walkback: Trial, physio: Any, booker: Any, make_staff: Any
) -> None:
    participant = randomised(walkback, "walking", email="w@example.org")
    booked = book(session(participant, 1), sydney(3, 9), booker).session
    client.force_login(make_staff("investigator"))
    with time_machine.travel(sydney(3, 10), tick=False):
        html = _html(client.get(reverse("participant-detail", args=[participant.pk])))
        assert 'data-testid="sessions-section"' not in html and "Education sessions" not in html
        assert "First confirmation" not in html and "First reminder" not in html  # session messages reveal the arm too
        for name in ("intervention-book", "intervention-record"):
            assert client.get(reverse(name, args=[booked.pk])).status_code == 404
        assert client.post(reverse("intervention-cancel", args=[booked.pk]), {"reason": "x"}).status_code == 404
        assert client.get(reverse("intervention-book", args=[999999])).status_code == 404
    assert session(participant, 1).status == SessionStatus.BOOKED


def test_a_control_participant_has_no_sessions_section(client: Client, walkback: Trial, physio: Any, booker: Any) -> None:
    control = randomised(walkback, "control")
    client.force_login(booker)
    html = _html(client.get(reverse("participant-detail", args=[control.pk])))
    assert 'data-testid="sessions-section"' not in html


def test_the_participant_page_keeps_its_query_count_as_sessions_and_walks_grow(
    client: Client, walkback: Trial, physio: Any, booker: Any
) -> None:
    participant = randomised(walkback, "walking", email="w@example.org")
    url = reverse("participant-detail", args=[participant.pk])
    client.force_login(physio)
    book(session(participant, 1), sydney(3, 9), booker)
    with time_machine.travel(sydney(3, 12), tick=False):
        few = _queries(client, url)
    services.session_record(
        session_id=session(participant, 1).pk,
        attendance="attended",
        duration_minutes=30,
        prescription=services.PrescriptionInput(walks_per_week=3, minutes_per_walk=20),
        by=physio,
        now=sydney(3, 10),
    )
    book(session(participant, 2), sydney(16, 9), booker, mode="phone")
    book(session(participant, 3), sydney(31, 9), booker)
    for day in range(3, 30):
        Walk.objects.create(participant=participant, walked_on=dt.date(2026, 3, day), minutes=20 + day)
    with time_machine.travel(dt.datetime(2026, 4, 20, 2, 0, tzinfo=UTC), tick=False):
        html = _html(client.get(url))
        assert html.count('data-testid="week-') == 8 and "Record" in html
        many = _queries(client, url)
    assert many == few


# --- Availability ---------------------------------------------------------------------------


def test_the_availability_page_shows_hours_and_adds_and_removes_leave(
    client: Client, walkback: Trial, sydney_physio: Any, booker: Any
) -> None:
    syd = walkback.sites.get(code="SYD")
    WorkingHours.objects.create(site=syd, physiotherapist=sydney_physio, weekday=1, start=dt.time(14), end=dt.time(16))
    url = reverse("intervention-availability")
    client.force_login(sydney_physio)
    with time_machine.travel(NOW, tick=False):
        html = _html(client.get(url))
        syd_card = html.split('data-testid="hours-SYD"')[1].split("</table>")[0]
        bne_card = html.split('data-testid="hours-BNE"')[1].split("</table>")[0]
        assert "Your own hours" in syd_card and "Tuesday" in syd_card and "14:00-16:00" in syd_card
        assert "default hours" in bne_card and bne_card.count("09:00-12:00") == 5

        response = client.post(url, {"what": "leave", "starts_on": "2026-03-04", "ends_on": "2026-03-04", "reason": "Course"})
        assert response.status_code == 302
        leave = Leave.objects.get(physiotherapist=sydney_physio)
        assert (leave.starts_at, leave.ends_at) == (sydney(4, 0), sydney(5, 0))
        assert 'data-testid="remove-leave-' in _html(client.get(url))

    participant = randomised(walkback, "walking")
    book(session(participant, 1), sydney(6, 10), booker)  # 09:00 at BNE (SYD now has Tuesday afternoons only)
    with time_machine.travel(NOW, tick=False):
        clash = client.post(url, {"what": "leave", "starts_on": "2026-03-06", "ends_on": "2026-03-06"})
        assert clash.status_code == 409
        assert f"session 1 of {participant.study_id} on Fri 06 Mar 2026 10:00" in _html(clash)
        assert Leave.objects.count() == 1
        backwards = client.post(
            url,
            {"what": "leave", "starts_on": "2026-03-10", "starts_time": "12:00", "ends_on": "2026-03-10", "ends_time": "09:00"},
        )
        assert "Must be after the start." in _html(backwards)
        assert client.post(reverse("intervention-leave-remove", args=[leave.pk])).status_code == 302
    assert not Leave.objects.exists()


def test_extra_time_adds_slots_and_is_removed_unless_booked(
    client: Client, walkback: Trial, sydney_physio: Any, booker: Any
) -> None:
    syd = walkback.sites.get(code="SYD")
    url = reverse("intervention-availability")
    client.force_login(sydney_physio)
    with time_machine.travel(NOW, tick=False):
        response = client.post(
            url, {"what": "extra", "site": syd.pk, "day": "2026-03-07", "start": "09:00", "end": "10:30", "modes": ["video"]}
        )
        assert response.status_code == 302
        extra = ExtraSlot.objects.get(physiotherapist=sydney_physio)
        assert (extra.starts_at, extra.ends_at, extra.modes) == (sydney(7, 9), sydney(7, 10, 30), ["video"])
        saturday = _day(_html(client.get(_agenda("2026-03-07"))), "2026-03-07")
        assert saturday.count('data-testid="agenda-free"') == 2 and "Video call" in saturday
        short = client.post(url, {"what": "extra", "site": syd.pk, "day": "2026-03-08", "start": "09:00", "end": "09:30"})
        assert "Shorter than one session (45 minutes)." in _html(short)

    participant = randomised(walkback, "walking")
    book(session(participant, 1), sydney(7, 9), booker, mode="video")
    with time_machine.travel(NOW, tick=False):
        client.post(reverse("intervention-extra-remove", args=[extra.pk]))
        assert "Sessions are booked in that time" in _html(client.get(url))
    assert ExtraSlot.objects.filter(pk=extra.pk).exists()


def test_availability_services_refuse_someone_elses_time_and_past_leave(
    walkback: Trial, physio: Any, booker: Any, make_staff: Any
) -> None:
    other = make_staff("physiotherapist", sites=["SYD"], username="other-physio")
    with pytest.raises(NotAllowed, match="own availability"):
        services.leave_add(
            trial=walkback, physiotherapist=physio, starts_at=sydney(4, 0), ends_at=sydney(5, 0), by=other, now=NOW
        )
    with pytest.raises(NotAllowed):
        services.leave_add(
            trial=walkback, physiotherapist=physio, starts_at=sydney(4, 0), ends_at=sydney(5, 0), by=booker, now=NOW
        )
    leave = services.leave_add(
        trial=walkback, physiotherapist=physio, starts_at=sydney(4, 0), ends_at=sydney(5, 0), by=physio, now=NOW
    )
    with pytest.raises(Conflict, match="overlaps your leave"):
        services.leave_add(
            trial=walkback, physiotherapist=physio, starts_at=sydney(4, 12), ends_at=sydney(6, 0), by=physio, now=NOW
        )
    with pytest.raises(Conflict, match="stays on record"):
        services.leave_remove(trial=walkback, leave_id=leave.pk, by=physio, now=sydney(6, 0))
    with pytest.raises(NotAllowed):
        services.leave_remove(trial=walkback, leave_id=leave.pk, by=other, now=NOW)
    with pytest.raises(Conflict, match="on leave then"):
        services.extra_slot_add(
            trial=walkback,
            physiotherapist=physio,
            site=walkback.sites.get(code="SYD"),
            starts_at=sydney(4, 14),
            ends_at=sydney(4, 16),
            by=physio,
            now=NOW,
        )


# --- Admin ----------------------------------------------------------------------------------


def test_admin_configures_hours_audited_but_never_sees_sessions(client: Client, walkback: Trial, make_staff: Any) -> None:
    import pghistory.models

    client.force_login(make_staff("admin"))
    for model in ("interventionpolicy", "sessionplan", "workinghours", "extraslot", "leave", "holiday"):
        assert client.get(f"/admin/intervention/{model}/").status_code == 200, model
    response = client.post(
        "/admin/intervention/workinghours/add/",
        {
            "site": walkback.sites.get(code="SYD").pk,
            "physiotherapist": "",
            "weekday": 2,
            "start": "13:00",
            "end": "17:00",
            "modes": "[]",
        },
    )
    assert response.status_code == 302
    hours = WorkingHours.objects.get(weekday=2, start=dt.time(13))
    event = pghistory.models.Events.objects.tracks(hours).get()
    assert event.pgh_context["reason"] == "Edited in admin"
    # Sessions, records, prescriptions and walks reveal the arm: not for the (blinded) administrator.
    index = client.get("/admin/").content.decode()
    for model in ("session", "sessionrecord", "prescription", "walk"):
        assert f'href="/admin/intervention/{model}/"' not in index
        assert client.get(f"/admin/intervention/{model}/").status_code == 404
