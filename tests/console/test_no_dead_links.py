"""A page never offers a link its viewer would be refused: every link on a participant's page
opens for each role that sees the page (no "You cannot open this page" behind a link)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from participants import services
from safety.services import AEInput, adverse_event_record
from trial.models import Trial

HREF = re.compile(r'href="(/[^"#]*)"')
SKIP = ("/static/", "/p/", "/accounts/logout/", "/admin/")


@pytest.mark.parametrize(
    ("role", "sites"),
    [("coordinator", ["SYD"]), ("physiotherapist", ["SYD"]), ("investigator", []), ("data_manager", []), ("statistician", [])],
)
def test_every_link_on_a_participants_page_opens_for_its_viewer(
    walkback: Trial, enrol: Any, coordinator: Any, sealed_list: Any, make_staff: Any, client: Client, role: str, sites: list[str]
) -> None:
    participant = enrol(site="SYD")
    services.participant_randomise(participant_id=participant.pk, by=coordinator)
    adverse_event_record(
        participant=participant,
        data=AEInput(onset_date=timezone.localdate(), description="Sore knee", category="lower_extremity", severity="mild"),
        by=coordinator,
    )
    client.force_login(make_staff(role, sites=sites, username=f"{role}-links"))
    page = client.get(reverse("participant-detail", args=[participant.pk]))
    assert page.status_code == 200
    links = sorted({href.replace("&amp;", "&") for href in HREF.findall(page.content.decode()) if not href.startswith(SKIP)})
    assert links
    refused = {href: status for href in links if (status := client.get(href).status_code) in (403, 404, 405)}
    assert refused == {}, f"{role} is offered links that refuse them: {refused}"
