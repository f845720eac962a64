"""Every role, and anonymous, against every page and API endpoint of the URL configuration:
allowed or refused as the README's role table says.

The expected matrix is data: each URL name (and method, where they differ) names the permission of
``trial.access.Perm`` it needs, and the roles holding it come from ``ROLE_PERMISSIONS``, the same
table the code enforces and the README prints. The URLs come from the resolver, so a new URL
without an entry here fails the test. Refused is 401, 403, 404 or a redirect to a login page; allowed is
any other answer below 500 (a form's 400, a 405 for GET on a POST-only page, a 409 ...), never 500.
Every request is rolled back, so each one meets the same world.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.factories import PASSWORD
from tests.security.conftest import ROLES, World
from trial.access import DEFAULT_ROLE_SETTINGS, ROLE_PERMISSIONS, Perm

P = Perm


@dataclasses.dataclass(frozen=True)
class Rule:
    """Who may: anyone (``public``), a participant's link holder (``token``: anyone with it), any
    signed-in staff member (``staff``), or the roles holding one of ``perms``."""

    perms: tuple[Perm, ...] = ()
    public: bool = False
    token: bool = False
    staff: bool = False
    absent: bool = False  # the path names a record the world has none of: allowed roles get 404, not 403
    unblinded: bool = False  # it exists only for one arm: roles that see arms (before lock), or it is a 404
    site_staff: bool = False  # only staff of the record's own site (roles bound to sites)

    def allows(self, role: str | None) -> bool:
        if self.public or self.token:
            return True
        if role is None:
            return False
        settings = DEFAULT_ROLE_SETTINGS[role]
        if self.unblinded and not settings["sees_allocation"]:
            return False
        if self.site_staff and settings["trial_wide"]:
            return False
        return self.staff or any(p in ROLE_PERMISSIONS[role] for p in self.perms)


def need(*perms: Perm, **flags: bool) -> Rule:
    return Rule(perms=perms, **flags)


PUBLIC, TOKEN, STAFF = Rule(public=True), Rule(token=True), Rule(staff=True)

# One entry per URL name; a dict where methods need different permissions.
MATRIX: dict[str, Rule | dict[str, Rule]] = {
    # Accounts, documentation, health
    "login": PUBLIC,
    "logout": PUBLIC,
    "password_change": STAFF,
    "password_change_done": STAFF,
    "two_factor": STAFF,
    "api-schema": PUBLIC,
    "api-docs": PUBLIC,
    "health": PUBLIC,
    "api-token": PUBLIC,
    "api-trial": STAFF,
    "api-me": STAFF,
    # Dashboard, participants, history, audit
    "dashboard": need(P.VIEW_DASHBOARD),
    "report-consort": need(P.VIEW_DASHBOARD),
    "report-consort-csv": need(P.VIEW_DASHBOARD),
    "api-report-consort": need(P.VIEW_DASHBOARD),
    "report-status-grid": need(P.VIEW_DASHBOARD),
    "report-dmc": need(P.VIEW_DASHBOARD),
    "report-status-grid-csv": need(P.VIEW_DASHBOARD),
    "participant-list": need(P.VIEW_PARTICIPANTS),
    "participant-detail": need(P.VIEW_PARTICIPANTS),
    "record-history": need(P.VIEW_PARTICIPANTS),  # a participant's; what a role can see it may read the history of
    "audit-log": need(P.VIEW_AUDIT),
    "screening-log": need(P.VIEW_PARTICIPANTS),
    "screening-detail": need(P.VIEW_PARTICIPANTS),
    "screening-new": need(P.SCREEN_ENROL),
    "screening-decline": need(P.SCREEN_ENROL),
    "screening-enrol": need(P.SCREEN_ENROL),
    "participant-reconsent": need(P.SCREEN_ENROL),
    "participant-randomise": need(P.RANDOMISE),
    "participant-withdraw": need(P.WITHDRAW),
    "participant-unblind": need(P.EMERGENCY_UNBLIND),
    "api-screenings": need(P.SCREEN_ENROL),
    "api-screening-enrol": need(P.SCREEN_ENROL),
    "api-participants": need(P.VIEW_PARTICIPANTS),
    "api-participant": need(P.VIEW_PARTICIPANTS),
    "api-participant-randomise": need(P.RANDOMISE),
    "api-participant-withdraw": need(P.WITHDRAW),
    "api-participant-unblind": need(P.EMERGENCY_UNBLIND),
    # Follow-up
    "followup-worklist": need(P.ENTER_FOLLOWUP),
    "participant-issue-link": need(P.ENTER_FOLLOWUP),
    "followup-call-record": need(P.ENTER_FOLLOWUP),
    "followup-staff-entry": need(P.ENTER_FOLLOWUP),
    "participant-outcomes": need(P.VIEW_PARTICIPANTS),
    "participant-outcome-adjudicate": need(P.MANAGE_QUERIES),
    "api-participant-schedule": need(P.VIEW_PARTICIPANTS),
    "api-participant-access-link": need(P.ENTER_FOLLOWUP),
    "api-participant-responses": need(P.VIEW_PARTICIPANTS),
    "api-messages": need(P.VIEW_PARTICIPANTS),
    "api-participant-outcomes": need(P.VIEW_PARTICIPANTS),
    "api-participant-outcome-adjudicate": need(P.MANAGE_QUERIES),
    # The participant's own pages: whoever holds the link
    "participant-home": TOKEN,
    "questionnaire": TOKEN,
    "questionnaire-step": TOKEN,
    "questionnaire-review": TOKEN,
    "questionnaire-thanks": TOKEN,
    "opt-out": TOKEN,
    "link-request": PUBLIC,  # "send me my link": answered alike for anyone
    "participant-sessions": TOKEN,
    "participant-session-book": TOKEN,
    "participant-diary": TOKEN,
    # Intervention
    "intervention-agenda": need(P.BOOK_SESSIONS, P.DELIVER_SESSIONS),
    "intervention-availability": need(P.DELIVER_SESSIONS),
    "intervention-leave-remove": need(P.DELIVER_SESSIONS),
    "intervention-extra-remove": need(P.DELIVER_SESSIONS),
    "intervention-book": need(P.BOOK_SESSIONS),
    "intervention-cancel": need(P.BOOK_SESSIONS),
    "intervention-record": need(P.DELIVER_SESSIONS),
    "api-sessions": need(P.VIEW_PARTICIPANTS),
    "api-session-book": need(P.BOOK_SESSIONS),
    "api-session-cancel": need(P.BOOK_SESSIONS),
    "api-session-record": need(P.DELIVER_SESSIONS),
    "api-physiotherapist-slots": need(P.BOOK_SESSIONS),
    "api-participant-diary": {"GET": need(P.VIEW_PARTICIPANTS, unblinded=True), "POST": need(P.DELIVER_SESSIONS)},
    # Safety
    "safety-overview": need(P.REPORT_ADVERSE_EVENTS),
    "adverse-event-list": need(P.REPORT_ADVERSE_EVENTS),
    "adverse-event-detail": need(P.REPORT_ADVERSE_EVENTS),
    "adverse-event-edit": need(P.REPORT_ADVERSE_EVENTS),
    "adverse-event-followup": need(P.REPORT_ADVERSE_EVENTS),
    "adverse-event-dismiss": need(P.REPORT_ADVERSE_EVENTS),
    "adverse-event-new": need(P.REPORT_ADVERSE_EVENTS),
    "api-adverse-events": need(P.REPORT_ADVERSE_EVENTS),
    "api-adverse-event": need(P.REPORT_ADVERSE_EVENTS),
    "api-adverse-event-dismiss": need(P.REPORT_ADVERSE_EVENTS),
    "api-adverse-event-followups": need(P.REPORT_ADVERSE_EVENTS),
    # Data queries, quality, the lock, releases
    "query-list": need(P.VIEW_PARTICIPANTS),
    "query-detail": need(P.VIEW_PARTICIPANTS),
    "query-answer": need(P.VIEW_PARTICIPANTS, site_staff=True),
    "query-new": need(P.MANAGE_QUERIES),
    "query-checks-run": need(P.MANAGE_QUERIES),
    "query-close": need(P.MANAGE_QUERIES),
    "query-reopen": need(P.MANAGE_QUERIES),
    "missing-data": need(P.MANAGE_QUERIES, P.LOCK_DATABASE),
    "lock": need(P.LOCK_DATABASE, P.MANAGE_QUERIES),
    "lock-sign": need(P.LOCK_DATABASE),
    "lock-unlock": need(P.LOCK_DATABASE),
    "releases": need(P.CREATE_RELEASE),
    "release-analysis": need(P.CREATE_RELEASE),
    "release-retry": need(P.CREATE_RELEASE, absent=True),
    "api-queries": {"GET": need(P.VIEW_PARTICIPANTS), "POST": need(P.MANAGE_QUERIES)},
    "api-query": need(P.VIEW_PARTICIPANTS),
    "api-query-answer": need(P.VIEW_PARTICIPANTS, site_staff=True),
    "api-query-close": need(P.MANAGE_QUERIES),
    "api-query-reopen": need(P.MANAGE_QUERIES),
    "api-lock": {"GET": need(P.LOCK_DATABASE, P.MANAGE_QUERIES), "POST": need(P.LOCK_DATABASE)},
    "api-lock-unlock": need(P.LOCK_DATABASE),
    "api-releases": need(P.CREATE_RELEASE),
    "api-release": need(P.CREATE_RELEASE, absent=True),
    "api-release-download": need(P.CREATE_RELEASE, absent=True),
    "api-release-retry": need(P.CREATE_RELEASE, absent=True),
}
# Django admin (namespace "admin"): only a role that configures the trial gets past its login. Which
# models that role sees there is the admin's own business (tests/trial), not this matrix's.
ADMIN_PUBLIC = {"admin:login", "admin:logout"}


def _parameters(world: World) -> dict[str, Any]:
    """What fills each path parameter, by the first URL segment it follows."""
    ids = world.ids
    return {
        "participants": ids["participant"],
        "screening": ids["screening"],
        "events": ids["adverse_event"],
        "queries": ids["query"],
        "sessions": ids["session"],
        "leave": ids["leave"],
        "extra": ids["extra"],
        "physiotherapists": ids["physiotherapist"],
        "adverse-events": ids["adverse_event"],
        "releases": 999_999,  # none exists (a release needs a locked database)
        "screenings": ids["screening"],
    }


def _fill(route: str, world: World) -> str | None:
    """The path of a route with real ids of the world (None when a parameter cannot be filled)."""
    if route.startswith("history/"):
        return f"/history/participants/participant/{world.ids['participant']}/"
    by_segment = _parameters(world)
    named = {"token": "token", "channel": "channel", "code": "outcome", "occurrence_pk": "occurrence"}
    parts: list[str] = []
    for part in route.split("/"):
        if part.startswith("<") and part.endswith(">"):
            name = part[1:-1].split(":")[-1]
            if name in named:
                value = world.ids[named[name]]
            elif name == "number":  # a questionnaire's step
                value = 1
            elif name == "pk":
                value = world.ids["occurrence"] if parts[-1] == "q" else by_segment.get(parts[-1])
            else:
                value = None
            if value is None:
                return None
            part = str(value)
        parts.append(part)
    return "/" + "/".join(parts)


@dataclasses.dataclass
class Endpoint:
    name: str
    path: str
    methods: tuple[str, ...]
    view: Any


def _walk(patterns: list[Any], prefix: str = "", namespace: str = "") -> list[tuple[str, str, Any]]:
    found = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            found += _walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            found.append((f"{namespace}{pattern.name or ''}", prefix + str(pattern.pattern), pattern.callback))
    return found


def _methods(view: Any) -> tuple[str, ...]:
    cls = getattr(view, "view_class", None) or getattr(view, "cls", None)
    if cls is not None and hasattr(cls, "http_method_names"):
        declared = tuple(m.upper() for m in ("get", "post", "patch", "put", "delete") if hasattr(cls, m))
        return declared or ("GET",)
    return ("GET",)  # a function view: GET, then POST if GET is not allowed


def endpoints(world: World) -> list[Endpoint]:
    found = []
    for name, route, view in _walk(get_resolver().url_patterns):
        if name.startswith("admin:") and ("<" in route or "(?P" in route or name == "admin:"):
            continue  # one record's (or one app's) admin pages: the admin's own tests
        path = _fill(route, world)
        assert path is not None, f"{name}: cannot fill {route}"
        path += QUERY.get(name, "").format(**world.ids)
        found.append(Endpoint(name=name, path=path, methods=_methods(view), view=view))
    return found


# Query strings a page needs to show anything (its record).
QUERY = {"query-new": "?record=participants.participant:{participant}&field=study_id"}


def _rule(endpoint: Endpoint, method: str) -> Rule:
    if endpoint.name.startswith("admin:"):
        return PUBLIC if endpoint.name in ADMIN_PUBLIC else need(P.CONFIGURE_TRIAL)
    entry = MATRIX[endpoint.name]
    return entry[method] if isinstance(entry, dict) else entry


def _refused(response: Any, rule: Rule) -> bool:
    if response.status_code in (401, 403, 404):
        return True
    location = response.get("Location", "")
    return response.status_code in (301, 302) and ("/accounts/login/" in location or "/admin/login/" in location)


def _ask(client: Client, method: str, path: str) -> Any:
    """One request, rolled back; the client keeps its session (a logout or password change ends none)."""
    savepoint, cookies = transaction.savepoint(), client.cookies
    client.cookies = type(cookies)(cookies)
    try:
        if method == "GET":
            return client.get(path)
        # The signer's own password and nothing else: what a signature or unblinding checks first
        # is the role, then the password; the rest of the form is missing (a 400, or 409 for a state).
        if "/api/" in path:
            return getattr(client, method.lower())(path, data={"password": PASSWORD}, content_type="application/json")
        return client.post(path, {"password": PASSWORD})
    finally:
        transaction.savepoint_rollback(savepoint)
        client.cookies = cookies


def test_every_url_name_has_an_entry_in_the_matrix(world: World) -> None:
    names = {name for name, _, _ in _walk(get_resolver().url_patterns) if not name.startswith("admin:")}
    assert "" not in names, "every URL has a name (the matrix is keyed by it)"
    assert sorted(names - set(MATRIX)) == [], "new URLs need an entry in MATRIX"
    assert sorted(set(MATRIX) - names) == [], "entries for URLs that no longer exist"


@pytest.mark.parametrize("role", [*ROLES, None], ids=[*ROLES, "anonymous"])
def test_each_role_is_allowed_or_refused_as_the_role_table_says(world: World, role: str | None, record_property) -> None:
    client = Client(REMOTE_ADDR="192.0.2.78")  # its own throttle counters (TEST-NET-1), not other tests'
    if role is not None:
        client.force_login(world.users[role])
    wrong, asked = [], 0
    urls = endpoints(world)
    for endpoint in urls:
        for method in endpoint.methods:
            rule = _rule(endpoint, method)
            response = _ask(client, method, endpoint.path)
            if response.status_code == 405 and method == "GET" and endpoint.methods == ("GET",):
                method, response = "POST", _ask(client, "POST", endpoint.path)  # a POST-only page
            asked += 1
            allowed = rule.allows(role)
            if response.status_code >= 500:
                wrong.append(f"{method} {endpoint.path} ({endpoint.name}): {response.status_code}")
            elif rule.public or rule.token:
                pass  # anyone; what they get depends on the state (a thanks page before any answer is a 404)
            elif endpoint.name.startswith("admin:") and allowed and endpoint.name != "admin:index":
                pass  # which models the configuring role sees in admin is the admin's own tests' business
            elif rule.absent and role is None and response.status_code in (302, 401) and _refused(response, rule):
                pass  # anonymous: 401 from the API, a redirect to the login page from a page
            elif rule.absent and response.status_code != (404 if allowed else 401 if role is None else 403):
                expected = 404 if allowed else 401 if role is None else 403
                wrong.append(f"{method} {endpoint.path} ({endpoint.name}): {response.status_code}, expected {expected}")
            elif not rule.absent and _refused(response, rule) == allowed:
                verdict = "refused" if allowed else "allowed"
                wrong.append(f"{method} {endpoint.path} ({endpoint.name}): {verdict} with {response.status_code}")
    record_property("matrix_requests", asked)
    record_property("matrix_urls", len(urls))
    assert wrong == [], f"{role or 'anonymous'}:\n" + "\n".join(wrong)
