"""Finding participants: search by study id (every role), by name, e-mail or phone (roles that
see contact details, and for the others a name finds what an unknown name finds), and sortable
columns on the page, in the API and in the CSV download."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote_plus

import pytest
from django.urls import reverse

from participants import services
from participants.models import Participant
from tests.factories import ELIGIBLE, ParticipantFactory
from trial.models import Trial

LIST = reverse("participant-list")
API = "/api/v1/participants/"
BLINDED = ["investigator", "data_manager", "statistician"]


def _person(trial: Trial, by: Any, *, name: str, email: str = "", mobile: str = "", site: str = "SYD") -> Participant:
    screening = services.screening_record(site=trial.sites.get(code=site), answers=ELIGIBLE, by=by, referral="community")
    return services.participant_enrol(
        screening=screening,
        consent=services.ConsentInput(method="in_person", signed_name=name),
        strata={"prior_episodes_gt2": "no"},
        contact=services.ContactInput(email=email, mobile=mobile),
        by=by,
    )


@pytest.fixture
def people(walkback: Trial, make_staff: Any) -> dict[str, Participant]:
    coordinator = make_staff("coordinator", sites=["SYD", "BNE"], username="enroller")
    return {
        "alex": _person(walkback, coordinator, name="Alex Morgan", email="alex.morgan@example.org", mobile="+61 400 111 222"),
        "sam": _person(walkback, coordinator, name="Sam Lee", email="sam@example.net", mobile="0400 999 888"),
        "kim": _person(walkback, coordinator, name="Kim Morgan", email="kim@example.org", site="BNE"),
    }


def _without_token(response: Any) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


def _echo_masked(response: Any, term: str) -> str:
    """The page with the search term it echoes (in the box and in links) masked."""
    return _without_token(response).replace(quote_plus(term), "TERM").replace(term, "TERM")


def _ids(client: Any, **params: str) -> list[str]:
    return [p.study_id for p in client.get(LIST, params).context["page"]]


# --- Search ---------------------------------------------------------------------------------


def test_a_coordinator_finds_by_study_id_name_email_and_phone_at_their_sites_only(
    client: Any, walkback: Trial, make_staff: Any, people: dict[str, Participant]
) -> None:
    alex, sam, kim = people["alex"].study_id, people["sam"].study_id, people["kim"].study_id
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    assert _ids(client, search=alex) == [alex]  # exact
    assert _ids(client, search=alex[:-1].lower()) == sorted([alex, sam])  # a prefix, any case
    assert _ids(client, search="morgan") == [alex]  # Kim Morgan is at Brisbane
    assert _ids(client, search="morgan ALEX") == [alex]  # every word, any order
    assert _ids(client, search="sam@example.NET") == [sam]
    assert _ids(client, search="0400 111 222") == [alex]  # stored as +61 400 111 222
    assert _ids(client, search="(04) 0099-9888") == [sam]
    assert _ids(client, search="Nobody Known") == []
    assert _ids(client, search=kim) == []  # not a site they work at


@pytest.mark.parametrize("role", BLINDED)
def test_a_role_without_contact_details_finds_by_study_id_and_a_name_answers_like_an_unknown_one(
    client: Any, api: Any, walkback: Trial, make_staff: Any, people: dict[str, Participant], role: str
) -> None:
    user = make_staff(role)
    client.force_login(user)
    api.force_authenticate(user)
    assert _ids(client, search=people["kim"].study_id) == [people["kim"].study_id]
    unknown_page = client.get(LIST, {"search": "Zed Nobody"})
    unknown_api = api.get(API, {"search": "Zed Nobody"})
    assert unknown_page.status_code == unknown_api.status_code == 200
    for known in ("Alex Morgan", "morgan", "alex.morgan@example.org", "example.org", "0400 111 222"):
        page = client.get(LIST, {"search": known})
        assert page.status_code == 200 and list(page.context["page"]) == []
        assert _echo_masked(page, known) == _echo_masked(unknown_page, "Zed Nobody")
        answer = api.get(API, {"search": known})
        assert answer.status_code == 200 and answer.json() == unknown_api.json()
    assert "name, e-mail address or phone number" not in unknown_page.content.decode()


def test_the_api_searches_as_the_page_does_and_keeps_its_other_parameters(
    api: Any, walkback: Trial, make_staff: Any, people: dict[str, Participant]
) -> None:
    api.force_authenticate(make_staff("coordinator", sites=["SYD", "BNE"]))
    found = api.get(API, {"search": "morgan"}).json()["results"]
    assert [p["study_id"] for p in found] == sorted([people["alex"].study_id, people["kim"].study_id])
    at_bne = api.get(API, {"search": "morgan", "site": "BNE", "status": "enrolled"}).json()["results"]
    assert [p["study_id"] for p in at_bne] == [people["kim"].study_id]
    assert api.get(API, {"q": "SYD-0002"}).json()["results"][0]["study_id"] == people["sam"].study_id
    too_long = api.get(API, {"search": "x" * 101})
    assert too_long.status_code == 400 and "search" in too_long.json()["errors"]


def test_the_csv_download_follows_the_search(
    client: Any, walkback: Trial, make_staff: Any, people: dict[str, Participant]
) -> None:
    client.force_login(make_staff("coordinator", sites=["SYD", "BNE"]))
    response = client.get(LIST, {"search": "morgan", "sort": "-site"})
    assert 'href="/participants/?search=morgan&amp;sort=-site&amp;format=csv"' in response.content.decode()
    csv = b"".join(client.get(LIST, {"search": "morgan", "sort": "-site", "format": "csv"}).streaming_content).decode()
    lines = csv.splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == [people["alex"].study_id, people["kim"].study_id]  # SYD, BNE


# --- Sorting --------------------------------------------------------------------------------


def test_the_list_sorts_by_an_offered_column_with_aria_sort_and_keeps_filters_in_the_links(
    client: Any, walkback: Trial, make_staff: Any
) -> None:
    syd, bne = walkback.sites.get(code="SYD"), walkback.sites.get(code="BNE")
    ParticipantFactory(site=syd, study_id="WB-SYD-0001")
    ParticipantFactory(site=bne, study_id="WB-BNE-0001", randomised_to=walkback.arms.first())
    ParticipantFactory(site=syd, study_id="WB-SYD-0002", randomised_to=walkback.arms.first())
    client.force_login(make_staff("investigator"))
    assert _ids(client) == ["WB-BNE-0001", "WB-SYD-0001", "WB-SYD-0002"]
    assert _ids(client, sort="-study_id") == ["WB-SYD-0002", "WB-SYD-0001", "WB-BNE-0001"]
    assert _ids(client, sort="randomised")[-1] == "WB-SYD-0001"  # not randomised: last either way
    assert _ids(client, sort="-randomised")[-1] == "WB-SYD-0001"
    html = client.get(LIST, {"status": "randomised", "sort": "site"}).content.decode()
    head = html.split("<thead>")[1].split("</thead>")[0]
    assert head.count("aria-sort") == 1 and 'aria-sort="ascending"' in head.split('data-testid="sort-site"')[0]
    assert 'href="/participants/?status=randomised&amp;sort=-site"' in head  # a second click reverses
    assert 'href="/participants/?status=randomised&amp;sort=study_id"' in head


def test_pages_keep_the_search_and_the_sort(client: Any, walkback: Trial, make_staff: Any) -> None:
    ParticipantFactory.create_batch(51, site=walkback.sites.get(code="SYD"))
    client.force_login(make_staff("data_manager"))
    html = client.get(LIST, {"search": "WB-X", "sort": "-study_id"}).content.decode()
    assert "?search=WB-X&amp;sort=-study_id&amp;page=2" in html


@pytest.mark.parametrize("role", BLINDED)
def test_a_blinded_role_cannot_sort_by_arm_and_gets_the_usual_order_with_a_message(
    client: Any, api: Any, walkback: Trial, make_staff: Any, role: str
) -> None:
    walking, control = walkback.arms.get(code="walking"), walkback.arms.exclude(code="walking").get()
    ParticipantFactory(site=walkback.sites.get(code="SYD"), study_id="WB-SYD-0001", randomised_to=walking)
    ParticipantFactory(site=walkback.sites.get(code="SYD"), study_id="WB-SYD-0002", randomised_to=control)
    user = make_staff(role)
    client.force_login(user)
    usual = client.get(LIST)
    for asked in ("arm", "-arm", "allocation__arm__name", "-", "pk;drop"):
        response = client.get(LIST, {"sort": asked})
        assert response.status_code == 200
        assert list(response.context["page"]) == list(usual.context["page"])
        assert 'data-testid="sort-refused"' in response.content.decode()
    assert 'data-testid="sort-arm"' not in usual.content.decode()
    api.force_authenticate(user)
    refused = api.get(API, {"sort": "arm"})
    assert refused.status_code == 400 and "arm" not in str(refused.json()["errors"]["sort"])


def test_a_coordinator_who_sees_arms_may_sort_by_arm(client: Any, api: Any, walkback: Trial, make_staff: Any) -> None:
    walking, control = walkback.arms.get(code="walking"), walkback.arms.exclude(code="walking").get()
    syd = walkback.sites.get(code="SYD")
    ParticipantFactory(site=syd, study_id="WB-SYD-0001", randomised_to=control)
    ParticipantFactory(site=syd, study_id="WB-SYD-0002", randomised_to=walking)
    user = make_staff("coordinator", sites=["SYD"])
    client.force_login(user)
    by_arm = _ids(client, sort="arm")
    assert by_arm == (["WB-SYD-0002", "WB-SYD-0001"] if walking.order < control.order else ["WB-SYD-0001", "WB-SYD-0002"])
    api.force_authenticate(user)
    assert [p["study_id"] for p in api.get(API, {"sort": "-arm"}).json()["results"]] == by_arm[::-1]
