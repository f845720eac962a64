"""The lock page and API: what stands in the way, the investigator's electronic signature (name,
UTC time, meaning, password), the unlock with a reason, and the signature shown with the lock."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from closeout.datalock.services import database_lock
from closeout.models import DatabaseLock
from closeout.queries import services as queries
from safety.models import AdverseEvent
from tests.factories import ParticipantFactory
from trial.models import Trial

URL = "/api/v1/lock/"
MEANING = "I approve the lock of the WalkBack database"


@pytest.fixture
def datamanager(make_staff) -> Any:  # type: ignore[no-untyped-def]
    return make_staff("data_manager", username="dana")


@pytest.fixture
def blocked(walkback: Trial, datamanager: Any) -> dict[str, Any]:
    """One open query and one adverse-event report to review."""
    participant = ParticipantFactory(site=walkback.sites.get(code="SYD"), randomised_to=walkback.arms.get(code="control"))
    query = queries.query_raise(trial=walkback, record=participant, field="status", text="Status?", by=datamanager)
    event = AdverseEvent.objects.create(
        participant=participant,
        source="questionnaire",
        status="pending",
        reported_text="Sore knee",
        aware_at=participant.randomised_at,
    )
    return {"participant": participant, "query": query, "event": event}


def text(response: Any) -> str:
    return response.content.decode()


def section(html: str, testid: str) -> str:
    return html.split(f'data-testid="{testid}"', 1)[1].split("</ul>")[0].split("</dl>")[0]


def api_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def assert_error(response: Any, status: int, *fields: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert {"detail", "errors"} <= set(body) and body["detail"], body
    assert set(fields) <= set(body["errors"]), body
    return body


# --- The page -----------------------------------------------------------------------------------


def test_the_lock_page_shows_the_blockers_with_links_to_clear_them(
    client: Client, walkback, blocked, datamanager, make_staff
) -> None:
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    assert client.get(reverse("lock")).status_code == 403
    client.force_login(datamanager)
    page = text(client.get(reverse("lock")))
    assert 'data-testid="unlocked-state"' in page
    assert ">1<" in section(page, "blocker-queries") and reverse("query-list") + "?status=open" in section(
        page, "blocker-queries"
    )
    assert ">1<" in section(page, "blocker-events") and "/safety/events/?status=pending" in section(page, "blocker-events")
    assert ">0<" in section(page, "blocker-questionnaires")
    assert 'data-testid="lock-form"' not in page  # a data manager clears the way; an investigator signs


def test_an_investigator_signs_the_lock_on_the_page_and_the_signature_is_shown(
    client: Client, walkback, investigator, password
) -> None:
    client.force_login(investigator)
    page = client.get(reverse("lock"))
    assert text(page).count("Ivy Investigator") >= 1 and page.context["lock_form"]["meaning"].value() == MEANING
    assert "open_items_note" not in page.context["lock_form"].fields  # nothing is open

    wrong = client.post(reverse("lock-sign"), {"meaning": MEANING, "password": "wrong"})
    assert wrong.status_code == 403 and "password is not right" in text(wrong)
    assert not DatabaseLock.objects.exists()

    signed = client.post(reverse("lock-sign"), {"meaning": MEANING, "password": password}, follow=True)
    lock = DatabaseLock.objects.get()
    html = text(signed)
    current = section(html, "current-lock")
    assert "Ivy Investigator" in current and MEANING in current and lock.locked_at.strftime("%Y-%m-%d %H:%M:%S UTC") in current
    assert ">1<" in section(html, "lock-version") and "Valid" in section(html, "lock-signature")
    assert 'data-testid="unlock-form"' in html and 'data-testid="lock-form"' not in html

    DatabaseLock.objects.filter(pk=lock.pk).update(meaning="Something else")  # the signed record, edited behind its back
    assert "Not valid" in section(text(client.get(reverse("lock"))), "lock-signature")


def test_open_items_need_a_note_to_sign_and_unlocking_needs_a_reason(
    client: Client, walkback, blocked, investigator, password
) -> None:
    client.force_login(investigator)
    refused = client.post(reverse("lock-sign"), {"meaning": MEANING, "password": password})
    assert refused.status_code == 409 and "1 open data query" in text(refused) and "1 adverse-event report" in text(refused)
    assert not DatabaseLock.objects.exists()
    signed = client.post(reverse("lock-sign"), {"meaning": MEANING, "password": password, "open_items_note": "Queries on paper"})
    assert signed.status_code == 302 and DatabaseLock.objects.get().open_items_note == "Queries on paper"

    assert client.post(reverse("lock-unlock"), {"reason": "", "password": password}).status_code == 400
    assert client.post(reverse("lock-unlock"), {"reason": "Late data", "password": "wrong"}).status_code == 403
    unlocked = client.post(reverse("lock-unlock"), {"reason": "Late data found", "password": password}, follow=True)
    html = text(unlocked)
    assert 'data-testid="unlocked-state"' in html and "Late data found" in section(html, "past-lock")
    walkback.refresh_from_db()
    assert walkback.data_locked_at is None


# --- The API ------------------------------------------------------------------------------------


def test_the_lock_api_signs_reports_and_unlocks(walkback, blocked, investigator, datamanager, make_staff, password) -> None:
    api = api_for(investigator)
    before = api_for(datamanager).get(URL)
    assert before.status_code == 200
    assert before.json() == {
        "locked": False,
        "blockers": {
            "any": True,
            "open_queries": 1,
            "pending_adverse_events": 1,
            "open_questionnaires": 0,
            "items": ["1 open data query", "1 adverse-event report(s) not reviewed"],
        },
    }
    assert_error(api_for(make_staff("coordinator", sites=["SYD"])).get(URL), 403)
    assert_error(api_for(datamanager).post(URL, {"password": password}, format="json"), 403)

    assert_error(api.post(URL, {"password": "wrong", "meaning": MEANING}, format="json"), 403, "password")
    assert_error(api.post(URL, {"meaning": MEANING}, format="json"), 400, "password")
    blocked_body = assert_error(api.post(URL, {"password": password, "meaning": MEANING}, format="json"), 409, "open_items_note")
    assert blocked_body["errors"]["open_items_note"] == ["1 open data query", "1 adverse-event report(s) not reviewed"]
    assert blocked_body["blockers"]["open_queries"] == 1
    assert not DatabaseLock.objects.exists()

    queries.query_close(query=blocked["query"], by=datamanager, note="Resolved by phone")
    AdverseEvent.objects.filter(pk=blocked["event"].pk).update(status="dismissed", dismissed_reason="Not an AE")
    created = api.post(URL, {"password": password, "meaning": MEANING}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    lock = DatabaseLock.objects.get()
    assert (body["locked"], body["version"], body["signer_name"], body["meaning"], body["signature_valid"]) == (
        True,
        1,
        "Ivy Investigator",
        MEANING,
        True,
    )
    assert body["locked_at"].replace("Z", "+00:00").startswith(lock.locked_at.isoformat()[:19])
    assert body["blockers"]["any"] is False
    current = api.get(URL).json()
    assert current["locked"] is True and current["version"] == 1 and current["signer_name"] == "Ivy Investigator"
    assert_error(api.post(URL, {"password": password}, format="json"), 409)  # already locked

    assert_error(api.post(f"{URL}unlock/", {"password": password}, format="json"), 400, "reason")
    assert_error(api.post(f"{URL}unlock/", {"password": "wrong", "reason": "Late data"}, format="json"), 403)
    unlocked = api.post(f"{URL}unlock/", {"password": password, "reason": "Late data"}, format="json")
    assert unlocked.status_code == 200 and unlocked.json()["locked"] is False and unlocked.json()["unlock_reason"] == "Late data"
    assert api.get(URL).json()["locked"] is False
    again = api.post(URL, {"password": password}, format="json")
    assert again.status_code == 201 and again.json()["version"] == 2 and again.json()["meaning"] == MEANING


def test_after_the_lock_queries_and_checks_refuse_with_a_clear_message(
    walkback, blocked, investigator, datamanager, password
) -> None:
    database_lock(trial=walkback, user=investigator, password=password, open_items_note="Test")
    response = api_for(datamanager).post(
        "/api/v1/queries/", {"record": f"participants.participant:{blocked['participant'].pk}", "text": "?"}, format="json"
    )
    assert_error(response, 423)
    assert "locked" in response.json()["detail"]


def test_the_lock_and_releases_keep_their_history_open_to_staff_after_moving_to_closeout(walkback: Trial, make_staff) -> None:
    from closeout.models import Release
    from participants import blinding

    lock = DatabaseLock(trial=walkback, version=1)
    release = Release(trial=walkback, number=1)
    for role in ("statistician", "data_manager"):
        user = make_staff(role)
        assert blinding.can_view_record(user, lock, trial=walkback)
        assert blinding.can_view_record(user, release, trial=walkback)
