"""On a 390 px phone, staff tables stack into cards (``table-stack``) and each row's action buttons
are in view, with nothing to scroll sideways for."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.urls import reverse

from participants.models import Participant
from tests.browser import test_intervention
from tests.browser.conftest import demo_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTH = 390
walker = test_intervention.walker  # the fixture: a walking-arm participant with sessions to book


def _in_view(phone: Any, selector: str) -> dict[str, float]:
    button = phone.locator(selector).first
    button.wait_for(state="visible")
    box = button.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTH, f"{selector} at {box} is off the {WIDTH} px screen"
    return box


def test_worklist_and_participant_tables_keep_their_actions_on_a_phone(
    phone: Any, live_server: Any, walker: Participant, tmp_path: Any
) -> None:
    base = live_server.url
    shots = os.environ.get("TABLE_SHOTS_DIR") or str(tmp_path)
    demo_login(phone, base, "coordinator")
    phone.wait_for_selector("[data-testid=whoami]", state="attached")
    pages = [
        ("worklist", reverse("followup-worklist"), "table.table-stack tbody tr [data-testid^=call-]"),  # Record call
        ("participant", reverse("participant-detail", args=[walker.pk]), "[data-testid=book-1]"),  # Book
    ]
    for name, path, action in pages:
        phone.goto(f"{base}{path}")
        _in_view(phone, action)
        assert phone.evaluate("document.documentElement.scrollWidth") <= WIDTH, f"{name} scrolls sideways"
        label = phone.evaluate(
            "e => getComputedStyle(e, '::before').content",
            phone.locator("table.table-stack td[data-label]").first.element_handle(),
        )
        assert label not in ("", "none", "normal")  # each cell says which column it is
        phone.screenshot(path=os.path.join(shots, f"{name}-{WIDTH}.png"), full_page=True)
