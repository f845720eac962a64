"""The participant's own intervention pages, from their personal link: sessions, choosing a time,
and the walking diary. Participants outside the intervention arm find nothing there."""

# ruff: noqa: F811 - pytest fixtures imported from test_intervention are redefined as arguments
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.test import Client

from intervention import services
from intervention.models import Session, SessionStatus, Walk
from participants.links import access_link_issue
from participants.models import ContactDetails
from tests.intervention.test_intervention import NOW, book, booker, physio, randomised, session, sydney  # noqa: F401
from trial.models import Trial


@pytest.fixture(autouse=True)
def clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):  # Monday 2 March 2026, 11:00 in Sydney
        yield


@pytest.fixture
def walker(walkback: Trial, physio) -> Any:
    return randomised(walkback, "walking", email="w@example.org")


@pytest.fixture
def link(walker) -> str:
    return access_link_issue(participant=walker)


def page(response: Any) -> str:
    return response.content.decode()


def test_a_control_participant_finds_no_sessions_or_diary(walkback: Trial, physio, walker, client: Client) -> None:
    control = randomised(walkback, "control")
    token = access_link_issue(participant=control)
    assert client.get(f"/p/{token}/sessions/").status_code == 404
    assert client.get(f"/p/{token}/diary/").status_code == 404
    assert client.post(f"/p/{token}/diary/", {"walked_on": "2026-03-02", "minutes": "30"}).status_code == 404
    assert client.get(f"/p/{token}/sessions/{session(walker, 1).pk}/book/").status_code == 404
    assert not Walk.objects.exists()
    home = page(client.get(f"/p/{token}/"))
    assert "/sessions/" not in home and "/diary/" not in home and 'data-testid="programme-links"' not in home


def test_a_walking_participants_home_links_to_their_sessions_and_diary(link: str, client: Client) -> None:
    home = page(client.get(f"/p/{link}/"))
    assert f'href="/p/{link}/sessions/"' in home and f'href="/p/{link}/diary/"' in home


def test_an_unknown_link_finds_nothing(walker, client: Client) -> None:
    assert client.get("/p/not-a-token/sessions/").status_code == 404
    assert client.get("/p/not-a-token/diary/").status_code == 404


def test_the_sessions_page_offers_a_time_for_open_windows_only(link: str, client: Client) -> None:
    response = client.get(f"/p/{link}/sessions/")
    assert response.status_code == 200
    body = page(response)
    assert "Session 1: Baseline" in body and "Session 6: Month 6 booster" in body
    assert body.count('data-testid="choose-time"') == 1  # session 1's window (2-23 March) is open
    assert "You can choose a time from Thursday 12 March" in body  # session 2's window opens later


def test_a_participant_chooses_a_time_from_their_link_shown_in_their_own_time_zone(
    walker, physio, link: str, client: Client
) -> None:
    ContactDetails.objects.filter(participant=walker).update(timezone="Australia/Brisbane")
    first = session(walker, 1)

    choose = client.get(f"/p/{link}/sessions/{first.pk}/book/")

    assert choose.status_code == 200
    body = page(choose)
    assert "In person" in body and "Video call" in body and "Phone call" not in body  # session 1's modes
    assert "Tuesday 3 March" in body and "Monday 23 March" in body
    assert "Tuesday 24 March" not in body  # after the window
    # 09:00 in Sydney (AEDT) is 08:00 in Brisbane, where the participant lives.
    assert f'value="{sydney(3, 9).isoformat()}"' in body
    assert "8:00 a.m." in body
    # Today's remaining times: 11:15 Sydney is still ahead of 11:00.
    assert f'value="{sydney(2, 11, 15).isoformat()}"' in body
    assert f'value="{sydney(2, 9).isoformat()}"' not in body

    done = client.post(f"/p/{link}/sessions/{first.pk}/book/", {"starts_at": sydney(3, 9).isoformat(), "mode": "video"})

    assert done.status_code == 302 and done["Location"] == f"/p/{link}/sessions/"
    first.refresh_from_db()
    assert first.status == SessionStatus.BOOKED and first.mode == "video" and first.starts_at == sydney(3, 9)
    assert first.booked_by_id is None  # booked by the participant
    sessions = page(client.get(f"/p/{link}/sessions/"))
    assert "Booked: Baseline" in sessions
    assert "Tuesday 3 March 2026, 8:00 a.m." in sessions
    assert first.meeting_link and f'href="{first.meeting_link}"' in sessions
    assert 'data-testid="choose-time"' not in sessions
    # A booked session is not booked again from the link: the page sends them back.
    assert client.get(f"/p/{link}/sessions/{first.pk}/book/")["Location"] == f"/p/{link}/sessions/"


def test_the_mode_choice_filters_the_times(walkback: Trial, walker, physio, link: str, client: Client) -> None:
    syd = walkback.sites.get(code="SYD")
    syd.working_hours.filter(weekday=1).update(modes=["video"])  # Tuesdays at SYD: video only
    first = session(walker, 1)
    in_person = page(client.get(f"/p/{link}/sessions/{first.pk}/book/?mode=in_person"))
    video = page(client.get(f"/p/{link}/sessions/{first.pk}/book/?mode=video"))
    assert f'value="{sydney(3, 9).isoformat()}"' not in in_person
    assert f'value="{sydney(3, 9).isoformat()}"' in video
    assert f'value="{sydney(4, 9).isoformat()}"' in in_person
    # A mode the session does not allow is refused, not quietly changed.
    refused = client.post(f"/p/{link}/sessions/{first.pk}/book/", {"starts_at": sydney(4, 9).isoformat(), "mode": "phone"})
    assert refused.status_code == 400 and "Session 1 can be in person, video call" in page(refused)
    assert session(walker, 1).status == SessionStatus.PLANNED


def test_a_time_taken_meanwhile_gets_a_clear_message_and_the_refreshed_times(
    walkback: Trial, walker, physio, booker, link: str, client: Client
) -> None:
    first = session(walker, 1)
    assert f'value="{sydney(3, 9).isoformat()}"' in page(client.get(f"/p/{link}/sessions/{first.pk}/book/"))
    someone_else = randomised(walkback, "walking")
    book(session(someone_else, 1), sydney(3, 9), booker)

    response = client.post(f"/p/{link}/sessions/{first.pk}/book/", {"starts_at": sydney(3, 9).isoformat(), "mode": "in_person"})

    assert response.status_code == 409
    body = page(response)
    assert "someone has just taken that time" in body
    assert f'value="{sydney(3, 9).isoformat()}"' not in body and f'value="{sydney(3, 9, 45).isoformat()}"' in body
    assert session(walker, 1).status == SessionStatus.PLANNED


def test_posting_no_time_asks_for_one(walker, link: str, client: Client) -> None:
    first = session(walker, 1)
    for value in ("", "tomorrow", "2026-03-03T09:00:00"):
        response = client.post(f"/p/{link}/sessions/{first.pk}/book/", {"starts_at": value, "mode": "video"})
        assert response.status_code == 400 and "Please choose one of the times below." in page(response)


def test_another_participants_session_is_not_found(walkback: Trial, walker, link: str, client: Client) -> None:
    other = randomised(walkback, "walking")
    theirs = session(other, 1)
    assert client.get(f"/p/{link}/sessions/{theirs.pk}/book/").status_code == 404
    response = client.post(f"/p/{link}/sessions/{theirs.pk}/book/", {"starts_at": sydney(3, 9).isoformat(), "mode": "video"})
    assert response.status_code == 404
    assert session(other, 1).status == SessionStatus.PLANNED
    assert client.get(f"/p/{link}/sessions/999999/book/").status_code == 404


def test_a_phone_session_is_booked_when_its_window_opens(walker, physio, booker, link: str, client: Client) -> None:
    second = session(walker, 2)  # window 12-23 March, phone only
    early = client.get(f"/p/{link}/sessions/{second.pk}/book/", follow=True)
    assert "You can choose a time for Week 2 check-in from Thursday 12 March" in page(early)
    with time_machine.travel(sydney(13, 8), tick=False):
        choose = page(client.get(f"/p/{link}/sessions/{second.pk}/book/"))
        assert 'data-testid="modes"' not in choose and "phone call: the physiotherapist will phone you" in choose
        client.post(f"/p/{link}/sessions/{second.pk}/book/", {"starts_at": sydney(16, 9).isoformat(), "mode": "phone"})
        sessions = page(client.get(f"/p/{link}/sessions/"))
    assert session(walker, 2).mode == "phone"
    assert "Monday 16 March 2026, 9:00 a.m." in sessions and "the physiotherapist will phone you" in sessions


def test_a_participant_logs_a_walk_against_their_prescription(walker, physio, booker, link: str, client: Client) -> None:
    booked = book(session(walker, 1), sydney(2, 11, 15), booker).session
    services.session_record(
        session_id=booked.pk,
        attendance="attended",
        duration_minutes=40,
        prescription=services.PrescriptionInput(walks_per_week=3, minutes_per_walk=20),
        by=physio,
        now=sydney(2, 12),
    )
    diary = client.get(f"/p/{link}/diary/")
    assert diary.status_code == 200
    assert 'value="2026-03-02"' in page(diary)  # today, in the participant's time zone
    assert "Your plan: 3 walks of 20 minutes (60 minutes a week)" in page(diary)

    saved = client.post(f"/p/{link}/diary/", {"walked_on": "2026-03-02", "minutes": "25", "steps": ""})

    assert saved.status_code == 302 and saved["Location"] == f"/p/{link}/diary/"
    walk = Walk.objects.get(participant=walker)
    assert (walk.walked_on, walk.minutes, walk.steps, walk.entered_by_id) == (dt.date(2026, 3, 2), 25, None, None)
    after = page(client.get(f"/p/{link}/diary/"))
    assert "Saved: 25 minutes on Monday 2 March" in after
    assert "25 minutes</span> in 1 walk" in after
    assert "Mon 2 Mar" in after


def test_the_diary_date_defaults_to_today_where_the_participant_lives(walker, link: str, client: Client) -> None:
    late = dt.datetime(2026, 3, 2, 13, 30, tzinfo=dt.UTC)  # 00:30 on Tuesday 3 March in Sydney
    with time_machine.travel(late, tick=False):
        assert 'value="2026-03-03"' in page(client.get(f"/p/{link}/diary/"))
    assert "will set your walking plan" in page(client.get(f"/p/{link}/diary/"))


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"walked_on": "2026-03-02", "minutes": ""}, "minutes", "How many minutes did you walk?"),
        ({"walked_on": "2026-03-02", "minutes": "half an hour"}, "minutes", "How many minutes did you walk?"),
        ({"walked_on": "2026-03-02", "minutes": "0"}, "minutes", "Minutes walked, between 1 and 600."),
        ({"walked_on": "2026-03-02", "minutes": "700"}, "minutes", "Minutes walked, between 1 and 600."),
        ({"walked_on": "", "minutes": "30"}, "walked_on", "Choose the day you walked."),
        ({"walked_on": "2026-03-03", "minutes": "30"}, "walked_on", "That day has not come yet."),
        ({"walked_on": "2026-02-20", "minutes": "30"}, "walked_on", "That is before you joined the programme."),
        ({"walked_on": "2026-03-02", "minutes": "30", "steps": "lots"}, "steps", "Steps as a whole number"),
        ({"walked_on": "2026-03-02", "minutes": "30", "steps": "200000"}, "steps", "Steps, up to 100,000."),
    ],
)
def test_a_walk_with_a_mistake_gets_a_clear_message_and_nothing_is_saved(
    walker, link: str, client: Client, data: dict[str, str], field: str, message: str
) -> None:
    response = client.post(f"/p/{link}/diary/", data)
    assert response.status_code == 400
    body = page(response)
    assert f'data-testid="error-{field}">{message}' in body
    assert f'value="{data["minutes"]}"' in body  # what they typed is kept
    assert not Walk.objects.exists()


def test_the_diary_is_closed_after_withdrawal_from_the_programme(walker, link: str, client: Client, coordinator) -> None:
    from participants import services as journey

    journey.participant_withdraw(participant=walker, scope="intervention", reason="Too busy", by=coordinator)
    response = client.post(f"/p/{link}/diary/", {"walked_on": "2026-03-02", "minutes": "30"})
    assert response.status_code == 409 and "The walking diary closed" in page(response)
    assert not Walk.objects.exists()
    sessions = page(client.get(f"/p/{link}/sessions/"))
    assert 'data-testid="choose-time"' not in sessions and "Cancelled" in sessions
    assert not Session.objects.filter(participant=walker, status="planned").exists()
