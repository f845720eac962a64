from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.factories import SiteFactory
from trial.models import SecurityEvent, SecurityEventKind, Trial


def test_token_endpoint_returns_a_token_that_authenticates(api: APIClient, make_staff, password) -> None:
    user = make_staff("coordinator", sites=["SYD"])
    response = api.post("/api/v1/auth/token/", {"username": user.username, "password": password}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/trial/").status_code == 200
    assert SecurityEvent.objects.filter(kind=SecurityEventKind.TOKEN_ISSUED, user=user).exists()


def test_wrong_password_gets_the_one_error_shape_and_is_audited(api: APIClient, make_staff) -> None:
    user = make_staff("coordinator", sites=["SYD"])
    response = api.post("/api/v1/auth/token/", {"username": user.username, "password": "nope"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "detail": "Unable to log in with those credentials.",
        "errors": {"non_field_errors": ["Invalid username or password."]},
    }
    assert SecurityEvent.objects.filter(kind=SecurityEventKind.LOGIN_FAILED, username=user.username).exists()


def test_missing_fields_are_named_in_errors(api: APIClient, walkback: Trial) -> None:
    response = api.post("/api/v1/auth/token/", {"username": "x"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["errors"] == {"password": ["This field is required."]}
    assert "password" in body["detail"]


def test_unauthenticated_requests_get_a_json_401_or_403(api: APIClient, walkback: Trial) -> None:
    response = api.get("/api/v1/trial/")
    assert response.status_code in (401, 403)
    assert set(response.json()) == {"detail", "errors"}


def test_trial_endpoint_contract(api: APIClient, walkback: Trial, make_staff) -> None:
    api.force_authenticate(make_staff("investigator"))
    body = api.get("/api/v1/trial/").json()
    assert body["name"] == "WalkBack"
    assert body["registration"] == "ACTRN12619001134112"
    assert body["timezone"] == "Australia/Sydney"
    assert body["arms"] == [
        {"code": "walking", "name": "Walking and education programme", "ratio": 1},
        {"code": "control", "name": "No intervention (control)", "ratio": 1},
    ]
    assert {"code": "SYD", "name": "Sydney CBD Physiotherapy"} in body["sites"]
    assert body["strata"][0] == {
        "code": "prior_episodes_gt2",
        "label": "More than two previous episodes of low back pain",
        "levels": [{"code": "yes", "label": "Yes"}, {"code": "no", "label": "No"}],
    }
    assert [c["kind"] for c in body["eligibility"]] == ["inclusion"] * 4 + ["exclusion"] * 3
    assert set(body["eligibility"][0]) == {"code", "text", "kind"}


def test_trial_endpoint_query_count_does_not_grow_with_sites(api: APIClient, walkback: Trial, make_staff) -> None:
    api.force_authenticate(make_staff("investigator"))
    api.get("/api/v1/trial/")  # the user's access is computed once, then cached on the user
    with CaptureQueriesContext(connection) as few:
        api.get("/api/v1/trial/")
    SiteFactory.create_batch(20, trial=walkback)
    with CaptureQueriesContext(connection) as many:
        assert len(api.get("/api/v1/trial/").json()["sites"]) == 25
    assert len(many) == len(few)


def test_me_endpoint_tells_a_blinded_role_it_is_blinded(api: APIClient, make_staff) -> None:
    api.force_authenticate(make_staff("statistician"))
    body = api.get("/api/v1/me/").json()
    assert body["role"] == "statistician"
    assert body["sees_allocation"] is False
    assert "manage_randomisation_list" in body["permissions"]


def test_a_user_without_a_role_is_refused(api: APIClient, walkback: Trial, django_user_model) -> None:
    api.force_authenticate(django_user_model.objects.create_user("norole", password="x" * 12))
    response = api.get("/api/v1/trial/")
    assert response.status_code == 403
    assert response.json()["detail"] == "You need a staff account on this trial."


def test_unknown_api_paths_answer_json_404(client, walkback: Trial) -> None:
    response = client.get("/api/v1/does-not-exist/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "errors": {}}


def test_schema_and_docs_are_served_without_a_cdn(client, walkback: Trial) -> None:
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/trial/" in schema.content
    docs = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/" in docs
    assert "cdn." not in docs and "unpkg" not in docs


def test_an_id_too_large_for_the_database_is_a_404_not_a_500(client, make_staff) -> None:
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    huge = "9" * 25
    assert client.get(f"/api/v1/participants/{huge}/").status_code == 404
    assert client.get(f"/participants/{huge}/").status_code == 404
    assert client.get(f"/history/trial/arm/{huge}/").status_code == 404
    assert client.get("/participants/999999999999999999/").status_code == 404


def test_errors_never_repeat_what_was_sent(api, make_staff) -> None:
    """A wrong choice, an unknown key and a long value: the message says what is wrong, without the input."""
    api.force_authenticate(make_staff("data_manager"))
    sent = "<script>alert(1)</script>" + "x" * 500
    response = api.get("/api/v1/queries/", {"status": sent})
    assert response.status_code == 400
    assert response.json()["errors"] == {"status": ["Not one of the allowed choices."]}
    assert "<script>" not in response.content.decode() and "xxxx" not in response.content.decode()
    api.force_authenticate(make_staff("coordinator", sites=["SYD"]))
    response = api.post("/api/v1/screenings/", {"site": sent, "answers": {}}, format="json")
    assert response.status_code == 400 and "xxxx" not in response.content.decode()


@pytest.mark.parametrize("query", ["page_size=abc", "page_size=0", "page_size=501", "page_size=5&page_size=6", "page=1&page=2"])
def test_a_page_size_or_page_that_is_not_one_whole_number_in_range_is_a_400(api, make_staff, query) -> None:
    api.force_authenticate(make_staff("coordinator", sites=["SYD"]))
    response = api.get(f"/api/v1/participants/?{query}")
    assert response.status_code == 400
    assert set(response.json()["errors"]) <= {"page_size", "page"} and response.json()["errors"]


def test_a_page_size_in_range_sets_the_page(api, make_staff) -> None:
    api.force_authenticate(make_staff("coordinator", sites=["SYD"]))
    assert api.get("/api/v1/participants/?page_size=500").status_code == 200
