"""Security headers on pages and API responses, and /health/ in a browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from trial.models import Trial

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def csp(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in policy.split(";")) if part}


@pytest.mark.parametrize("path", ["/accounts/login/", "/", "/api/v1/me/", "/api/docs/"])
def test_every_response_has_a_strict_content_security_policy(client, make_staff, path) -> None:
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    directives = csp(client.get(path))
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval'
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"]


def test_no_template_has_inline_script_style_or_event_handlers() -> None:
    """The policy refuses them; behaviour lives in static/js/pages.js, widths in classes or data-width."""
    found = []
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag and 'type="application/json"' not in tag:
                found.append(f"{template.name}: {tag}")
        found += [f"{template.name}: {m}" for m in re.findall(r"<style\b|\sstyle=\"|\son[a-z]+=\"", text)]
    assert found == []


def test_every_response_refuses_camera_microphone_and_location(client, walkback: Trial) -> None:
    policy = client.get(reverse("login"))["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in policy


def test_pages_of_a_signed_in_user_and_every_api_response_are_never_stored(client, api, make_staff) -> None:
    user = make_staff("coordinator", sites=["SYD"])
    client.force_login(user)
    for response in (client.get(reverse("dashboard")), client.get(reverse("participant-list")), client.get("/api/v1/me/")):
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"]
    api.force_authenticate(user)
    assert "no-store" in api.get("/api/v1/participants/")["Cache-Control"]
    assert "no-store" in api.get("/api/v1/nothing-here/")["Cache-Control"]  # errors too
    assert "no-store" in client.get("/static/css/app.css", follow=False).get("Cache-Control", "no-store")


def test_the_api_docs_page_loads_its_start_up_script_as_a_file(client, make_staff) -> None:
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    page = client.get("/api/docs/")
    html = page.content.decode()
    assert page.status_code == 200 and "<style>" not in html
    assert re.findall(r"<script>", html) == []
    script = re.search(r'<script src="([^"]*script=[^"]*)"', html)
    assert script is not None
    js = client.get(script.group(1).replace("&amp;", "&"))
    assert js.status_code == 200 and js["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in js.content.decode()


def test_health_answers_a_browser_with_a_page_and_a_monitor_with_json(client, db) -> None:
    page = client.get("/health/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert page.status_code == 200
    assert "System status: working" in page.content.decode()
    checks = client.get("/health/", HTTP_ACCEPT="application/json").json()
    assert len(checks) == 2 and set(checks.values()) == {"OK"}
