"""Blinding leak scan: every page and API response a blinded role can reach, searched for the arms.

The arms get distinctive codes and names for this test, so any appearance is a leak. Pages are
found by crawling every internal link from the dashboard, so new pages are scanned without
being listed here.
"""

from __future__ import annotations

import re
from collections import deque

import pytest
from django.test import Client

from participants import services
from participants.models import Participant
from trial.models import Arm, Trial

ARMS = {"walking": ("zebraarm", "Zebra Stripes Programme"), "control": ("okapiarm", "Okapi Comparison Group")}
SKIP = ("/accounts/logout/", "/admin/", "/api/docs/", "/api/schema/", "/static/")
# Trial configuration lists the arms by design (what the trial compares is no secret).
CONFIG_PAGES = ("/", "/api/v1/trial/")


@pytest.fixture
def blinded_world(walkback: Trial, enrol, coordinator, make_staff, password):  # type: ignore[no-untyped-def]
    for code, (new_code, name) in ARMS.items():
        Arm.objects.filter(trial=walkback, code=code).update(code=new_code, name=name)
    from trial import services as trial_services

    trial_services.randomisation_list_generate(trial=walkback, seed="leak-scan-seed-0123456789", per_stratum=8, by="stat")
    people = [enrol(site=site, prior=prior) for site in ("SYD", "BNE") for prior in ("yes", "no")]
    for person in people[:3]:
        services.participant_randomise(participant_id=person.pk, by=coordinator)
    services.participant_withdraw(participant=people[0], scope="followup", reason="Moved overseas", by=coordinator)
    # Another investigator's emergency unblinding must not unblind anyone else.
    other = make_staff("investigator", username="other-investigator")
    services.participant_unblind(participant=people[1], user=other, reason="SAE", password=password)
    return people


def _crawl(client: Client, start: list[str], limit: int = 400) -> dict[str, str]:
    seen: dict[str, str] = {}
    todo = deque(start)
    while todo and len(seen) < limit:
        url = todo.popleft()
        if url in seen or url.startswith(SKIP):
            continue
        response = client.get(url)
        assert response.status_code < 500, f"{url} answered {response.status_code}"
        body = response.content.decode()
        seen[url] = body
        if "html" in response.get("Content-Type", ""):
            for link in re.findall(r'href="(/[^"#]*)"', body):
                todo.append(link.replace("&amp;", "&"))
    return seen


@pytest.mark.parametrize("role", ["investigator", "data_manager", "statistician"])
def test_no_page_or_api_response_reveals_an_arm_to_a_blinded_role(client: Client, blinded_world, make_staff, role: str) -> None:
    client.force_login(make_staff(role))
    people: list[Participant] = blinded_world
    start = ["/", "/participants/", "/screening/", "/api/v1/participants/", "/api/v1/me/", "/audit/"]
    for p in people:
        start += [
            f"/participants/{p.pk}/",
            f"/api/v1/participants/{p.pk}/",
            f"/history/participants/participant/{p.pk}/",
            f"/participants/{p.pk}/randomise/",
        ]
        if getattr(p, "allocation", None):
            start.append(f"/history/trial/allocation/{p.allocation.pk}/")
    responses = _crawl(client, start)
    # Refused actions and their error messages are scanned too.
    for p in people:
        for path in (f"/api/v1/participants/{p.pk}/randomise/", f"/api/v1/participants/{p.pk}/unblind/"):
            response = client.post(path, {"reason": "x", "password": "wrong"}, content_type="application/json")
            responses[f"POST {path}"] = response.content.decode()

    assert len(responses) >= 20, "the crawl reached too few pages to mean anything"
    leaks = []
    for url, body in responses.items():
        for code, name in ARMS.values():
            if code in body:
                leaks.append(f"{url}: arm code {code}")
            if name in body and url not in CONFIG_PAGES:
                leaks.append(f"{url}: arm name {name}")
        if re.search(r'"arm"\s*:', body):
            leaks.append(f"{url}: an 'arm' key")
    assert leaks == []


def test_the_scan_would_catch_a_leak(client: Client, blinded_world, make_staff) -> None:
    # The same crawl as a coordinator (who may see arms) finds them: the scan is not blind itself.
    client.force_login(make_staff("coordinator", sites=["SYD", "BNE"], username="coord-syd-bne"))
    responses = _crawl(client, ["/participants/", "/api/v1/participants/"] + [f"/participants/{p.pk}/" for p in blinded_world])
    assert any(code in body for body in responses.values() for code, _ in ARMS.values())
