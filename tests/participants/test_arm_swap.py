"""Blinding, proven by swapping the arms.

One world is built twice inside the same test, with the same clock and the same id sequences:
participants A and B are the same in everything (site, strata, consent, dates, answers, adverse
events, data queries, messages) except their arm. In the first world A walks and B is a control;
in the mirror world it is the other way round. The walking participant also has what only the
intervention arm can have: a booked and recorded session with its reminders, a prescription,
walks in the diary, an adverse event reported at the session (the control participant has the same
event entered by staff), a data-quality query on a session, and a withdrawal from the intervention.

Every page and API operation is then requested, as every blinded role, in both worlds: the pages
from the URL configuration and the operations (with their query parameters) from the API schema,
never from a hand-kept list, so a page added tomorrow is crawled tomorrow. Each parameter is
filled with every matching record of the world (both participants, every adverse event, query,
session, ... and every record's history). A blinded role must get the same status and the same
body in both worlds: whatever differs tells the arm. Refused actions (POST to every address) are
compared the same way, and so are the blinded release files.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import re
import zipfile
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.apps import apps
from django.db import connection, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator

from closeout.datalock.services import database_lock
from closeout.queries import services as query_services
from closeout.releases import services as release_services
from followup import services as followup_services
from followup.models import Occurrence
from intervention import services as intervention_services
from intervention.models import Session, WorkingHours
from participants import blinding
from participants import services as journey
from participants.models import Participant
from safety import services as safety_services
from tests.caches import cache_clear_own
from tests.factories import PASSWORD
from trial import services as trial_services
from trial.models import Notification, Trial, TrialContact

pytestmark = pytest.mark.armswap

UTC = dt.UTC
SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")
NOW = dt.datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # Monday 2 March 2026, 11:00 in Sydney
BLINDED_ROLES = ("investigator", "data_manager", "statistician", "admin")

# Addresses no blinded staff member uses: the participant's own pages (reached with their personal
# token), logging out, Django admin (configuration; its own test), the schema and its viewer.
SKIP_PREFIXES = ("p/", "accounts/logout/", "admin/", "api/schema/", "api/docs/", "health/")

# What an id in an address names, by the path segment before it. A new kind of address fails the
# test until it is added here, so nothing is crawled blind.
SEGMENT_MODELS = {
    "participants": "participants.participant",
    "screening": "participants.screening",
    "screenings": "participants.screening",
    "events": "safety.adverseevent",
    "adverse-events": "safety.adverseevent",
    "queries": "closeout.dataquery",
    "sessions": "intervention.session",
    "questionnaires": "followup.occurrence",
    "releases": "closeout.release",
    "physiotherapists": "auth.user",
    "leave": "intervention.leave",
    "extra": "intervention.extraslot",
}
# Distinctive arm names, so that any appearance of one is a leak.
ARM_NAMES = {"walking": "Zebra Stripes Programme", "control": "Okapi Comparison Group"}


def sydney(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, tzinfo=SYDNEY).astimezone(UTC)


# Month 1 of the recurrence questionnaire, reporting a new health problem.
ANSWERS = {
    "lbp_any": "yes",
    "ep1_24h": "yes",
    "ep1_more": "no",
    "ep1_start": "2026-03-20",
    "ep1_interference": "2",
    "ep1_pain_avg": "4",
    "ep1_pain_worst": "7",
    "ep1_care_sought": "yes",
    "ep1_care_from": ["gp", "physiotherapist"],
    "ep1_work_days_missed": "2",
    "ep1_recovered_on": "2026-03-28",
    "new_health_problem": "yes",
    "new_health_problem_details": "Sore knee",
}


def paired_event(**changes: Any) -> safety_services.AEInput:
    values: dict[str, Any] = {
        "onset_date": dt.date(2026, 3, 1),
        "description": "Sore knee after walking",
        "category": "lower_extremity",
        "severity": "mild",
        "relatedness": "possibly",
        "expected": True,
        "action_taken": "Rest",
        "outcome": "recovering",
    }
    return safety_services.AEInput(**{**values, **changes})


# --- The world ----------------------------------------------------------------------------------


@dataclass
class World:
    a: Participant
    b: Participant
    walker: Participant
    base: int  # every row of this world has an id at or above it
    people: list[Participant] = field(default_factory=list)
    ids: dict[str, list[int]] = field(default_factory=dict)  # model label -> ids of this world's rows


@dataclass
class Staff:
    coordinator: Any
    physio: Any
    data_manager: Any
    roles: dict[str, Any]
    other_investigator: Any


@pytest.fixture
def staff(walkback: Trial, make_staff, coordinator) -> Staff:  # type: ignore[no-untyped-def]
    for code, name in ARM_NAMES.items():
        walkback.arms.filter(code=code).update(name=name)
    physio = make_staff("physiotherapist", sites=["SYD"], username="phil")
    for weekday in range(5):
        WorkingHours.objects.create(site=walkback.sites.get(code="SYD"), weekday=weekday, start=dt.time(9), end=dt.time(12))
    roles = {role: make_staff(role, username=f"blinded-{role}") for role in BLINDED_ROLES}
    TrialContact.objects.create(
        trial=walkback, kind="safety", name="Safety", email=roles["investigator"].email or "ivy@example.org"
    )
    other = make_staff("investigator", username="other-investigator")
    return Staff(
        coordinator=coordinator, physio=physio, data_manager=roles["data_manager"], roles=roles, other_investigator=other
    )


def _restart_sequences(base: int) -> None:
    """Every table's ids start at ``base``: both worlds give the same records the same ids."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT schemaname, sequencename FROM pg_sequences")
        for schema, name in cursor.fetchall():
            cursor.execute("SELECT setval(%s, %s, false)", [f'"{schema}"."{name}"', base])


def _sequence_base() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(last_value), 0) FROM pg_sequences")
        (top,) = cursor.fetchone()
    return (int(top) // 100_000 + 1) * 100_000


def build_world(walkback: Trial, staff: Staff, enrol: Callable[..., Participant], *, walker: str, base: int) -> World:
    """A and B identical but for the arm; ``walker`` ("a" or "b") is the one in the walking arm.
    A second pair, C and D, walks the same way (C when A does) and both later leave follow-up."""
    _restart_sequences(base)
    coordinator, physio, dm = staff.coordinator, staff.physio, staff.data_manager
    a, b, c, d = (enrol(site="SYD", prior="yes") for _ in range(4))
    order = ["walking", "control"] if walker == "a" else ["control", "walking"]
    trial_services.randomisation_list_import(
        trial=walkback,
        rows=[{"arm": arm, "prior_episodes_gt2": "yes", "referral": "community"} for arm in order + order],
        arm_column="arm",
        by="statistician",
    )
    for person in (a, b, c, d):
        journey.participant_randomise(participant_id=person.pk, by=coordinator)
        person.refresh_from_db()
    walking, second_walker = (a, c) if walker == "a" else (b, d)

    # What both have, in the same order: an event, answers that report a new health problem (a
    # pending report), messages, another investigator's emergency unblinding of A.
    for person in (a, b):
        safety_services.adverse_event_record(
            participant=person, data=paired_event(description="Headache", relatedness="not"), by=coordinator
        )
    later = NOW + dt.timedelta(days=32)
    followup_services.occurrences_advance(now=later)
    followup_services.messages_plan(now=later)
    for person in (a, b):
        month_1 = Occurrence.objects.get(participant=person, instrument="monthly", month=1)
        followup_services.response_submit(occurrence=month_1, raw=ANSWERS, source="participant", now=later)
    journey.participant_unblind(participant=a, user=staff.other_investigator, reason="Serious event", password=PASSWORD)

    # What only the walking participant has.
    first = Session.objects.get(participant=walking, number=1)
    intervention_services.session_book(session_id=first.pk, starts_at=sydney(3, 9), mode="in_person", by=coordinator, now=NOW)
    intervention_services.session_record(
        session_id=first.pk,
        attendance="attended",
        duration_minutes=40,
        topics=["pain_science"],
        prescription=intervention_services.PrescriptionInput(walks_per_week=3, minutes_per_walk=15),
        by=physio,
        now=sydney(3, 10),
    )
    second = Session.objects.get(participant=walking, number=2)
    intervention_services.session_book(session_id=second.pk, starts_at=sydney(16, 9), mode="phone", by=coordinator, now=NOW)
    intervention_services.walk_log(participant=walking, walked_on=dt.date(2026, 3, 4), minutes=20, by=physio, now=sydney(5, 9))
    query_services.query_raise(
        trial=walkback, record=first, field="status", text="Session outside the arm?", check_code="demo", finding_key="swap"
    )

    # The same serious adverse event: reported at the session by the physiotherapist for the
    # walker, entered by the coordinator for the control participant; each reporter follows it up.
    events = {}
    for person in (a, b):
        reporter = physio if person == walking else coordinator
        events[person.pk] = safety_services.adverse_event_record(
            participant=person,
            data=paired_event(serious=True, serious_criteria=["hospitalisation"]),
            by=reporter,
            session_id=first.pk if person == walking else None,
            aware_at=sydney(3, 10),
            now=sydney(3, 10),
        )
        safety_services.adverse_event_followup_add(
            event=events[person.pk], note="Discharged home", outcome="recovering", by=reporter, now=sydney(4, 10)
        )
    for person in (a, b):
        for record, name in ((person, "status"), (events[person.pk], "description")):
            query = query_services.query_raise(trial=walkback, record=record, field=name, text="Please check", by=dm)
            assert query is not None
            query_services.query_answer(query=query, answer="Checked", by=coordinator)

    journey.participant_withdraw(participant=walking, scope="intervention", reason="Too busy to walk", by=coordinator)
    # The second pair: the walker stops the intervention, then both leave follow-up alike.
    journey.participant_withdraw(participant=second_walker, scope="intervention", reason="Too busy", by=coordinator)
    for person in (c, d):
        journey.participant_withdraw(participant=person, scope="followup", reason="Moved away", by=coordinator)
    world = World(a=a, b=b, walker=walking, base=base, people=[a, b, c, d])
    world.ids = _world_ids(base)
    return world


def _world_ids(base: int) -> dict[str, list[int]]:
    """Every record created in this world, by model label (ids at or above ``base``)."""
    found: dict[str, list[int]] = {}
    for model in apps.get_models():
        if model._meta.app_label == "pghistory" or any(f.name == "pgh_id" for f in model._meta.fields):
            continue  # audit events are read through their record's history
        if model._meta.pk.get_internal_type() not in ("AutoField", "BigAutoField"):
            continue
        ids = sorted(model._default_manager.filter(pk__gte=base).values_list("pk", flat=True))
        if ids:
            found[model._meta.label_lower] = ids
    return found


# --- Addresses: from the URL configuration and the API schema -----------------------------------


def _routes(patterns: list[Any] | None = None, prefix: str = "") -> Iterator[str]:
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        route = str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, prefix + route)
        elif isinstance(entry, URLPattern):
            yield prefix + route


ORACLE = "answers unlike a record that does not exist"
HISTORY_SAMPLE = 24  # records of one kind whose history is read, at most
PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def _fills(route: str, world: World, walkback: Trial) -> list[str]:
    """The route with its parameters filled by every matching record of the world."""
    names = PARAM.findall(route)
    if not names:
        return ["/" + route]
    if route.startswith("history/"):
        # Every kind of record; of the plentiful ones (questionnaire occurrences) an even sample.
        return [
            f"/history/{label.split('.')[0]}/{label.split('.')[1]}/{pk}/"
            for label, ids in world.ids.items()
            for pk in ids[:: -(-len(ids) // HISTORY_SAMPLE)]
            if label != "auth.user"
        ]
    choices: list[dict[str, str]] = [{}]
    for _converter, name in names:
        if name == "pk":
            segment = route.split("<")[0].rstrip("/").split("/")[-1]
            assert segment in SEGMENT_MODELS, f"{route}: what does the id after '{segment}/' name? Add it to SEGMENT_MODELS."
            label = SEGMENT_MODELS[segment]
            values = [str(pk) for pk in world.ids.get(label, [])] or [str(world.base + 99_999)]
            if label == "auth.user":
                values = [str(pk) for pk in apps.get_model("auth", "user").objects.values_list("pk", flat=True)]
        elif name == "occurrence_pk":
            values = [
                str(pk)
                for person in world.people
                for pk in Occurrence.objects.filter(participant=person)
                .order_by("opens_at", "pk")
                .values_list("pk", flat=True)[:2]
            ]
        elif name == "code":
            values = sorted({o.code for o in apps.get_model("followup", "outcome").objects.all()}) or ["recurrence"]
        else:
            raise AssertionError(f"{route}: no way to fill <{name}>; teach the arm-swap test")
        choices = [{**c, name: v} for c in choices for v in values]
    result = []
    for choice in choices:
        result.append("/" + PARAM.sub(lambda m, c=choice: c[m.group(2)], route))  # type: ignore[misc]
    return result


def _schema_variants(world: World) -> list[str]:
    """Every GET operation of the API schema, and each of its query parameters with values that
    matter: each participant, each choice of an enumerated parameter."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    urls = []
    for path, operations in schema["paths"].items():
        get = operations.get("get")
        if get is None or "{" in path:
            continue  # operations on one record are crawled from the URL configuration
        for parameter in get.get("parameters", []):
            if parameter.get("in") != "query":
                continue
            name = parameter["name"]
            values: list[str] = list(parameter.get("schema", {}).get("enum", []))
            if "participant" in name:
                values += [str(p.pk) for p in world.people]
            if parameter.get("schema", {}).get("type") == "boolean":
                values += ["true", "false"]
            urls += [f"{path}?{name}={value}" for value in values if value is not None]
    return urls


PAGE_FILTERS = ("participant", "status", "source", "scope", "withdrawal_scope", "kind")


def addresses(world: World, walkback: Trial) -> list[str]:
    urls: list[str] = []
    for route in _routes():
        if route.startswith(SKIP_PREFIXES):
            continue
        urls += _fills(route, world, walkback)
    urls += _schema_variants(world)
    # Page lists filtered by each participant and by the values of filters that could tell an arm.
    for path in ("/participants/", "/safety/events/", "/queries/", "/followup/worklist/"):
        urls += [f"{path}?participant={p.pk}" for p in world.people]
        urls += [f"{path}?status={s}" for s in ("withdrawn", "randomised", "open", "answered", "pending")]
        urls += [f"{path}?source={s}" for s in ("staff", "session", "questionnaire")]
    # A data query on every record the history reaches: its form, and raising one through the API.
    urls += [f"/queries/new/?record={_record_of(url)}" for url in urls if url.startswith("/history/")]
    return list(dict.fromkeys(urls))


def arm_only_addresses(world: World) -> list[tuple[str, str, str, str]]:
    """Addresses of the records only the intervention arm has (and of the allocations), each with the
    same address for a record that does not exist: (address, its id, the address of none, that id)."""
    missing = str(world.base + 99_998)
    pairs = []
    for route in _routes():
        if route.startswith(SKIP_PREFIXES):
            continue
        names = [name for _converter, name in PARAM.findall(route)]
        if route.startswith("history/"):
            labels = list(world.ids)
        elif names == ["pk"]:
            labels = [SEGMENT_MODELS[route.split("<")[0].rstrip("/").split("/")[-1]]]
        else:
            continue
        for label in labels:
            model = apps.get_model(label)
            for obj in model._default_manager.filter(pk__in=world.ids.get(label, [])):
                if not blinding.reveals_arm(obj):
                    continue
                app_label, model_name = label.split(".")
                values = {"app_label": app_label, "model_name": model_name}
                real = _fill(route, {**values, "pk": str(obj.pk)})
                pairs.append((real, str(obj.pk), _fill(route, {**values, "pk": missing}), missing))
    return pairs


def _fill(route: str, values: dict[str, str]) -> str:
    return "/" + PARAM.sub(lambda m: values[m.group(2)], route)


def _record_of(history_url: str) -> str:
    _, _, app_label, model_name, pk, _ = history_url.split("/")
    return f"{app_label}.{model_name}:{pk}"


# --- Crawling and comparing ---------------------------------------------------------------------

RANDOM = [
    (re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"'), 'name="csrfmiddlewaretoken" value="…"'),
    (re.compile(r"csrftoken=[^;\s]+"), "csrftoken=…"),
]


def _normalise(body: str) -> str:
    for pattern, replacement in RANDOM:
        body = pattern.sub(replacement, body)
    return body


def _answer(response: Any) -> str:
    body = response.content.decode(errors="replace") if not getattr(response, "streaming", False) else "(streamed)"
    if getattr(response, "streaming", False):
        body = b"".join(response.streaming_content).decode(errors="replace")
    return f"{response.status_code} {response.get('Location', '')}\n{_normalise(body)}"


def crawl(client: Client, urls: list[str], *, posts: bool) -> dict[str, str]:
    seen: dict[str, str] = {}
    for url in urls:
        response = client.get(url)
        assert response.status_code < 500, f"GET {url} answered {response.status_code}"
        seen[f"GET {url}"] = _answer(response)
    if posts:
        # A data query raised on every record (refused, or raised alike in both worlds).
        for url in urls:
            if url.startswith("/queries/new/?record="):
                record = url.split("=", 1)[1]
                body = {"record": record, "field": "", "text": "Arm-swap check"}
                response = client.post("/api/v1/queries/", body, content_type="application/json")
                assert response.status_code < 500, f"POST /api/v1/queries/ {record} answered {response.status_code}"
                seen[f"POST /api/v1/queries/ {record}"] = _answer(response)
        # Refused (or invalid) actions: every address, empty form and empty JSON.
        for url in urls:
            if "?" in url or url.startswith("/history/"):  # history is read-only: a POST reads it again
                continue
            api = url.startswith("/api/")
            response = client.post(url, {}, content_type="application/json") if api else client.post(url, {})
            assert response.status_code < 500, f"POST {url} answered {response.status_code}"
            seen[f"POST {url}"] = _answer(response)
    return seen


def _in_world(
    walkback: Trial, staff: Staff, enrol: Callable[..., Participant], *, walker: str, base: int, visit: Callable[[World], Any]
) -> Any:
    cache_clear_own()  # throttles and other counters start alike in both worlds
    with time_machine.travel(NOW, tick=False), transaction.atomic():
        world = build_world(walkback, staff, enrol, walker=walker, base=base)
        result = visit(world)
        transaction.set_rollback(True)
    return result


def _differences(first: dict[str, str], second: dict[str, str]) -> list[str]:
    differences = []
    for key in sorted(set(first) | set(second)):
        one, two = first.get(key, "(not requested)"), second.get(key, "(not requested)")
        if one != two:
            diff = difflib.unified_diff(one.splitlines(), two.splitlines(), lineterm="", n=0)
            detail = [f"  {line.strip()[:240]}" for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]
            differences.append(f"{key}\n" + "\n".join(detail[:8]))
    return differences


def crawl_both_worlds(
    walkback: Trial,
    staff: Staff,
    enrol: Callable[..., Participant],
    *,
    roles: tuple[str, ...],
    keep: Callable[[str], bool],
    locked: bool = False,
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """What each role got at every address ``keep`` accepts, in the world where A walks and in the
    one where B walks (after the database lock and a blinded release, if ``locked``). The staff
    e-mails of each world are compared as one more page."""
    base = _sequence_base()

    def visit(world: World) -> dict[str, dict[str, str]]:
        if locked:
            database_lock(trial=walkback, user=staff.roles["investigator"], password=PASSWORD, open_items_note="Arm swap")
            walkback.refresh_from_db()
            release = release_services.release_create(trial=walkback, variant="blinded", by=staff.other_investigator)
            built = release_services.release_build(release_id=release.pk)
            assert built is not None and built.status == "ready", built and built.error
            world.ids = _world_ids(world.base)
        urls = [url for url in addresses(world, walkback) if keep(url)]
        pages = {}
        for role in roles:
            client = Client()  # a new session in each world: no message carried over from the other
            client.force_login(staff.roles[role])
            pages[role] = crawl(client, urls, posts=True)
            # A record only the intervention arm has answers as one that does not exist.
            arm_only = [pair for pair in arm_only_addresses(world) if keep(pair[0])]
            pages[role]["arm-only addresses"] = str(len(arm_only))
            for real, pk, none, missing in arm_only:
                for method in ("GET", "POST"):
                    client.get("/")  # shows (and so clears) any message left by an earlier action
                    answers = [_answer(getattr(client, method.lower())(url)) for url in (real, none)]
                    if answers[0].replace(pk, "ID") != answers[1].replace(missing, "ID"):
                        pages[role][f"{method} {real} {ORACLE}"] = "\n---\n".join(answers)
            # E-mails to staff (serious events go to the safety contact, a blinded investigator).
            pages[role]["staff e-mails"] = "\n".join(
                f"{n.kind} {n.recipients} {n.subject}\n{n.body}" for n in Notification.objects.filter(pk__gte=base).order_by("pk")
            )
        return pages

    walking_a = _in_world(walkback, staff, enrol, walker="a", base=base, visit=visit)
    walking_b = _in_world(walkback, staff, enrol, walker="b", base=base, visit=visit)
    return walking_a, walking_b


@pytest.mark.django_db
def test_every_page_and_response_a_blinded_role_reaches_is_the_same_whichever_participant_walks(
    walkback: Trial, staff: Staff, enrol: Callable[..., Participant]
) -> None:
    walking_a, walking_b = crawl_both_worlds(walkback, staff, enrol, roles=BLINDED_ROLES, keep=lambda url: True)

    report = []
    for role in BLINDED_ROLES:
        pages = walking_a[role]
        reached = sum(1 for key, answer in pages.items() if key.startswith("GET") and answer.startswith("200"))
        # The admin (configuration) sees the dashboard and little else; the others see the participants.
        assert reached >= (5 if role == "admin" else 150), f"{role} reached only {reached} pages: the crawl means nothing"
        report += [f"[{role}] {d}" for d in _differences(walking_a[role], walking_b[role])]
        report += [f"[{role}] {key}" for key in pages if key.endswith(ORACLE)]
        arm_only = sum(1 for key in pages if key.startswith("GET /history/intervention/"))
        assert arm_only >= 5, "the world has too few records only the intervention arm has"
        # The quick check: no arm name anywhere a blinded role looks, outside the trial's description.
        for key, answer in pages.items():
            for name in ARM_NAMES.values():
                if name in answer and key.split(" ", 1)[-1] not in ("/", "/api/v1/trial/"):
                    report.append(f"[{role}] {key}: names the arm {name}")
    if dump := os.environ.get("ARMSWAP_DUMP"):  # to read what a blinded role saw: ARMSWAP_DUMP=/tmp/armswap
        Path(dump).mkdir(parents=True, exist_ok=True)
        for name, world_pages in (("walking-a", walking_a), ("walking-b", walking_b)):
            Path(dump, f"{name}.json").write_text(json.dumps(world_pages, indent=1))
    figures = {
        role: {
            "get": sum(1 for k in pages if k.startswith("GET")),
            "get_200": sum(1 for k, v in pages.items() if k.startswith("GET") and v.startswith("200")),
            "post": sum(1 for k in pages if k.startswith("POST")),
            "arm_only_vs_missing": int(pages["arm-only addresses"]),
        }
        for role, pages in walking_a.items()
    }
    print("arm-swap crawl:", json.dumps(figures))
    assert report == [], f"{len(report)} differences between the worlds:\n" + "\n".join(report[:60])


@pytest.mark.django_db
def test_after_the_lock_what_the_still_blinded_roles_reach_is_the_same_whichever_participant_walks(
    walkback: Trial, staff: Staff, enrol: Callable[..., Participant], settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    # The data manager and the admin stay blinded after the lock (the lock page, releases, ...).
    settings.VAR_DIR = tmp_path
    roles = ("data_manager", "admin")
    walking_a, walking_b = crawl_both_worlds(walkback, staff, enrol, roles=roles, keep=lambda url: True, locked=True)
    report = [f"[{role}] {d}" for role in roles for d in _differences(walking_a[role], walking_b[role])]
    report += [f"[{role}] {key}" for role in roles for key in walking_a[role] if key.endswith(ORACLE)]
    assert sum(1 for key, answer in walking_a["data_manager"].items() if answer.startswith("200")) >= 150
    assert report == [], f"{len(report)} differences between the worlds:\n" + "\n".join(report[:60])


@pytest.mark.django_db
def test_the_crawl_catches_a_field_that_tells_the_arm(
    walkback: Trial, staff: Staff, enrol: Callable[..., Participant], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the redaction of the participant's physiotherapist and withdrawal scope, the
    # participant's history and API answer differ between the worlds: the comparison is not blind.
    monkeypatch.setitem(blinding.BLINDED_FIELDS, "participants.participant", {})
    walking_a, walking_b = crawl_both_worlds(
        walkback, staff, enrol, roles=("investigator",), keep=lambda url: "/participants/" in url and "?" not in url
    )
    differences = "\n".join(_differences(walking_a["investigator"], walking_b["investigator"]))
    assert "GET /history/participants/participant/" in differences and "physiotherapist_id" in differences
    assert "GET /api/v1/participants/" in differences and '"withdrawal_scope":"intervention"' in differences


@pytest.mark.django_db
def test_the_blinded_release_is_the_same_whichever_participant_walks(
    walkback: Trial, staff: Staff, enrol: Callable[..., Participant], settings, tmp_path: Path, password: str
) -> None:  # type: ignore[no-untyped-def]
    settings.VAR_DIR = tmp_path
    signer = staff.roles["investigator"]
    base = _sequence_base()

    def release_files(world: World) -> dict[str, str]:
        database_lock(trial=walkback, user=signer, password=password, open_items_note="Arm-swap test")
        walkback.refresh_from_db()
        release = release_services.release_create(trial=walkback, variant="blinded", by=type(signer).objects.get(pk=signer.pk))
        built = release_services.release_build(release_id=release.pk)
        assert built is not None and built.status == "ready", built and built.error
        with zipfile.ZipFile(tmp_path / "releases" / built.zip_name) as archive:
            files = {Path(i.filename).name: archive.read(i).decode(errors="replace") for i in archive.infolist()}
        (tmp_path / "releases" / built.zip_name).unlink()
        return files

    walking_a = _in_world(walkback, staff, enrol, walker="a", base=base, visit=release_files)
    walking_b = _in_world(walkback, staff, enrol, walker="b", base=base, visit=release_files)

    assert "intervention" not in walking_a["participants.csv"] + walking_a["withdrawals.csv"] + walking_a["analysis.csv"]
    assert len(walking_a["adverse_events.csv"].splitlines()) == 7, "three events of A and of B, and the header"
    # The analysis table (every randomised participant, no arm, no per-protocol flag), the baseline
    # and the episodes are compared too.
    analysis_header = walking_a["analysis.csv"].splitlines()[0].split(",")
    assert len(walking_a["analysis.csv"].splitlines()) == 5 and "itt" in analysis_header
    assert not {"arm", "per_protocol"} & set(analysis_header)
    assert len(walking_a["baseline.csv"].splitlines()) == 5
    assert len(walking_a["episodes.csv"].splitlines()) == 3, "A's and B's episode in month 1, and the header"
    assert _differences(walking_a, walking_b) == []
