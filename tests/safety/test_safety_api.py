"""The adverse-event API: list (filtered, paginated), record, change with a reason, review and
dismiss pending reports, follow-ups, serious-event deadlines; never an arm for blinded roles."""

# ruff: noqa: F811 - pytest fixtures imported from test_safety are redefined as arguments
from __future__ import annotations

import datetime as dt
from typing import Any, cast

import pytest
import time_machine
from django.db import reset_queries
from rest_framework.test import APIClient

from intervention import services as intervention
from intervention.models import Session
from participants.models import Participant
from safety.models import AdverseEvent, AEFollowUp
from safety.services import adverse_event_record
from tests.factories import ParticipantFactory
from tests.safety.test_safety import IN_MONTH_1, randomised, sae_emails, serious  # noqa: F401
from trial.models import Arm, Trial

URL = "/api/v1/adverse-events/"
# Distinctive arm names and codes for the blinding checks: any appearance is a leak.
ARMS = {"walking": ("zebraarm", "Zebra Stripes Programme"), "control": ("okapiarm", "Okapi Comparison Group")}


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def assert_error(response: Any, status: int, *fields: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"detail", "errors"} and body["detail"], body
    assert set(fields) <= set(body["errors"]), body
    return body


def payload(participant: Participant, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "participant": participant.pk,
        "onset_date": "2026-03-20",
        "description": "Fractured ankle after a fall on stairs",
        "category": "lower_extremity",
        "severity": "severe",
        "serious": True,
        "serious_criteria": ["hospitalisation"],
        "relatedness": "possibly",
        "expected": False,
        "action_taken": "Programme paused",
        "outcome": "recovering",
    }
    return {**values, **changes}


def mild(participant: Participant, **changes: Any) -> dict[str, Any]:
    return payload(
        participant, serious=False, serious_criteria=[], severity="mild", category="back", description="Stiff back", **changes
    )


def pending_report(participant: Participant, text: str = "Sore knee for a week") -> AdverseEvent:
    return AdverseEvent.objects.create(
        participant=participant, source="questionnaire", status="pending", reported_text=text, aware_at=IN_MONTH_1
    )


# --- Recording ----------------------------------------------------------------------------------


def test_a_serious_event_is_recorded_with_its_deadlines_and_alerts_the_safety_contacts_once(
    randomised, coordinator, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(coordinator).post(URL, payload(randomised), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    event = AdverseEvent.objects.get()
    assert body["id"] == event.pk and body["participant"] == randomised.pk and body["study_id"] == randomised.study_id
    assert (body["status"], body["source"], body["serious"], body["serious_criteria"]) == (
        "open",
        "staff",
        True,
        ["hospitalisation"],
    )
    assert body["reported_by"] == coordinator.pk and body["followups"] == []
    deadlines = body["deadlines"]
    assert set(deadlines) == {"initial_due", "initial_met", "followup_due", "followup_met"}
    assert deadlines["initial_met"] is True and deadlines["followup_met"] is None  # just reported; follow-up in 7 days
    assert "arm" not in body
    assert len(sae_emails()) == 1


def test_a_non_serious_event_has_no_deadlines(randomised, coordinator) -> None:
    response = client_for(coordinator).post(URL, mild(randomised), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["deadlines"] is None


def test_every_invalid_field_is_reported_at_once_and_nothing_is_written(randomised, coordinator) -> None:
    response = client_for(coordinator).post(
        URL,
        {"participant": randomised.pk, "onset_date": "2099-01-01", "category": "elbow", "severity": "awful", "serious": True},
        format="json",
    )
    assert_error(response, 400, "onset_date", "description", "category", "severity", "serious_criteria")
    assert_error(client_for(coordinator).post(URL, {"participant": "x", "onset_date": "soon"}, format="json"), 400, "participant")
    assert_error(
        client_for(coordinator).post(URL, payload(randomised, action_taken="x" * 301), format="json"), 400, "action_taken"
    )
    assert not AdverseEvent.objects.exists()


def test_a_participant_out_of_reach_or_a_role_without_the_permission_is_refused(
    randomised, coordinator, make_staff, walkback: Trial
) -> None:
    brisbane = make_staff("coordinator", sites=["BNE"], username="bne")
    assert_error(client_for(brisbane).post(URL, payload(randomised), format="json"), 400, "participant")
    statistician = make_staff("statistician")
    assert_error(client_for(statistician).post(URL, payload(randomised), format="json"), 403)
    assert_error(client_for(statistician).get(URL), 403)
    assert_error(APIClient().get(URL), 401)  # no credentials: 401 (WWW-Authenticate: Token)
    assert_error(client_for(coordinator).post(URL, payload(randomised, session=987654), format="json"), 400, "session")
    assert not AdverseEvent.objects.exists()


# --- Listing ------------------------------------------------------------------------------------


def test_the_list_is_paginated_and_filtered(randomised, coordinator, make_staff) -> None:
    api = client_for(coordinator)
    assert api.post(URL, payload(randomised), format="json").status_code == 201
    assert api.post(URL, mild(randomised), format="json").status_code == 201
    pending_report(randomised)

    everything = api.get(URL).json()
    assert everything["count"] == 3 and len(everything["results"]) == 3
    assert api.get(URL, {"serious": "true"}).json()["count"] == 1
    assert api.get(URL, {"serious": "false"}).json()["count"] == 2
    assert api.get(URL, {"category": "back"}).json()["count"] == 1
    assert api.get(URL, {"status": "pending"}).json()["count"] == 1
    assert api.get(URL, {"site": "SYD"}).json()["count"] == 3
    assert api.get(URL, {"site": "BNE"}).json()["count"] == 0
    assert api.get(URL, {"participant": randomised.study_id}).json()["count"] == 3
    assert api.get(URL, {"participant": str(randomised.pk)}).json()["count"] == 3
    assert api.get(URL, {"page_size": 1}).json()["next"]
    assert_error(api.get(URL, {"status": "closed"}), 400, "status")
    assert_error(api.get(URL, {"serious": "perhaps"}), 400, "serious")
    assert_error(api.get(URL, {"participant": "9" * 30}), 400, "participant")
    # Another site's coordinator sees none of them.
    assert client_for(make_staff("coordinator", sites=["BNE"], username="bne")).get(URL).json()["count"] == 0


def test_the_list_keeps_its_query_count_as_events_grow(randomised, coordinator, django_assert_max_num_queries) -> None:
    api = client_for(coordinator)
    api.post(URL, payload(randomised), format="json")
    api.get(URL)
    reset_queries()  # the log holds at most 9000 queries (setting up the trial fills it): measure from empty
    with django_assert_max_num_queries(20) as few:
        api.get(URL)
    allowed = len(few)
    for _ in range(6):
        event = AdverseEvent.objects.get(pk=api.post(URL, payload(randomised), format="json").json()["id"])
        client_for(coordinator).post(f"{URL}{event.pk}/followups/", {"note": "Better"}, format="json")
    reset_queries()
    with django_assert_max_num_queries(allowed):
        assert api.get(URL).json()["count"] == 7


# --- One event ----------------------------------------------------------------------------------


def test_the_detail_shows_follow_ups_and_is_404_out_of_reach(randomised, coordinator, make_staff) -> None:
    api = client_for(coordinator)
    event_id = api.post(URL, payload(randomised), format="json").json()["id"]
    followup = api.post(f"{URL}{event_id}/followups/", {"note": "Cast on"}, format="json")
    assert followup.status_code == 201, followup.content
    assert followup.json()["note"] == "Cast on" and followup.json()["event"] == event_id

    body = api.get(f"{URL}{event_id}/").json()
    assert [f["note"] for f in body["followups"]] == ["Cast on"]
    assert body["deadlines"]["followup_met"] is True
    assert_error(api.get(f"{URL}987654/"), 404)
    assert_error(client_for(make_staff("coordinator", sites=["BNE"], username="bne")).get(f"{URL}{event_id}/"), 404)


def test_a_change_needs_a_reason_and_keeps_the_fields_not_sent(randomised, coordinator) -> None:
    api = client_for(coordinator)
    event_id = api.post(URL, mild(randomised), format="json").json()["id"]

    assert_error(api.patch(f"{URL}{event_id}/", {"severity": "moderate"}, format="json"), 400, "reason")
    assert_error(api.patch(f"{URL}{event_id}/", {"severity": "awful", "reason": "x"}, format="json"), 400, "severity")
    assert AdverseEvent.objects.get().severity == "mild"

    response = api.patch(f"{URL}{event_id}/", {"severity": "moderate", "reason": "Worse than first told"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["severity"], body["category"], body["description"]) == ("moderate", "back", "Stiff back")


def test_a_pending_report_is_completed_by_a_change_or_dismissed(randomised, coordinator) -> None:
    api = client_for(coordinator)
    report, other = pending_report(randomised), pending_report(randomised, "Headache")
    assert_error(api.post(f"{URL}{report.pk}/followups/", {"note": "x"}, format="json"), 409)

    completed = api.patch(f"{URL}{report.pk}/", {**mild(randomised), "reason": "Reviewed by phone"}, format="json")
    assert completed.status_code == 200, completed.content
    assert (completed.json()["status"], completed.json()["reported_by"]) == ("open", coordinator.pk)
    assert_error(api.post(f"{URL}{report.pk}/dismiss/", {"reason": "x"}, format="json"), 409)

    assert_error(api.post(f"{URL}{other.pk}/dismiss/", {"reason": ""}, format="json"), 400, "reason")
    dismissed = api.post(f"{URL}{other.pk}/dismiss/", {"reason": "Tension headache, already known"}, format="json")
    assert dismissed.status_code == 200, dismissed.content
    assert (dismissed.json()["status"], dismissed.json()["dismissed_reason"]) == ("dismissed", "Tension headache, already known")
    assert_error(api.patch(f"{URL}{other.pk}/", {**mild(randomised), "reason": "x"}, format="json"), 409)


def test_a_follow_up_resolves_the_event(randomised, coordinator) -> None:
    api = client_for(coordinator)
    event_id = api.post(URL, payload(randomised), format="json").json()["id"]
    assert_error(
        api.post(f"{URL}{event_id}/followups/", {"note": "Healed", "outcome": "recovered"}, format="json"), 400, "resolution_date"
    )
    assert_error(api.post(f"{URL}{event_id}/followups/", {"note": ""}, format="json"), 400, "note")
    assert_error(api.post(f"{URL}{event_id}/followups/", {"note": "x", "outcome": "cured"}, format="json"), 400, "outcome")
    assert AEFollowUp.objects.count() == 0
    response = api.post(
        f"{URL}{event_id}/followups/",
        {"note": "Cast removed", "outcome": "recovered", "resolution_date": "2026-04-10"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = api.get(f"{URL}{event_id}/").json()
    assert (body["status"], body["outcome"], body["resolution_date"]) == ("resolved", "recovered", "2026-04-10")


def test_deadlines_show_a_late_initial_report_and_an_overdue_follow_up(randomised, coordinator) -> None:
    aware = dt.datetime(2026, 3, 21, 0, 0, tzinfo=dt.UTC)
    with time_machine.travel(aware + dt.timedelta(hours=30), tick=False):
        event = adverse_event_record(participant=randomised, data=serious(), by=coordinator, aware_at=aware)
    with time_machine.travel(aware + dt.timedelta(days=20), tick=False):
        body = client_for(coordinator).get(f"{URL}{event.pk}/").json()
    assert (body["deadlines"]["initial_met"], body["deadlines"]["followup_met"]) == (False, False)
    assert body["deadlines"]["initial_due"].startswith("2026-03-22")


# --- Blinding -----------------------------------------------------------------------------------


@pytest.fixture
def physio(make_staff) -> Any:
    return make_staff("physiotherapist", sites=["SYD"], username="physio")


@pytest.fixture
def walker(walkback: Trial, physio) -> Participant:
    """A participant in the intervention arm, with sessions (which only that arm has)."""
    participant = cast(
        Participant,
        ParticipantFactory(
            site=walkback.sites.get(code="SYD"), randomised_to=walkback.arms.get(code="walking"), study_id="WB-SYD-0042"
        ),
    )
    intervention.sessions_plan(participant=participant)
    return participant


def _rename_arms(trial: Trial) -> list[str]:
    for code, (new_code, name) in ARMS.items():
        Arm.objects.filter(trial=trial, code=code).update(code=new_code, name=name)
    return [word for pair in ARMS.values() for word in pair]


def test_a_blinded_role_never_sees_an_arm_nor_that_a_report_came_from_a_session(
    walker, walkback: Trial, make_staff, coordinator, physio
) -> None:
    session = Session.objects.filter(participant=walker).order_by("number").first()
    assert session is not None
    reported = client_for(physio).post(URL, payload(walker, session=session.pk), format="json")
    assert reported.status_code == 201, reported.content
    assert (reported.json()["source"], reported.json()["session"]) == ("session", session.pk)
    event_id = reported.json()["id"]
    pending_report(walker, "Sore heel")
    words = _rename_arms(walkback)

    investigator = make_staff("investigator")
    api = client_for(investigator)
    responses = [
        api.get(URL),
        api.get(f"{URL}{event_id}/"),
        api.post(f"{URL}{event_id}/followups/", {"note": "Recovering well"}, format="json"),
        api.patch(f"{URL}{event_id}/", {"action_taken": "Paused for two weeks", "reason": "Phone call"}, format="json"),
        api.post(f"{URL}{event_id}/dismiss/", {"reason": "x"}, format="json"),
        api.post(URL, payload(walker, session=session.pk), format="json"),
    ]
    assert [r.status_code for r in responses] == [200, 200, 201, 200, 409, 400]
    for response in responses:
        text = response.content.decode().lower()
        assert not [word for word in words if word.lower() in text], text
    detail = responses[1].json()
    assert (detail["source"], detail["session"]) == ("staff", None)
    assert {row["source"] for row in responses[0].json()["results"]} == {"staff", "questionnaire"}
    # An unblinded coordinator sees where the report came from.
    assert client_for(coordinator).get(f"{URL}{event_id}/").json()["source"] == "session"
