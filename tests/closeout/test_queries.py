"""Data queries: raised by a data manager (or a check) on a field of a clinical record, answered by
the record's site staff, closed or re-opened by the data manager; every step audited, each role
and site limited to its own; pages and API."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from closeout.datalock.services import database_lock
from closeout.models import DataQuery, QueryStatus
from closeout.queries import selectors, services
from intervention.models import Walk
from participants.blinding import record_history
from participants.models import Participant
from tests.factories import ParticipantFactory
from trial.errors import ApplicationError, Conflict, DataLocked, NotAllowed
from trial.models import Trial


@pytest.fixture
def staff(make_staff) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {
        "dm": make_staff("data_manager", username="dana"),
        "syd": make_staff("coordinator", sites=["SYD"], username="sam"),
        "physio": make_staff("physiotherapist", sites=["SYD"], username="phil"),
        "bne": make_staff("coordinator", sites=["BNE"], username="bea"),
        "investigator": make_staff("investigator", username="ivy"),
    }


@pytest.fixture
def participant(walkback: Trial) -> Participant:
    return ParticipantFactory(site=walkback.sites.get(code="SYD"), randomised_to=walkback.arms.get(code="walking"))


def raise_one(walkback: Trial, participant: Participant, staff: dict[str, Any], **kwargs: Any) -> DataQuery:
    values: dict[str, Any] = {"field": "status", "text": "Please confirm the status.", "assignee": staff["syd"]}
    query = services.query_raise(trial=walkback, record=participant, by=staff["dm"], **{**values, **kwargs})
    assert query is not None
    return query


def raise_by_check(walkback: Trial, record: Any, text: str = "Odd value") -> DataQuery:
    query = services.query_raise(trial=walkback, record=record, field="minutes", text=text, check_code="demo")
    assert query is not None
    return query


def reasons(query: DataQuery, user: Any, trial: Trial) -> list[str]:
    return [entry.reason for entry in record_history(obj=query, user=user, trial=trial)]


# --- The lifecycle ------------------------------------------------------------------------------


def test_a_query_goes_open_answered_closed_and_reopened_with_every_step_audited(walkback, participant, staff) -> None:
    query = raise_one(walkback, participant, staff)
    assert (query.status, query.site.code, query.record_type, query.record_id) == (
        "open",
        "SYD",
        "participants.participant",
        participant.pk,
    )
    assert query.raised_by == staff["dm"] and query.assignee == staff["syd"]

    query = services.query_answer(query=query, answer="Checked against the paper CRF: correct.", by=staff["syd"])
    assert query.status == QueryStatus.ANSWERED and query.answer.startswith("Checked")
    query = services.query_close(query=query, by=staff["dm"])
    assert query.status == QueryStatus.CLOSED
    query = services.query_reopen(query=query, reason="The CRF shows another date", by=staff["dm"])
    assert query.status == QueryStatus.OPEN

    assert reasons(query, staff["dm"], walkback) == [
        "Data query raised",
        "Data query answered",
        "Data query closed",
        "Data query re-opened: The CRF shows another date",
    ]


def test_only_data_managers_raise_close_and_reopen_and_only_site_staff_answer(walkback, participant, staff) -> None:
    with pytest.raises(NotAllowed, match="data manager"):
        services.query_raise(trial=walkback, record=participant, field="status", text="?", by=staff["syd"])
    query = raise_one(walkback, participant, staff)
    for outsider in (staff["bne"], staff["dm"], staff["investigator"]):
        with pytest.raises(NotAllowed, match="site"):
            services.query_answer(query=query, answer="Fine", by=outsider)
    with pytest.raises(NotAllowed, match="data manager"):
        services.query_close(query=query, by=staff["syd"], note="Done")
    # any staff member of the site answers, not only the assignee
    services.query_answer(query=query, answer="Fine", by=staff["physio"])
    with pytest.raises(Conflict, match="answered"):
        services.query_answer(query=query, answer="Again", by=staff["syd"])
    with pytest.raises(NotAllowed, match="data manager"):
        services.query_reopen(query=query, reason="No", by=staff["syd"])


def test_bad_input_is_refused_with_a_message_per_field_and_nothing_is_written(walkback, participant, staff) -> None:
    with pytest.raises(ApplicationError) as empty:
        services.query_raise(trial=walkback, record=participant, field="status", text="  ", by=staff["dm"])
    assert "text" in empty.value.errors
    with pytest.raises(ApplicationError) as field:
        services.query_raise(trial=walkback, record=participant, field="shoe_size", text="?", by=staff["dm"])
    assert "field" in field.value.errors
    with pytest.raises(ApplicationError) as assignee:
        services.query_raise(trial=walkback, record=participant, field="status", text="?", assignee=staff["bne"], by=staff["dm"])
    assert "assignee" in assignee.value.errors
    assert not DataQuery.objects.exists()

    query = raise_one(walkback, participant, staff)
    with pytest.raises(ApplicationError, match="clinical records"):
        services.query_raise(trial=walkback, record=query, field="text", text="A query on a query?", by=staff["dm"])
    with pytest.raises(ApplicationError) as note:
        services.query_close(query=query, by=staff["dm"])  # nothing answered: say why
    assert "note" in note.value.errors
    with pytest.raises(ApplicationError):
        services.query_answer(query=query, answer=" ", by=staff["syd"])
    with pytest.raises(Conflict, match="already open"):
        services.query_reopen(query=query, reason="x", by=staff["dm"])
    services.query_close(query=query, by=staff["dm"], note="Raised in error")
    with pytest.raises(ApplicationError) as reason:
        services.query_reopen(query=query, reason="", by=staff["dm"])
    assert "reason" in reason.value.errors
    query.refresh_from_db()
    assert query.status == QueryStatus.CLOSED


def test_a_finding_raises_its_query_once(walkback, participant) -> None:
    first = services.query_raise(
        trial=walkback, record=participant, field="status", text="Odd", check_code="demo", finding_key="demo:1"
    )
    again = services.query_raise(
        trial=walkback, record=participant, field="status", text="Odd", check_code="demo", finding_key="demo:1"
    )
    assert first is not None and again is None
    assert DataQuery.objects.count() == 1 and first.raised_by is None
    assert reasons(first, None, walkback) == ["Data query raised by the data-quality check demo"]


def test_queries_cannot_change_once_the_database_is_locked(walkback, participant, staff, make_staff, password) -> None:
    query = raise_one(walkback, participant, staff)
    database_lock(trial=walkback, user=staff["investigator"], password=password, open_items_note="Test")
    walkback.refresh_from_db()
    with pytest.raises(DataLocked):
        raise_one(walkback, participant, staff)
    with pytest.raises(DataLocked):
        services.query_answer(query=query, answer="Fine", by=staff["syd"])
    assert DataQuery.objects.get().status == QueryStatus.OPEN


# --- Reading --------------------------------------------------------------------------------------


def test_staff_see_queries_of_their_sites_and_their_own_open_ones(walkback, participant, staff) -> None:
    mine = raise_one(walkback, participant, staff)
    unassigned = raise_one(walkback, participant, staff, assignee=None, field="site")
    elsewhere = ParticipantFactory(site=walkback.sites.get(code="BNE"))
    other = raise_one(walkback, elsewhere, staff, assignee=staff["bne"])
    services.query_answer(query=unassigned, answer="Fine", by=staff["physio"])

    def ids(qs: Any) -> set[int]:
        return {q.pk for q in qs}

    assert ids(selectors.query_list(user=staff["dm"], trial=walkback)) == {mine.pk, unassigned.pk, other.pk}
    assert ids(selectors.query_list(user=staff["syd"], trial=walkback)) == {mine.pk, unassigned.pk}
    assert ids(selectors.query_list(user=staff["bne"], trial=walkback)) == {other.pk}
    assert ids(selectors.my_open_queries(user=staff["syd"], trial=walkback)) == {mine.pk}
    assert ids(selectors.my_open_queries(user=staff["physio"], trial=walkback)) == set()  # assigned to sam
    assert ids(selectors.my_open_queries(user=staff["dm"], trial=walkback)) == set()
    assert ids(selectors.queries_for_record(record_type="participants.participant", record_id=participant.pk)) == {
        mine.pk,
        unassigned.pk,
    }
    filtered = selectors.query_list(
        user=staff["dm"], trial=walkback, filters={"status": "answered", "record": f"participants.participant:{participant.pk}"}
    )
    assert ids(filtered) == {unassigned.pk}
    assert ids(selectors.query_list(user=staff["dm"], trial=walkback, filters={"site": "bne"})) == {other.pk}


# --- Pages --------------------------------------------------------------------------------------


def test_the_list_page_shows_site_staff_their_queries_and_keeps_its_query_count(
    client: Client, walkback, participant, staff
) -> None:
    raise_one(walkback, participant, staff)
    walk = Walk.objects.create(participant=participant, walked_on=dt.date(2026, 3, 3), minutes=20)
    raise_by_check(walkback, walk)
    client.force_login(staff["syd"])
    response = client.get(reverse("query-list"))
    assert response.status_code == 200
    assert response.context["page"].paginator.count == 2 and len(response.context["mine"]) == 2
    assert b"Run the checks now" not in response.content

    client.force_login(staff["dm"])
    client.get(reverse("query-list"))
    reset_queries()
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("query-list"))
    for n in range(12):
        raise_one(walkback, participant, staff, text=f"Question {n}")
        raise_by_check(walkback, walk, text=f"Walk question {n}")
        other = ParticipantFactory(site=walkback.sites.get(code="BNE"))
        raise_one(walkback, other, staff, assignee=None)
    reset_queries()
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse("query-list"))
    assert response.context["page"].paginator.count == 38
    assert len(many) == len(few)
    assert b"Run the checks now" in response.content
    assert client.get(reverse("query-list"), {"status": "nonsense"}).context["page"].paginator.count == 38


def test_a_blinded_data_manager_sees_only_the_status_of_a_query_on_an_arm_revealing_record(
    client: Client, walkback, participant, staff
) -> None:
    walk = Walk.objects.create(participant=participant, walked_on=dt.date(2026, 3, 3), minutes=20)
    query = raise_by_check(walkback, walk, text="Ninety-nine minutes walked?")
    with pytest.raises(NotAllowed, match="cannot see"):  # a blinded data manager cannot even open the walk
        raise_one(walkback, walk, staff, field="minutes")
    client.force_login(staff["dm"])
    listed = client.get(reverse("query-list")).content.decode()
    detail = client.get(reverse("query-detail", args=[query.pk])).content.decode()
    for page in (listed, detail):
        assert "Ninety-nine" not in page and "walk" not in page.lower().replace("walkback", "")
        assert 'data-testid="hidden-query"' in page
    # a filter on the record or the check does not count it either
    assert client.get(reverse("query-list"), {"record": f"intervention.walk:{walk.pk}"}).context["page"].paginator.count == 0
    client.force_login(staff["syd"])
    assert "Ninety-nine" in client.get(reverse("query-detail", args=[query.pk])).content.decode()


def test_a_blinded_data_manager_queries_an_event_reported_at_a_session_like_any_other(
    client: Client, walkback, participant, staff
) -> None:
    from intervention.services import sessions_plan
    from safety.services import AEInput, adverse_event_record

    sessions_plan(participant=participant)
    session = participant.sessions.order_by("number").first()
    event = adverse_event_record(
        participant=participant,
        data=AEInput(onset_date=dt.date(2026, 3, 1), description="Sore knee", category="lower_extremity", severity="mild"),
        by=staff["physio"],
        session_id=session.pk,
    )
    # Refusing it (it used to answer 400) told the data manager the participant walks.
    query = raise_one(walkback, event, staff, field="description", text="Which knee?")
    client.force_login(staff["dm"])
    detail = client.get(reverse("query-detail", args=[query.pk])).content.decode()
    assert "Which knee?" in detail and 'data-testid="hidden-query"' not in detail
    assert session.name not in detail and "session" not in detail.lower().replace("sessions/agenda", "")


def test_raise_answer_close_and_reopen_through_the_pages(client: Client, walkback, participant, staff) -> None:
    url = reverse("query-new") + f"?record=participants.participant:{participant.pk}&field=status"
    client.force_login(staff["syd"])
    assert client.get(url).status_code == 403
    client.force_login(staff["dm"])
    form = client.get(url)
    assert form.status_code == 200 and form.context["form"]["field"].value() == "status"
    assert client.get(reverse("query-new") + "?record=participants.participant:999999").status_code == 404
    assert client.get(reverse("query-new") + "?record=nonsense").status_code == 404
    assert client.get(reverse("query-new") + "?record=trial.site:1").status_code == 404  # not a clinical record
    refused = client.post(url, {"field": "status", "text": "", "assignee": "sam"})
    assert refused.status_code == 400 and b"Say what needs checking" in refused.content
    created = client.post(url, {"field": "status", "text": "Is the status right?", "assignee": "sam"})
    query = DataQuery.objects.get()
    assert created.status_code == 302 and created["Location"] == reverse("query-detail", args=[query.pk])
    assert query.raised_by == staff["dm"] and query.assignee == staff["syd"]

    client.force_login(staff["syd"])
    page = client.get(reverse("query-detail", args=[query.pk])).content.decode()
    assert 'data-testid="answer-form"' in page and 'data-testid="close-form"' not in page
    assert client.post(reverse("query-answer", args=[query.pk]), {"answer": ""}).status_code == 400
    assert client.post(reverse("query-answer", args=[query.pk]), {"answer": "Corrected"}).status_code == 302
    assert client.post(reverse("query-close", args=[query.pk]), {"note": ""}).status_code == 403

    client.force_login(staff["dm"])
    assert client.post(reverse("query-close", args=[query.pk]), {"note": ""}).status_code == 302
    assert client.post(reverse("query-reopen", args=[query.pk]), {"reason": ""}).status_code == 400
    assert client.post(reverse("query-reopen", args=[query.pk]), {"reason": "Still wrong"}).status_code == 302
    query.refresh_from_db()
    assert query.status == QueryStatus.OPEN
    # another site's coordinator does not find it at all
    client.force_login(staff["bne"])
    assert client.get(reverse("query-detail", args=[query.pk])).status_code == 404


def test_the_run_checks_button_is_for_data_managers(client: Client, walkback, staff) -> None:
    client.force_login(staff["syd"])
    assert client.post(reverse("query-checks-run")).status_code == 403
    client.force_login(staff["dm"])
    response = client.post(reverse("query-checks-run"), follow=True)
    assert response.status_code == 200 and b"checks are running" in response.content


# --- API ----------------------------------------------------------------------------------------


def api_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def assert_error(response: Any, status: int, *fields: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"detail", "errors"} and body["detail"], body
    assert set(fields) <= set(body["errors"]), body
    return body


def test_the_query_api_raises_lists_answers_closes_and_reopens(walkback, participant, staff) -> None:
    record = f"participants.participant:{participant.pk}"
    dm, syd = api_for(staff["dm"]), api_for(staff["syd"])
    assert_error(syd.post("/api/v1/queries/", {"record": record, "text": "?"}, format="json"), 403)
    assert_error(dm.post("/api/v1/queries/", {"record": record}, format="json"), 400, "text")
    assert_error(
        dm.post("/api/v1/queries/", {"record": "participants.participant:999", "text": "?"}, format="json"), 400, "record"
    )
    assert_error(dm.post("/api/v1/queries/", {"record": record, "text": "?", "field": "nope"}, format="json"), 400, "field")
    created = dm.post(
        "/api/v1/queries/", {"record": record, "field": "status", "text": "Status?", "assignee": "sam"}, format="json"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["status"], body["site"], body["participant"], body["assignee"], body["raised_by"], body["hidden"]) == (
        "open",
        "SYD",
        participant.study_id,
        "sam",
        "dana",
        False,
    )
    pk = body["id"]
    listed = syd.get("/api/v1/queries/", {"mine": "true"}).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == pk
    assert api_for(staff["bne"]).get("/api/v1/queries/").json()["count"] == 0
    assert_error(dm.get("/api/v1/queries/", {"status": "nonsense"}), 400, "status")

    assert_error(dm.post(f"/api/v1/queries/{pk}/answer/", {"answer": "x"}, format="json"), 403)
    answered = syd.post(f"/api/v1/queries/{pk}/answer/", {"answer": "Checked"}, format="json")
    assert answered.status_code == 200 and answered.json()["status"] == "answered"
    assert_error(syd.post(f"/api/v1/queries/{pk}/answer/", {"answer": "Again"}, format="json"), 409)
    assert_error(syd.post(f"/api/v1/queries/{pk}/close/", {}, format="json"), 403)
    assert dm.post(f"/api/v1/queries/{pk}/close/", {}, format="json").json()["status"] == "closed"
    assert_error(dm.post(f"/api/v1/queries/{pk}/reopen/", {}, format="json"), 400, "reason")
    assert dm.post(f"/api/v1/queries/{pk}/reopen/", {"reason": "Again"}, format="json").json()["status"] == "open"
    assert_error(api_for(staff["bne"]).post(f"/api/v1/queries/{pk}/answer/", {"answer": "x"}, format="json"), 404)
