"""The API documentation (Swagger UI) works in Chromium under the Content-Security-Policy."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_api_docs_show_every_operation_under_the_csp(page: Any, live_server: Any, make_staff: Any) -> None:
    make_staff("coordinator", sites=["SYD"], username="casey")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "casey")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_selector("[data-testid=whoami]", state="attached")
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "WalkBack trial management API" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-summary-path")
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/participants/" in [p.strip().replace("\\u200b", "") for p in paths]
