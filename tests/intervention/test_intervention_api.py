"""The intervention API: sessions, free slots, booking, recording and the walking diary. Sessions
and the diary reveal the arm, so blinded roles get the same 404 as for a control participant."""

# ruff: noqa: F811 - pytest fixtures imported from test_intervention are redefined as arguments
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from intervention import services
from intervention.models import Session, SessionStatus, Walk
from participants import services as journey
from tests.intervention.test_intervention import NOW, book, booker, physio, randomised, session, sydney  # noqa: F401
from trial.models import Trial


@pytest.fixture(autouse=True)
def clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):  # Monday 2 March 2026, 11:00 in Sydney
        yield


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def assert_error(response: Any, status: int, *fields: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"detail", "errors"} and body["detail"]
    assert set(fields) <= set(body["errors"]), body
    return body


@pytest.fixture
def walker(walkback: Trial, physio) -> Any:
    return randomised(walkback, "walking", email="w@example.org")


def test_the_session_list_shows_planned_and_booked_sessions_with_their_booking(walkback: Trial, physio, booker, walker) -> None:
    first = book(session(walker, 1), sydney(3, 9), booker).session
    services.session_record(
        session_id=first.pk,
        attendance="attended",
        duration_minutes=40,
        prescription=services.PrescriptionInput(walks_per_week=3, minutes_per_walk=15),
        by=physio,
        now=sydney(3, 10),
    )
    book(session(walker, 2), sydney(16, 9), booker, mode="phone")
    randomised(walkback, "control")

    response = client_for(booker).get(f"/api/v1/sessions/?participant={walker.pk}")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 5  # the attended session is no longer planned or booked
    rows = body["results"]
    assert [r["number"] for r in rows] == [2, 3, 4, 5, 6]
    second = rows[0]
    assert set(second) >= {
        "id",
        "number",
        "name",
        "status",
        "window_start",
        "window_end",
        "target_date",
        "starts_at",
        "ends_at",
        "mode",
        "allowed_modes",
        "physiotherapist",
        "physiotherapist_name",
        "meeting_link",
        "outside_window_reason",
    }
    assert second["status"] == "booked" and second["mode"] == "phone" and second["allowed_modes"] == ["phone"]
    assert dt.datetime.fromisoformat(second["starts_at"]) == sydney(16, 9)
    assert second["physiotherapist"] == physio.pk and second["physiotherapist_name"] == "phil"
    assert rows[1]["status"] == "planned" and rows[1]["starts_at"] is None
    assert (rows[1]["window_start"], rows[1]["target_date"]) == ("2026-03-25", "2026-04-01")
    # Without a participant: every visible participant's sessions (the control participant has none).
    assert client_for(booker).get("/api/v1/sessions/").json()["count"] == 5


def test_a_participant_parameter_that_is_not_an_id_is_a_400(booker, walker) -> None:
    for raw in ("abc", "-1", "9" * 25):
        body = assert_error(client_for(booker).get(f"/api/v1/sessions/?participant={raw}"), 400, "participant")
        assert body["errors"]["participant"] == ["A participant id is a whole number."]


def test_sessions_are_scoped_to_the_callers_sites(walker, make_staff) -> None:
    elsewhere = client_for(make_staff("coordinator", sites=["NCL"]))
    assert elsewhere.get("/api/v1/sessions/").json()["count"] == 0
    assert elsewhere.get(f"/api/v1/sessions/?participant={walker.pk}").json()["count"] == 0
    assert_error(elsewhere.get(f"/api/v1/participants/{walker.pk}/diary/"), 404)


def test_a_blinded_investigator_cannot_tell_a_walking_participant_from_a_control_one(
    walkback: Trial, booker, walker, make_staff, password
) -> None:
    control = randomised(walkback, "control")
    investigator = make_staff("investigator")
    api = client_for(investigator)

    assert api.get("/api/v1/sessions/").json()["count"] == 0
    assert api.get(f"/api/v1/sessions/?participant={walker.pk}").json()["count"] == 0
    walking_diary = api.get(f"/api/v1/participants/{walker.pk}/diary/")
    control_diary = api.get(f"/api/v1/participants/{control.pk}/diary/")
    assert walking_diary.status_code == control_diary.status_code == 404
    assert walking_diary.json() == control_diary.json()
    # An emergency unblinding of this participant shows their diary to this investigator only.
    journey.participant_unblind(participant=walker, user=investigator, reason="SAE", password=password)
    assert api.get(f"/api/v1/participants/{walker.pk}/diary/").status_code == 200
    assert api.get(f"/api/v1/sessions/?participant={walker.pk}").json()["count"] == 6
    other = client_for(make_staff("investigator", username="other-investigator"))
    assert other.get(f"/api/v1/participants/{walker.pk}/diary/").status_code == 404


def test_free_slots_of_a_physiotherapist_for_a_range_of_days(physio, booker, walker) -> None:
    book(session(walker, 1), sydney(3, 9), booker)
    response = client_for(booker).get(f"/api/v1/physiotherapists/{physio.pk}/slots/?date_from=2026-03-03&date_to=2026-03-03")
    assert response.status_code == 200
    slots = response.json()
    syd = [s for s in slots if s["site"] == "SYD"]
    assert [dt.datetime.fromisoformat(s["starts_at"]) for s in syd] == [sydney(3, 9, 45), sydney(3, 10, 30), sydney(3, 11, 15)]
    assert dt.datetime.fromisoformat(syd[0]["ends_at"]) == sydney(3, 10, 30)
    assert syd[0]["modes"] == ["in_person", "phone", "video"]
    assert {s["site"] for s in slots} == {"SYD", "BNE"}


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("", {"date_from", "date_to"}),
        ("?date_from=2026-03-03", {"date_to"}),
        ("?date_from=3/3/2026&date_to=2026-03-04", {"date_from"}),
        ("?date_from=2026-03-03&date_to=2026-04-03", {"date_to"}),  # 32 days
        ("?date_from=2026-03-05&date_to=2026-03-03", {"date_to"}),
    ],
)
def test_slot_dates_are_required_iso_and_at_most_31_days_apart(physio, booker, query: str, fields: set[str]) -> None:
    body = assert_error(client_for(booker).get(f"/api/v1/physiotherapists/{physio.pk}/slots/{query}"), 400, *fields)
    assert set(body["errors"]) == fields


def test_31_days_of_slots_are_allowed(physio, booker) -> None:
    response = client_for(booker).get(f"/api/v1/physiotherapists/{physio.pk}/slots/?date_from=2026-03-03&date_to=2026-04-02")
    assert response.status_code == 200 and len(response.json()) > 0


def test_slots_of_someone_who_is_not_a_physiotherapist_at_your_sites_are_not_found(physio, booker, make_staff) -> None:
    api = client_for(booker)
    query = "?date_from=2026-03-03&date_to=2026-03-04"
    assert_error(api.get(f"/api/v1/physiotherapists/{booker.pk}/slots/{query}"), 404)
    assert_error(api.get(f"/api/v1/physiotherapists/999999/slots/{query}"), 404)
    elsewhere = client_for(make_staff("coordinator", sites=["NCL"]))
    assert_error(elsewhere.get(f"/api/v1/physiotherapists/{physio.pk}/slots/{query}"), 404)
    body = assert_error(client_for(make_staff("investigator")).get(f"/api/v1/physiotherapists/{physio.pk}/slots/{query}"), 403)
    assert "book_sessions" in body["detail"]


def test_booking_a_session_returns_it_booked(physio, booker, walker) -> None:
    first = session(walker, 1)
    response = client_for(booker).post(
        f"/api/v1/sessions/{first.pk}/book/", {"starts_at": sydney(3, 9).isoformat(), "mode": "video"}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["id"] == first.pk and body["status"] == "booked" and body["mode"] == "video"
    assert dt.datetime.fromisoformat(body["starts_at"]) == sydney(3, 9)
    assert dt.datetime.fromisoformat(body["ends_at"]) == sydney(3, 9, 45)
    first.refresh_from_db()
    assert body["meeting_link"] == f"https://meet.jit.si/walkback-{first.video_room}"
    assert str(first.pk) not in body["meeting_link"].rsplit("/", 1)[1].removeprefix("walkback-")
    assert first.booked_by_id == booker.pk


def test_a_second_booking_of_the_same_slot_is_a_409_with_a_json_body(walkback: Trial, physio, booker, walker) -> None:
    other = randomised(walkback, "walking")
    api = client_for(booker)
    body = {"starts_at": sydney(3, 9).isoformat(), "mode": "in_person"}
    assert api.post(f"/api/v1/sessions/{session(walker, 1).pk}/book/", body, format="json").status_code == 200

    response = api.post(f"/api/v1/sessions/{session(other, 1).pk}/book/", body, format="json")

    taken = assert_error(response, 409)
    assert taken["detail"] == "That time is no longer free: choose another slot."
    assert taken["code"] == "slot_taken" and taken["errors"] == {}
    assert session(other, 1).status == SessionStatus.PLANNED


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mode": "video"}, "starts_at"),
        ({"starts_at": "2026-03-03T09:00:00", "mode": "video"}, "starts_at"),  # no UTC offset
        ({"starts_at": "next tuesday", "mode": "video"}, "starts_at"),
        ({"starts_at": "2026-03-03T09:00:00+11:00", "mode": "carrier pigeon"}, "mode"),
        ({"starts_at": "2026-03-03T09:00:00+11:00", "mode": "phone"}, "mode"),  # session 1 is in person or video
        ({"starts_at": "2026-03-27T09:00:00+11:00", "mode": "video"}, "reason"),  # outside the window
        ({"starts_at": "2026-03-01T09:00:00+11:00", "mode": "video"}, "starts_at"),  # in the past
    ],
)
def test_invalid_bookings_are_400s_naming_the_field(physio, booker, walker, body: dict[str, Any], field: str) -> None:
    first = session(walker, 1)
    assert_error(client_for(booker).post(f"/api/v1/sessions/{first.pk}/book/", body, format="json"), 400, field)
    assert session(walker, 1).status == SessionStatus.PLANNED


def test_booking_outside_the_window_with_a_reason_is_kept(physio, booker, walker) -> None:
    body = {"starts_at": sydney(27, 9).isoformat(), "mode": "video", "reason": "Away until the 26th"}
    response = client_for(booker).post(f"/api/v1/sessions/{session(walker, 1).pk}/book/", body, format="json")
    assert response.status_code == 200 and response.json()["outside_window_reason"] == "Away until the 26th"


def test_booking_is_refused_to_other_roles_and_sites(physio, walker, make_staff) -> None:
    path = f"/api/v1/sessions/{session(walker, 1).pk}/book/"
    body = {"starts_at": sydney(3, 9).isoformat(), "mode": "video"}
    assert_error(client_for(make_staff("statistician")).post(path, body, format="json"), 403)
    assert_error(client_for(make_staff("coordinator", sites=["NCL"])).post(path, body, format="json"), 404)
    assert_error(client_for(make_staff("coordinator", sites=["SYD"])).post("/api/v1/sessions/999999/book/", body), 404)


def test_a_physiotherapist_books_too(physio, walker) -> None:
    body = {"starts_at": sydney(3, 9).isoformat(), "mode": "in_person"}
    assert client_for(physio).post(f"/api/v1/sessions/{session(walker, 1).pk}/book/", body, format="json").status_code == 200


def test_cancelling_a_booking(physio, booker, walker) -> None:
    booked = book(session(walker, 1), sydney(3, 9), booker).session
    api = client_for(booker)
    assert_error(api.post(f"/api/v1/sessions/{booked.pk}/cancel/", {}, format="json"), 400, "reason")
    assert_error(api.post(f"/api/v1/sessions/{booked.pk}/cancel/", {"reason": "  "}, format="json"), 400, "reason")

    response = api.post(f"/api/v1/sessions/{booked.pk}/cancel/", {"reason": "Unwell"}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "planned" and response.json()["starts_at"] is None
    again = assert_error(api.post(f"/api/v1/sessions/{booked.pk}/cancel/", {"reason": "Unwell"}, format="json"), 409)
    assert "not booked" in again["detail"]
    assert_error(client_for(booker).post(f"/api/v1/sessions/{session(walker, 2).pk}/cancel/", {"reason": "x"}), 409)


def test_recording_a_session_with_its_prescription(physio, booker, walker) -> None:
    booked = book(session(walker, 1), sydney(3, 9), booker).session
    body = {
        "attendance": "attended",
        "duration_minutes": 40,
        "topics": ["pain_science"],
        "notes": "Good start",
        "prescription": {"walks_per_week": 3, "minutes_per_walk": 15, "progression": "+5 min a fortnight"},
    }
    with time_machine.travel(sydney(3, 10), tick=False):
        response = client_for(physio).post(f"/api/v1/sessions/{booked.pk}/record/", body, format="json")
    assert response.status_code == 200, response.json()
    record = response.json()
    assert record["session"] == booked.pk and record["status"] == "attended" and record["attendance"] == "attended"
    assert record["duration_minutes"] == 40 and record["topics"] == ["pain_science"] and record["recorded_by"] == physio.pk
    assert record["prescription"] == {
        "walks_per_week": 3,
        "minutes_per_walk": 15,
        "progression": "+5 min a fortnight",
        "starts_on": "2026-03-03",
    }
    # A correction needs a reason.
    with time_machine.travel(sydney(3, 10), tick=False):
        api = client_for(physio)
        assert_error(api.post(f"/api/v1/sessions/{booked.pk}/record/", {"attendance": "no_show"}, format="json"), 400, "reason")
        corrected = api.post(
            f"/api/v1/sessions/{booked.pk}/record/", {"attendance": "no_show", "reason": "Wrong person"}, format="json"
        )
    assert corrected.status_code == 200 and corrected.json()["status"] == "no_show"


def test_recording_errors(physio, booker, walker) -> None:
    booked = book(session(walker, 1), sydney(3, 9), booker).session
    path = f"/api/v1/sessions/{booked.pk}/record/"
    attended = {"attendance": "attended", "duration_minutes": 40}
    assert_error(client_for(physio).post(path, attended, format="json"), 409)  # not started yet
    with time_machine.travel(sydney(3, 10), tick=False):
        api = client_for(physio)
        assert_error(api.post(path, attended, format="json"), 400, "prescription")
        assert_error(api.post(path, {"attendance": "maybe"}, format="json"), 400, "attendance")
        bad = {**attended, "prescription": {"walks_per_week": 20, "minutes_per_walk": 15}}
        assert_error(api.post(path, bad, format="json"), 400, "walks_per_week")
        assert_error(api.post(path, {**attended, "prescription": {"walks_per_week": 2}}, format="json"), 400)
        assert_error(client_for(booker).post(path, attended, format="json"), 403)
        planned = session(walker, 3)
        assert_error(api.post(f"/api/v1/sessions/{planned.pk}/record/", attended, format="json"), 409)
    assert not Session.objects.filter(pk=booked.pk, status="attended").exists()


def test_the_diary_shows_walks_and_weekly_adherence(physio, booker, walker) -> None:
    booked = book(session(walker, 1), sydney(3, 9), booker).session
    services.session_record(
        session_id=booked.pk,
        attendance="attended",
        duration_minutes=40,
        prescription=services.PrescriptionInput(walks_per_week=2, minutes_per_walk=20),
        by=physio,
        now=sydney(3, 10),
    )
    today = dt.datetime(2026, 3, 10, 1, 0, tzinfo=dt.UTC)  # Tuesday 10 March in Sydney
    services.walk_log(participant=walker, walked_on=dt.date(2026, 3, 3), minutes=20, steps=2500, now=today)
    services.walk_log(participant=walker, walked_on=dt.date(2026, 3, 5), minutes=25, by=physio, now=today)

    with time_machine.travel(today, tick=False):
        response = client_for(booker).get(f"/api/v1/participants/{walker.pk}/diary/")

    assert response.status_code == 200
    body = response.json()
    assert body["walks"] == [
        {"id": body["walks"][0]["id"], "walked_on": "2026-03-05", "minutes": 25, "steps": None, "entered_by_staff": True},
        {"id": body["walks"][1]["id"], "walked_on": "2026-03-03", "minutes": 20, "steps": 2500, "entered_by_staff": False},
    ]
    adherence = body["adherence"]
    assert adherence["weeks"] == [
        {"starts_on": "2026-03-02", "minutes": 45, "walks": 2, "target_minutes": 20, "target_walks": 2, "met": True},
        {"starts_on": "2026-03-09", "minutes": 0, "walks": 0, "target_minutes": 20, "target_walks": 2, "met": False},
    ]
    assert adherence["last_walk_on"] == "2026-03-05" and adherence["inactive"] is False and adherence["inactive_days"] == 5


def test_staff_log_a_walk_for_the_participant(physio, booker, walker) -> None:
    path = f"/api/v1/participants/{walker.pk}/diary/"
    response = client_for(physio).post(path, {"walked_on": "2026-03-02", "minutes": 30, "steps": 4000}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["entered_by_staff"] is True and response.json()["minutes"] == 30
    assert Walk.objects.get(participant=walker).entered_by_id == physio.pk
    api = client_for(physio)
    assert_error(api.post(path, {"walked_on": "2026-03-02", "minutes": 0}, format="json"), 400, "minutes")
    assert_error(api.post(path, {"walked_on": "2026-03-03", "minutes": 30}, format="json"), 400, "walked_on")  # tomorrow
    assert_error(api.post(path, {"walked_on": "yesterday", "minutes": 30}, format="json"), 400, "walked_on")
    assert_error(api.post(path, {"walked_on": "2026-03-02", "minutes": 30, "steps": 10**6}, format="json"), 400, "steps")
    body = assert_error(client_for(booker).post(path, {"walked_on": "2026-03-02", "minutes": 30}, format="json"), 403)
    assert "deliver_sessions" in body["detail"]
    assert Walk.objects.filter(participant=walker).count() == 1


def test_a_control_participant_has_no_diary(walkback: Trial, physio, booker) -> None:
    control = randomised(walkback, "control")
    assert_error(client_for(booker).get(f"/api/v1/participants/{control.pk}/diary/"), 404)
    body = {"walked_on": "2026-03-02", "minutes": 30}
    assert_error(client_for(physio).post(f"/api/v1/participants/{control.pk}/diary/", body, format="json"), 404)
    assert_error(client_for(booker).get("/api/v1/participants/999999/diary/"), 404)
