"""WCAG 2.1 AA on every page we serve, proven by axe-core.

Every page of the URL configuration (never a hand-kept list: a page added tomorrow is crawled
tomorrow) is opened in Chromium as each demo staff role and as a participant through their personal
link, at a desktop size (1366x900) and on a phone (390x844), and axe-core checks it against WCAG 2.0
and 2.1, levels A and AA. The test fails listing every violation: rule, impact, element, address,
role and size. Each address parameter is filled with one real record of the demo data; the Django
admin (its index and a few change lists), the API documentation and the login pages are crawled too.

Kept bounded: one record per address pattern, one browser context per role and size, a page reached
twice (an action's address that answers with a redirect to a page already checked) is checked once.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from closeout.queries.services import query_raise
from followup.instruments import steps
from followup.models import Occurrence
from followup.services import instrument_for
from intervention.models import Session
from participants.links import access_link_issue
from participants.models import Participant, Screening
from safety.models import AdverseEvent
from tests.browser.conftest import demo_login
from trial.models import Trial

pytestmark = [pytest.mark.browser, pytest.mark.accessibility, pytest.mark.django_db(transaction=True)]

TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
STAFF = ("coordinator", "physio", "investigator", "datamanager", "statistician", "admin")

# Addresses that are not pages: leaving, files, machine answers (the API is crawled through its
# documentation page; the browsable API is DRF's own).
SKIP_PREFIXES = ("accounts/logout/", "api/", "admin/")
SKIP_SUFFIXES = (".csv",)
PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def _routes(patterns: list[Any] | None = None, prefix: str = "") -> Iterator[str]:
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        route = str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, prefix + route)
        elif isinstance(entry, URLPattern):
            yield prefix + route


# --- The records that fill the addresses --------------------------------------------------------


@dataclass
class Records:
    """One representative record for each kind of address parameter (all at Sydney, where every
    site-bound demo role works)."""

    walker: Participant  # in the walking arm, with sessions, walks and an open questionnaire
    waiting: Participant  # consented, not yet randomised (its randomise page is a form)
    token: str  # the walker's personal link
    values: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def records(db: Any) -> Records:
    call_command("demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    trial = Trial.objects.get()
    sydney = Participant.objects.filter(site__code="SYD")
    walker = sydney.filter(sessions__status="attended").distinct().order_by("pk").first()
    waiting = sydney.filter(randomised_at__isnull=True).order_by("pk").first()
    assert walker is not None and waiting is not None
    # The walker's next monthly questionnaire is open now (whatever day the demo was loaded).
    monthly = Occurrence.objects.filter(participant=walker, instrument="monthly", completed_at__isnull=True).order_by("month")
    opened = monthly.first()
    assert opened is not None
    Occurrence.objects.filter(pk=opened.pk).update(
        opens_at=timezone.now() - dt.timedelta(days=1), closes_at=timezone.now() + dt.timedelta(days=13), status="open"
    )
    manager = get_user_model().objects.get(username="datamanager")
    query = query_raise(trial=trial, record=walker, field="", text="Please confirm the date of consent", by=manager)
    assert query is not None
    done = Occurrence.objects.filter(participant=walker, completed_at__isnull=False).order_by("pk").first()
    bookable = Session.objects.filter(participant=walker, starts_at__isnull=True).order_by("number").first()
    booked = Session.objects.filter(participant=walker, status="booked").order_by("number").first()
    event = AdverseEvent.objects.filter(participant__site__code="SYD", status="open").order_by("pk").first()
    event = event or AdverseEvent.objects.filter(participant__site__code="SYD").order_by("pk").first()
    screening = Screening.objects.filter(site__code="SYD", participant__isnull=True).order_by("pk").first()
    screening = screening or Screening.objects.filter(site__code="SYD").order_by("pk").first()
    physio = get_user_model().objects.get(username="physio")
    assert done and bookable and booked and event and screening
    values = {
        "participants": str(walker.pk),
        "screening": str(screening.pk),
        "events": str(event.pk),
        "queries": str(query.pk),
        "sessions": str(booked.pk),
        "physiotherapists": str(physio.pk),
        "occurrence_pk": str(opened.pk),
        "code": walker.outcomes.order_by("pk").values_list("code", flat=True).first() or "recurrence",
        "channel": "email",
        "app_label": "participants",
        "model_name": "participant",
        # the participant's own pages
        "q": str(opened.pk),
        "q-thanks": str(done.pk),
        "sessions-book": str(bookable.pk),
        "number": "1",  # the questionnaire's first step; participant_addresses adds the others
    }
    return Records(walker=walker, waiting=waiting, token=access_link_issue(participant=walker), values=values)


def _fill(route: str, records: Records) -> str:
    """The route with each parameter filled by its representative record."""
    values = records.values

    def value(match: re.Match[str]) -> str:
        name = match.group(2)
        before = route[: match.start()].rstrip("/").split("/")
        if name == "token":
            return records.token
        if name == "pk" and route.startswith("p/"):
            kind = "-".join(part for part in route[match.end() :].strip("/").split("/") if part)
            segment = before[-1]
            key = {"q": "q", "sessions": "sessions-book"}[segment]
            return values["q-thanks"] if kind == "thanks" else values[key]
        if name == "pk" and route.startswith("history/"):
            return str(records.walker.pk)
        if name == "pk":
            segment = before[-1]
            if route.endswith("randomise/"):
                return str(records.waiting.pk)
            if segment in ("leave", "extra", "releases"):
                return "0"  # removing leave, retrying a release: POSTs, the page is its 405
            assert segment in values, f"{route}: what does the id after '{segment}/' name? Teach the accessibility crawl."
            return values[segment]
        assert name in values, f"{route}: no way to fill <{name}>; teach the accessibility crawl"
        return values[name]

    return "/" + PARAM.sub(value, route)


def staff_addresses(records: Records) -> list[str]:
    urls = []
    for route in _routes():
        if route.startswith((*SKIP_PREFIXES, "p/", "health/")) or route.endswith(SKIP_SUFFIXES):
            continue
        urls.append(_fill(route, records))
    return [*dict.fromkeys(urls), "/api/docs/"]


def participant_addresses(records: Records) -> list[str]:
    urls = [_fill(route, records) for route in _routes() if route.startswith("p/")]
    # Every step of the open questionnaire (a step skipped by its answers redirects to the next).
    first = next(url for url in urls if url.endswith("/step/1/"))
    version = instrument_for(occurrence=Occurrence.objects.get(pk=records.values["q"]))
    urls += [first.replace("/step/1/", f"/step/{step.number}/") for step in steps(definition=version.definition)[1:]]
    # A link that no longer works (re-issued, revoked or mistyped) opens a participant page too.
    return [*urls, "/p/not-a-valid-link/"]


def anonymous_addresses() -> list[str]:
    return ["/accounts/login/", "/", "/health/"]


def admin_addresses() -> list[str]:
    """The admin index and the change lists of a few registered models (and one change form)."""
    models = sorted(admin.site._registry, key=lambda m: m._meta.label)[:4]
    urls = ["/admin/"] + [f"/admin/{m._meta.app_label}/{m._meta.model_name}/" for m in models]
    trial = Trial.objects.get()
    return [*urls, f"/admin/trial/trial/{trial.pk}/change/"]


# --- Crawling ------------------------------------------------------------------------------------


@dataclass
class Crawl:
    visits: int = 0
    skipped: int = 0
    violations: list[str] = field(default_factory=list)
    by_rule: Counter[str] = field(default_factory=Counter)
    elements: int = 0


def _axe_script() -> str:
    return (resources.files("axe_playwright_python") / "axe.min.js").read_text()


def _check(page: Any, url: str, base: str, who: str, size: str, crawl: Crawl, seen: set[str]) -> None:
    # Ask first, without the page: an action's address answers a GET with an empty 405, which
    # Chromium shows as its own error page, a navigation that can still be under way when the next
    # one starts (and then interrupts it). Only an HTML page not checked yet is opened in the page.
    answer = page.context.request.get(base + url, max_redirects=5)
    status = answer.status
    final = answer.url.removeprefix(base)
    if status == 405 or "text/html" not in (answer.headers.get("content-type") or ""):
        crawl.skipped += 1
        return
    # A page reached again (an action that redirects to a page already checked), and refusals after
    # the first ("You cannot open this page" is one template, whichever address refused): checked once.
    key = f"status {status}" if status in (403, 404, 410) else final
    if key in seen:
        return
    seen.add(key)
    response = page.goto(base + final)
    assert response is not None and response.status == status, f"{final} answered {status}, then {response}"
    page.wait_for_load_state("load")
    result = page.evaluate(
        "(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})", TAGS
    )
    if who == "participant":  # axe checks WCAG 2.1 AA; the participant pages promise 44 px targets (2.5.5)
        result["violations"] += _small_targets(page)
    crawl.visits += 1
    for violation in result["violations"]:
        crawl.by_rule[f"{violation['id']} ({violation['impact']})"] += 1
        crawl.elements += len(violation["nodes"])
        for node in violation["nodes"]:
            target = " ".join(str(t) for t in node["target"])
            crawl.violations.append(
                f"{violation['id']} [{violation['impact']}] {target} at {final} as {who} ({size}): {violation['help']}"
            )


SMALL_TARGETS = """() => Array.from(document.querySelectorAll(
    ".btn, button, select, textarea, input:not([type=hidden]):not([type=radio]):not([type=checkbox])"
  )).filter((el) => {
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && (box.height < 43.5 || box.width < 43.5);
  }).map((el) => ({target: [el.id ? "#" + el.id : el.tagName.toLowerCase() + "." + [...el.classList].join(".")],
                   size: Math.round(el.getBoundingClientRect().width) + "x" + Math.round(el.getBoundingClientRect().height)}))"""


def _small_targets(page: Any) -> list[dict[str, Any]]:
    """Buttons and fields smaller than 44 by 44 CSS pixels (WCAG 2.5.5, AAA: promised on participant pages)."""
    small = page.evaluate(SMALL_TARGETS)
    if not small:
        return []
    nodes = [{"target": [f"{node['target'][0]} ({node['size']})"]} for node in small]
    return [{"id": "target-size-44px", "impact": "serious", "help": "Targets must be at least 44 by 44 px", "nodes": nodes}]


def _context(browser: Any, size: str) -> Any:
    phone = size == "phone"
    context = browser.new_context(viewport=SIZES[size], is_mobile=phone, has_touch=phone)
    context.add_init_script(_axe_script())
    return context


def test_every_page_meets_wcag_21_aa_for_every_role_at_both_sizes(
    browser: Any, live_server: Any, records: Records, record_property: Any
) -> None:
    base = live_server.url
    crawl = Crawl()
    staff_urls = staff_addresses(records)
    for size in SIZES:
        visitors: list[tuple[str, list[str]]] = [
            ("anonymous", anonymous_addresses()),
            ("participant", participant_addresses(records)),
            *((role, staff_urls + (admin_addresses() if role == "admin" else [])) for role in STAFF),
        ]
        for who, urls in visitors:
            context = _context(browser, size)
            page = context.new_page()
            page.set_default_timeout(60_000)  # a loaded CI machine; a page normally answers in 0.2 s
            if who in STAFF:
                demo_login(page, base, who)
                page.wait_for_selector("[data-testid=whoami]", state="attached")
            seen: set[str] = set()
            for url in urls:
                _check(page, url, base, who, size, crawl, seen)
            page.goto("about:blank")  # nothing under way when the context closes
            context.close()
    # The figures, shown at the end of the run (also under xdist: tests/conftest.py sums them).
    record_property("axe_page_visits", crawl.visits)
    record_property("axe_violations", sum(crawl.by_rule.values()))
    record_property("axe_failing_elements", crawl.elements)
    summary = ", ".join(f"{rule}: {count}" for rule, count in crawl.by_rule.most_common())
    figures = (
        f"axe-core: {crawl.visits} page visits ({crawl.skipped} addresses not pages), "
        f"{sum(crawl.by_rule.values())} violations (rule on a page) on {crawl.elements} elements. {summary}"
    )
    print(f"\n{figures}")
    assert crawl.violations == [], "\n".join([figures, *crawl.violations])
