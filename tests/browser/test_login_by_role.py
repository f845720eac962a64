"""Log in as each demo role in Chromium and see the dashboard that role should see."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command

from tests.browser.conftest import demo_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(db: Any) -> None:
    # Demo data: 7 participants (4 at SYD, 3 at NCL), some randomised to each arm.
    call_command("demo", stdout=open("/dev/null", "w"))  # noqa: SIM115


def _login(page: Any, base: str, username: str) -> None:
    demo_login(page, base, username)
    page.wait_for_selector("[data-testid=whoami]", state="attached")


@pytest.mark.parametrize(
    ("username", "role_label", "participants", "blinded", "nav"),
    [
        (
            "coordinator",
            "Coordinator",
            "7",
            False,
            ["Dashboard", "Screening", "Participants", "Worklist", "Agenda", "Safety", "Queries", "API"],
        ),
        ("physio", "Physiotherapist", "4", False, ["Dashboard", "Screening", "Participants", "Agenda", "Safety", "API"]),
        (
            "investigator",
            "Investigator",
            "7",
            True,
            ["Dashboard", "Screening", "Participants", "Safety", "Lock", "Releases", "Audit trail", "API"],
        ),
        (
            "datamanager",
            "Data manager",
            "7",
            True,
            ["Dashboard", "Screening", "Participants", "Safety", "Queries", "Lock", "Audit trail", "API"],
        ),
        ("statistician", "Statistician", "7", True, ["Dashboard", "Screening", "Participants", "Releases", "API"]),
        ("admin", "Administrator", "7", True, ["Dashboard", "Audit trail", "Configuration", "API"]),
    ],
)
def test_each_role_logs_in_and_sees_its_dashboard(
    page: Any, live_server: Any, demo: None, username: str, role_label: str, participants: str, blinded: bool, nav: list[str]
) -> None:
    _login(page, live_server.url, username)
    assert page.inner_text("[data-testid=whoami]") == f"{username} · {role_label}"
    assert page.inner_text("[data-testid=count-participants]") == participants
    assert page.is_visible("[data-testid=blinded-badge]") is blinded
    links = page.locator("#mainnav .nav-link").all_inner_texts()
    assert links == nav
    sites_table = page.inner_text("[data-testid=sites-table]")
    assert ("Walking and education programme" in sites_table) is (not blinded)
    # the page is styled by our own Bootstrap, loaded from our static files
    assert page.evaluate("getComputedStyle(document.querySelector('.navbar')).display") == "flex"


def test_a_coordinator_on_a_phone_reads_the_dashboard_and_logs_out(phone: Any, live_server: Any, demo: None) -> None:
    _login(phone, live_server.url, "coordinator")
    assert phone.is_visible("[data-testid=sites-table]")
    phone.click(".navbar-toggler")
    phone.wait_for_selector("#mainnav.show")  # the menu has finished opening
    with phone.expect_navigation():
        phone.click("#mainnav button:has-text('Log out')")
    phone.wait_for_selector("input[name=username]")
    assert "/accounts/login/" in phone.url
