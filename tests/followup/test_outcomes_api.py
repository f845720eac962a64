"""Outcomes in the API and on the outcomes page: the final value (adjudicated wins), the derived one,
the monthly history behind them; adjudication by data managers only."""

# ruff: noqa: F811 - pytest fixtures imported from test_outcomes are redefined as arguments
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from followup import services
from followup.models import Occurrence, Outcome
from tests.followup.test_outcomes import RECURRENCE, answer, randomised  # noqa: F401
from tests.monthly import NO_PAIN


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


def url(participant: Any, code: str = "") -> str:
    base = f"/api/v1/participants/{participant.pk}/outcomes/"
    return f"{base}{code}/adjudicate/" if code else base


def answer_month(participant: Any, month: int, raw: dict[str, Any]) -> None:
    occurrence = Occurrence.objects.get(participant=participant, instrument="monthly", month=month)
    at = occurrence.opens_at + dt.timedelta(days=4)
    with time_machine.travel(at, tick=False):
        services.occurrences_advance(now=at)
        services.response_submit(occurrence=occurrence, raw=raw, source="participant")


@pytest.fixture
def datamanager(make_staff) -> Any:
    return make_staff("data_manager")


# --- API ----------------------------------------------------------------------------------------


def test_the_outcomes_follow_a_monthly_answer_with_a_recurrence(randomised, coordinator) -> None:
    answer(randomised, RECURRENCE)

    response = client_for(coordinator).get(url(randomised))

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"activity_limiting", "any", "care_seeking", "summary"}
    primary = body["activity_limiting"]
    assert (primary["event"], primary["event_date"], primary["days"], primary["adjudicated"]) == (True, "2026-03-20", 18, False)
    assert (primary["censored_at"], primary["censor_reason"]) == (None, "")  # censoring only without an event
    assert primary["derived"]["event"] is True and primary["derived"]["event_date"] == "2026-03-20"
    care = body["care_seeking"]
    assert (care["event"], care["event_date"], care["censored_at"], care["censor_reason"], care["days"]) == (
        False,
        None,
        "2026-04-02",
        "last_questionnaire",
        31,
    )
    assert body["summary"] == {
        "recurrences": 1,
        "care_seeking_recurrences": 0,
        "work_days_missed": 2,
        "work_days_by_month": {"1": 2},
        "monthly_completed": 1,
        "monthly_missed": 0,
    }
    assert "arm" not in response.content.decode()


def test_a_participant_not_yet_randomised_has_no_outcomes(enrol, coordinator) -> None:
    body = client_for(coordinator).get(url(enrol())).json()
    assert body == {"activity_limiting": None, "any": None, "care_seeking": None, "summary": None}


def test_outcomes_are_for_roles_that_view_participants_at_their_sites(randomised, make_staff) -> None:
    assert_error(client_for(make_staff("coordinator", sites=["BNE"], username="bne")).get(url(randomised)), 404)
    assert_error(client_for(make_staff("admin")).get(url(randomised)), 403)
    assert_error(
        client_for(make_staff("coordinator", sites=["SYD"], username="syd")).get("/api/v1/participants/987654/outcomes/"), 404
    )
    assert client_for(make_staff("investigator")).get(url(randomised)).status_code == 200


def test_a_data_manager_adjudicates_and_the_derived_value_is_kept(randomised, coordinator, datamanager) -> None:
    answer(randomised, RECURRENCE)
    api = client_for(datamanager)

    response = api.post(
        url(randomised, "activity_limiting"),
        {"event": True, "event_date": "2026-03-25", "reason": "Phone call: pain began on the 25th"},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["code"], body["event"], body["event_date"], body["days"], body["adjudicated"]) == (
        "activity_limiting",
        True,
        "2026-03-25",
        23,
        True,
    )
    assert body["derived"]["event_date"] == "2026-03-20"
    assert body["adjudication_reason"] == "Phone call: pain began on the 25th"
    ruled_out = api.post(url(randomised, "any"), {"event": False, "reason": "A kidney stone, not back pain"}, format="json")
    assert (ruled_out.json()["event"], ruled_out.json()["censored_at"]) == (False, "2026-04-02")
    listed = client_for(coordinator).get(url(randomised)).json()
    assert listed["activity_limiting"]["event_date"] == "2026-03-25" and listed["any"]["adjudicated"] is True


def test_adjudication_errors(randomised, coordinator, datamanager, make_staff) -> None:
    answer(randomised, RECURRENCE)
    api = client_for(datamanager)
    target = url(randomised, "activity_limiting")
    assert_error(client_for(coordinator).post(target, {"event": True, "reason": "x"}, format="json"), 403)
    assert_error(api.post(target, {"event": True, "reason": ""}, format="json"), 400, "reason")
    assert_error(api.post(target, {"reason": "x"}, format="json"), 400, "event")
    assert_error(api.post(target, {"event": True, "reason": "Phone call"}, format="json"), 400, "event_date")
    assert_error(api.post(target, {"event": True, "event_date": "2026-01-01", "reason": "x"}, format="json"), 400, "event_date")
    assert_error(api.post(target, {"event": True, "event_date": "soon", "reason": "x"}, format="json"), 400, "event_date")
    assert_error(api.post(url(randomised, "sometime"), {"event": False, "reason": "x"}, format="json"), 404)
    assert_error(
        api.post("/api/v1/participants/987654/outcomes/any/adjudicate/", {"event": False, "reason": "x"}, format="json"), 404
    )
    assert not Outcome.objects.filter(adjudicated=True).exists()


# --- Pages --------------------------------------------------------------------------------------


def test_the_outcomes_page_shows_the_panel_with_the_monthly_history(client, randomised, coordinator) -> None:
    answer(randomised, RECURRENCE)
    client.force_login(coordinator)

    response = client.get(reverse("participant-outcomes", args=[randomised.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    primary = page.split('data-testid="outcome-activity_limiting"')[1].split("</tr>")[0]
    assert "Event" in primary and "20 Mar 2026" in primary and ">18<" in primary
    care = page.split('data-testid="outcome-care_seeking"')[1].split("</tr>")[0]
    assert "No event" in care and "2 Apr 2026" in care and "Last completed monthly questionnaire" in care
    month_1 = page.split('data-testid="month-1"')[1].split("</tr>")[0]
    assert "<td>yes</td>" in month_1 and "2026-03-20" in month_1 and "activity_limiting" in month_1
    assert "1 recurrence" in page.split('data-testid="outcome-summary"')[1].split("</p>")[0]
    assert 'data-testid="adjudicate-activity_limiting"' not in page  # only data managers adjudicate
    assert (
        client.post(
            reverse("participant-outcome-adjudicate", args=[randomised.pk, "any"]), {"event": "no", "reason": "x"}
        ).status_code
        == 403
    )


def test_a_data_manager_adjudicates_on_the_page(client, randomised, datamanager) -> None:
    answer(randomised, RECURRENCE)
    client.force_login(datamanager)
    page = client.get(reverse("participant-outcomes", args=[randomised.pk])).content.decode()
    assert 'data-testid="adjudicate-activity_limiting"' in page
    target = reverse("participant-outcome-adjudicate", args=[randomised.pk, "activity_limiting"])
    assert f'action="{target}"' in page
    assert client.get(target).status_code == 200

    refused = client.post(target, {"event": "yes", "event_date": "", "reason": "Phone call"})
    assert refused.status_code == 400
    assert "An event needs its date." in refused.content.decode()
    assert not Outcome.objects.filter(adjudicated=True).exists()

    done = client.post(target, {"event": "yes", "event_date": "2026-03-25", "reason": "Phone call"}, follow=True)
    assert done.redirect_chain[-1][0] == reverse("participant-outcomes", args=[randomised.pk])
    primary = done.content.decode().split('data-testid="outcome-activity_limiting"')[1].split("</tr>")[0]
    assert "25 Mar 2026" in primary and 'data-testid="adjudicated"' in primary and "Event 20 Mar 2026" in primary
    assert client.get(reverse("participant-outcome-adjudicate", args=[randomised.pk, "nonsense"])).status_code == 404


def test_the_outcomes_page_keeps_its_query_count_as_months_are_answered(client, randomised, coordinator) -> None:
    answer(randomised, NO_PAIN)
    client.force_login(coordinator)
    target = reverse("participant-outcomes", args=[randomised.pk])
    client.get(target)
    reset_queries()
    with CaptureQueriesContext(connection) as few:
        assert len(client.get(target).context["monthly_history"]) >= 1
    for month in (2, 3, 4):
        answer_month(randomised, month, RECURRENCE if month == 3 else NO_PAIN)
    reset_queries()
    with CaptureQueriesContext(connection) as many:
        response = client.get(target)
    completed = [row for row in response.context["monthly_history"] if row["completed"]]
    assert [row["month"] for row in completed] == [1, 2, 3, 4]
    assert len(many) == len(few)
