from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from participants.models import ContactDetails, Participant, Screening
from tests.factories import ELIGIBLE
from trial.models import Allocation, Trial

ENROL_BODY = {
    "consent": {"method": "video", "signed_name": "Sam Person"},
    "strata": {"prior_episodes_gt2": "no", "referral": "clinician"},
    "contact": {"email": "sam@example.org", "mobile": "+61400111222", "timezone": "Australia/Brisbane"},
}


@pytest.fixture
def coord_api(coordinator) -> APIClient:
    client = APIClient()
    client.force_authenticate(coordinator)
    return client


def _screen(api: APIClient, **overrides: Any) -> dict[str, Any]:
    body = {"site": "SYD", "answers": ELIGIBLE} | overrides
    response = api.post("/api/v1/screenings/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_screening_contract(coord_api: APIClient) -> None:
    eligible = _screen(coord_api)
    assert set(eligible) >= {"id", "eligible", "reasons"}
    assert eligible["eligible"] is True and eligible["reasons"] == []
    ineligible = _screen(coord_api, answers={**ELIGIBLE, "already_active": True}, screened_on="2026-03-05")
    assert ineligible["eligible"] is False and ineligible["reasons"] == ["already_active"]
    assert Screening.objects.get(pk=ineligible["id"]).screened_on.isoformat() == "2026-03-05"


def test_a_screening_before_recruitment_started_is_a_400_on_its_field(coord_api: APIClient, walkback) -> None:
    response = coord_api.post(
        "/api/v1/screenings/", {"site": "SYD", "answers": ELIGIBLE, "screened_on": "2026-03-01"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"screened_on": ["Before recruitment started on 02 Mar 2026."]}
    assert not Screening.objects.exists()


def test_screening_bad_input_is_a_400_naming_the_field(coord_api: APIClient) -> None:
    response = coord_api.post("/api/v1/screenings/", {"site": "NOPE", "answers": ELIGIBLE}, format="json")
    assert response.status_code == 400 and response.json()["errors"] == {"site": ["Unknown site code."]}
    response = coord_api.post("/api/v1/screenings/", {"site": "SYD", "answers": {"age_18_plus": True}}, format="json")
    assert response.status_code == 400
    assert "answers.recovered" in response.json()["errors"]
    response = coord_api.post("/api/v1/screenings/", {"site": "SYD", "answers": "yes"}, format="json")
    assert response.status_code == 400 and "answers" in response.json()["errors"]
    assert Screening.objects.count() == 0


def test_enrol_contract_and_contacts_stay_out_of_participant_responses(coord_api: APIClient) -> None:
    screening = _screen(coord_api)
    response = coord_api.post(f"/api/v1/screenings/{screening['id']}/enrol/", ENROL_BODY, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["study_id"] == "WB-SYD-0001" and body["status"] == "enrolled" and isinstance(body["id"], int)
    assert body["strata"] == {"prior_episodes_gt2": "no", "referral": "clinician"}
    assert "sam@example.org" not in response.content.decode() and "Sam Person" not in response.content.decode()
    assert ContactDetails.objects.get(participant_id=body["id"]).timezone == "Australia/Brisbane"


def test_enrolling_an_ineligible_or_incomplete_person_is_a_400_naming_why(coord_api: APIClient) -> None:
    ineligible = _screen(coord_api, answers={**ELIGIBLE, "able_to_walk": False})
    response = coord_api.post(f"/api/v1/screenings/{ineligible['id']}/enrol/", ENROL_BODY, format="json")
    assert response.status_code == 400 and "able_to_walk" in response.json()["detail"]
    eligible = _screen(coord_api)
    response = coord_api.post(
        f"/api/v1/screenings/{eligible['id']}/enrol/", {**ENROL_BODY, "consent": {"method": "video"}}, format="json"
    )
    assert response.status_code == 400 and "consent.signed_name" in response.json()["errors"]
    assert Participant.objects.count() == 0


def test_randomise_contract_then_409_with_the_unchanged_outcome(coord_api: APIClient, enrol, sealed_list) -> None:
    participant = enrol()
    first = coord_api.post(f"/api/v1/participants/{participant.pk}/randomise/")
    assert first.status_code == 201
    body = first.json()
    assert set(body) == {"arm", "randomised_at", "study_id"}
    assert body["arm"] in {"walking", "control"} and body["study_id"] == participant.study_id
    again = coord_api.post(f"/api/v1/participants/{participant.pk}/randomise/")
    assert again.status_code == 409
    assert again.json()["randomised_at"][:19] == body["randomised_at"][:19]
    assert "arm" not in again.json()
    assert Allocation.objects.count() == 1


def test_randomise_not_ready_is_a_400_naming_what_is_missing(coord_api: APIClient, enrol, sealed_list) -> None:
    participant = enrol(prior=None)
    response = coord_api.post(f"/api/v1/participants/{participant.pk}/randomise/")
    assert response.status_code == 400
    assert "More than two previous episodes" in response.json()["detail"]


def test_an_exhausted_list_is_a_409_not_a_500(coord_api: APIClient, enrol) -> None:
    response = coord_api.post(f"/api/v1/participants/{enrol().pk}/randomise/")
    assert response.status_code == 409
    assert "exhausted" in response.json()["detail"]


@pytest.mark.parametrize("role", ["investigator", "data_manager", "statistician"])
def test_blinded_roles_get_no_arm_key_at_all(walkback: Trial, make_staff, enrol, coordinator, sealed_list, role) -> None:
    from participants.services import participant_randomise

    participant = enrol()
    participant_randomise(participant_id=participant.pk, by=coordinator)
    api = APIClient()
    api.force_authenticate(make_staff(role))
    listed = api.get("/api/v1/participants/").json()["results"]
    assert listed and all("arm" not in row for row in listed)
    detail = api.get(f"/api/v1/participants/{participant.pk}/").json()
    assert "arm" not in detail
    assert api.post(f"/api/v1/participants/{participant.pk}/randomise/").status_code == 403


def test_unblinded_roles_see_the_arm_key(coord_api: APIClient, enrol, sealed_list) -> None:
    randomised, waiting = enrol(), enrol()
    coord_api.post(f"/api/v1/participants/{randomised.pk}/randomise/")
    rows = {row["id"]: row for row in coord_api.get("/api/v1/participants/").json()["results"]}
    assert rows[randomised.pk]["arm"] in {"walking", "control"}
    assert rows[waiting.pk]["arm"] is None


def test_participants_at_other_sites_are_invisible(walkback: Trial, make_staff, enrol) -> None:
    brisbane = enrol(site="BNE")
    api = APIClient()
    api.force_authenticate(make_staff("coordinator", sites=["SYD"], username="sydonly"))
    assert api.get(f"/api/v1/participants/{brisbane.pk}/").status_code == 404
    assert api.get("/api/v1/participants/").json()["count"] == 0
    assert api.post(f"/api/v1/participants/{brisbane.pk}/randomise/").status_code == 404


def test_participant_list_query_count_is_constant(coord_api: APIClient, enrol, django_assert_max_num_queries) -> None:
    enrol()
    coord_api.get("/api/v1/participants/")
    with django_assert_max_num_queries(12) as few:
        coord_api.get("/api/v1/participants/")
    for _ in range(10):
        enrol()
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert coord_api.get("/api/v1/participants/").json()["count"] == 11


def test_withdraw_and_unblind_endpoints(walkback: Trial, coord_api: APIClient, enrol, make_staff, password, sealed_list) -> None:
    participant = enrol()
    coord_api.post(f"/api/v1/participants/{participant.pk}/randomise/")
    response = coord_api.post(
        f"/api/v1/participants/{participant.pk}/withdraw/", {"scope": "followup", "reason": "Busy"}, format="json"
    )
    assert response.status_code == 201 and response.json()["status"] == "withdrawn"
    bad = coord_api.post(
        f"/api/v1/participants/{participant.pk}/withdraw/", {"scope": "everything", "reason": "x"}, format="json"
    )
    assert bad.status_code == 400 and "scope" in bad.json()["errors"]

    investigator = APIClient()
    investigator.force_authenticate(make_staff("investigator"))
    wrong = investigator.post(
        f"/api/v1/participants/{participant.pk}/unblind/", {"reason": "SAE", "password": "nope"}, format="json"
    )
    assert wrong.status_code == 403 and "arm" not in wrong.json()
    ok = investigator.post(
        f"/api/v1/participants/{participant.pk}/unblind/", {"reason": "SAE", "password": password}, format="json"
    )
    assert ok.status_code == 201 and ok.json()["arm"] in {"walking", "control"}
    assert "arm" in investigator.get(f"/api/v1/participants/{participant.pk}/").json()


def test_a_late_page_of_the_api_list_costs_what_the_first_does(
    walkback: Trial, coord_api: APIClient, django_assert_max_num_queries
) -> None:
    from tests.factories import ParticipantFactory

    ParticipantFactory.create_batch(55, site=walkback.sites.get(code="SYD"), randomised_to=walkback.arms.first())
    every = sorted(Participant.objects.values_list("study_id", flat=True))
    coord_api.get("/api/v1/participants/")
    with django_assert_max_num_queries(12) as first:
        assert [p["study_id"] for p in coord_api.get("/api/v1/participants/").json()["results"]] == every[:50]
    with django_assert_max_num_queries(len(first.captured_queries)) as late:
        body = coord_api.get("/api/v1/participants/", {"page": 2}).json()
    assert body["count"] == 55 and [p["study_id"] for p in body["results"]] == every[50:]
    assert all(set(p["consent"]) == {"version", "needs_reconsent"} for p in body["results"])
    assert not any("OFFSET" in q["sql"] and "consent_version" in q["sql"] for q in late.captured_queries)
    backwards = coord_api.get("/api/v1/participants/", {"page": 2, "sort": "-study_id"}).json()["results"]
    assert [p["study_id"] for p in backwards] == every[:5][::-1]
