"""Load generation for ``bench_http``: randomisation and questionnaire submits through gunicorn.

The server is the product's web process exactly as ``docker/entrypoint.sh web`` runs it, on a
throwaway database. Clients are threads of this process, each with one keep-alive HTTP connection
(the standard library's ``http.client``), as many as ``--clients``; every request's latency is
recorded. Each scenario is printed beside ``/health/`` (the database and broker checks, the
lightest view that still reaches the database) on the same server, as the issue measured it.
"""

from __future__ import annotations

import datetime as dt
import http.client
import os
import queue
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import connection
from django.utils import timezone

from bench import threads_run
from bench.randomise import participants_make_ready
from followup.models import Occurrence, OccurrenceStatus
from participants import services as journey
from participants.links import access_link_tokens
from participants.models import Participant
from presets.services import preset_apply
from presets.walkback import WALKBACK
from trial import services
from trial.models import Trial

ROOT = Path(__file__).resolve().parents[1]
CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
# The monthly questionnaire of a participant with no new back pain: the shortest complete answer.
MONTHLY_NO_PAIN = {"lbp_any": "no", "new_health_problem": "no"}


@dataclass(frozen=True)
class HttpSetup:
    trial_id: int
    api_token: str
    to_randomise: list[int]
    to_submit: list[tuple[str, int]]  # (link token, open monthly occurrence)
    seconds: float


def http_setup(*, participants: int) -> HttpSetup:
    """A WalkBack trial with a coordinator and an API token; ``participants`` ready to randomise,
    and as many randomised with their first monthly questionnaire open now and a live link."""
    started = time.perf_counter()
    trial: Trial = preset_apply(preset=WALKBACK, today=timezone.localdate())
    codes = list(trial.sites.values_list("code", flat=True))
    user = services.staff_create(
        trial=trial, username="bench", role="coordinator", password="bench-password-123", site_codes=codes
    )
    services.randomisation_list_generate(trial=trial, seed="benchmark-seed-not-secret", per_stratum=participants + 16, by="bench")
    ids = participants_make_ready(trial=trial, count=2 * participants, by=user)
    answering = ids[participants:]
    for pk in answering:
        journey.participant_randomise(participant_id=pk, by=user)
    now = timezone.now()
    first = {
        pk: occurrence
        for occurrence, pk in Occurrence.objects.filter(participant_id__in=answering, instrument="monthly")
        .order_by("participant_id", "-month")
        .values_list("pk", "participant_id")
    }
    Occurrence.objects.filter(pk__in=first.values()).update(
        opens_at=now - dt.timedelta(days=1), closes_at=now + dt.timedelta(days=13), status=OccurrenceStatus.OPEN
    )
    tokens = access_link_tokens(participants=list(Participant.objects.filter(pk__in=answering)))
    _token, key = services.api_token_issue(user=user, ip_address=None)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return HttpSetup(
        trial_id=trial.pk,
        api_token=key,
        to_randomise=ids[:participants],
        to_submit=[(tokens[pk], first[pk]) for pk in answering],
        seconds=time.perf_counter() - started,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database_url() -> str:
    """This process's database as a URL, for the server's environment."""
    db = connection.settings_dict
    host = quote(db["HOST"], safe="") if db["HOST"].startswith("/") else f"{db['HOST']}:{db['PORT'] or 5432}"
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    return f"postgres://{quote(db['USER'], safe='')}{password}@{host}/{db['NAME']}"


@contextmanager
def gunicorn(
    *, workers: int, conn_max_age: int, directory: Path, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    """The web process as the Docker image runs it (static files collected into ``directory``, then
    ``docker/entrypoint.sh web``), on this database and a free port; yields (host, port) once
    ``/health/`` answers 200, and stops it (its whole group) at the end. Its log is
    ``directory/gunicorn.log``."""
    port = _free_port()
    log = directory / "gunicorn.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DATABASE_CONN_MAX_AGE": str(conn_max_age),
        "WALKBACK_VAR_DIR": str(settings.VAR_DIR),
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        "DJANGO_SETTINGS_MODULE": "trial.settings",
        "DJANGO_STATIC_ROOT": str(directory / "static"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        **(extra_env or {}),
    }
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    with log.open("w") as output:
        proc = subprocess.Popen(
            ["bash", str(ROOT / "docker" / "entrypoint.sh"), "web"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 90
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"gunicorn stopped: {log.read_text()[-2000:]}")
                try:
                    client = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    client.request("GET", "/health/")
                    if client.getresponse().status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not answer within 90 s: {log.read_text()[-2000:]}")
                time.sleep(0.3)
            yield "127.0.0.1", port
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


class Client:
    """One keep-alive connection and a cookie jar: a phone or a script talking to the server."""

    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None) -> None:
        self.connection = http.client.HTTPConnection(host, port, timeout=60)
        self.headers = headers or {}
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: dict[str, str] | None = None) -> tuple[int, bytes, str]:
        headers = {**self.headers}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if body is not None:
            data = urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.connection.request(method, path, body=data, headers=headers)
            response = self.connection.getresponse()
        except (http.client.HTTPException, OSError):
            self.connection.close()  # the server closed it (a worker restarted): once more on a new one
            self.connection.request(method, path, body=data, headers=headers)
            response = self.connection.getresponse()
        content = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, content, response.headers.get("Location", "")


@dataclass
class Scenario:
    """What a scenario's clients measured: each request's latency by its name, and the errors."""

    name: str
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    units: int = 0  # randomisations, submits, or requests
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(
        self, client: Client, label: str, method: str, path: str, body: dict[str, str] | None = None
    ) -> tuple[int, bytes, str]:
        started = time.perf_counter()
        status, content, location = client.request(method, path, body)
        elapsed = time.perf_counter() - started
        with self.lock:
            self.latencies.setdefault(label, []).append(elapsed)
        return status, content, location

    def error(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)


def run_clients(
    *, scenario: Scenario, clients: int, work: Callable[[Client], bool], client_for: Callable[[], Client]
) -> Scenario:
    """``clients`` threads, each with its own connection, calling ``work`` until it returns False."""

    def loop() -> None:
        client = client_for()
        while work(client):
            with scenario.lock:
                scenario.units += 1

    scenario.seconds = threads_run(clients=clients, target=loop, name=scenario.name)
    return scenario


def health(*, host: str, port: int, clients: int, seconds: float) -> Scenario:
    scenario = Scenario("health")
    deadline = time.monotonic() + seconds

    def work(client: Client) -> bool:
        if time.monotonic() > deadline:
            return False
        status, _content, _location = scenario.timed(client, "GET /health/", "GET", "/health/")
        if status != 200:
            scenario.error(f"/health/ {status}")
        return True

    return run_clients(scenario=scenario, clients=clients, work=work, client_for=lambda: Client(host, port))


def randomise(*, host: str, port: int, clients: int, setup: HttpSetup) -> Scenario:
    scenario = Scenario("randomise")
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for pk in setup.to_randomise:
        todo.put(pk)

    def work(client: Client) -> bool:
        try:
            pk = todo.get_nowait()
        except queue.Empty:
            return False
        status, content, _location = scenario.timed(client, "POST randomise", "POST", f"/api/v1/participants/{pk}/randomise/")
        if status not in (200, 201):
            scenario.error(f"randomise {pk}: {status} {content[:200]!r}")
        return True

    headers = {"Authorization": f"Token {setup.api_token}", "Accept": "application/json"}
    return run_clients(scenario=scenario, clients=clients, work=work, client_for=lambda: Client(host, port, headers))


def submit(*, host: str, port: int, clients: int, setup: HttpSetup) -> Scenario:
    """A participant's whole visit: their home page, the questionnaire (a redirect to its first
    step, which carries the form's CSRF token), every answer in one POST, and the thank-you page."""
    scenario = Scenario("submit")
    todo: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()
    for item in setup.to_submit:
        todo.put(item)

    def work(client: Client) -> bool:
        try:
            token, occurrence = todo.get_nowait()
        except queue.Empty:
            return False
        client.cookies.clear()  # another participant's phone
        home = f"/p/{token}/"
        questionnaire = f"{home}q/{occurrence}/"
        status, _content, _location = scenario.timed(client, "GET home", "GET", home)
        status, _content, location = scenario.timed(client, "GET questionnaire", "GET", questionnaire)
        status, content, _location = scenario.timed(client, "GET step", "GET", location or f"{questionnaire}step/1/")
        found = CSRF.search(content)
        if status != 200 or found is None:
            scenario.error(f"step of {occurrence}: {status}")
            return True
        answers = {**MONTHLY_NO_PAIN, "csrfmiddlewaretoken": found.group(1).decode()}
        status, content, location = scenario.timed(client, "POST answers", "POST", questionnaire, answers)
        if status != 302 or not location.endswith("/thanks/"):
            scenario.error(f"submit {occurrence}: {status} {content[:200]!r}")
            return True
        scenario.timed(client, "GET thanks", "GET", location)
        return True

    return run_clients(scenario=scenario, clients=clients, work=work, client_for=lambda: Client(host, port))


def percentile(values: list[float], share: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[int(share * 100) - 1]


def rows(scenarios: list[Scenario]) -> list[dict[str, Any]]:
    """A row per request kind: count, per second over its scenario, p50 and p95 in ms, and the
    rate of each scenario's units (randomisations, submits) beside /health/'s requests."""
    reference = next((s for s in scenarios if s.name == "health"), None)
    health_rate = (reference.units / reference.seconds) if reference and reference.seconds else 0.0
    result = []
    for scenario in scenarios:
        rate = scenario.units / scenario.seconds if scenario.seconds else 0.0
        for label, values in scenario.latencies.items():
            result.append(
                {
                    "scenario": scenario.name,
                    "request": label,
                    "count": len(values),
                    "per_second": len(values) / scenario.seconds if scenario.seconds else 0.0,
                    "p50_ms": percentile(values, 0.5) * 1000,
                    "p95_ms": percentile(values, 0.95) * 1000,
                }
            )
        result.append(
            {
                "scenario": scenario.name,
                "request": f"= {scenario.units} {scenario.name if scenario.name != 'health' else 'requests'}",
                "count": scenario.units,
                "per_second": rate,
                "p50_ms": None,
                "p95_ms": None,
                "errors": len(scenario.errors),
                "vs_health": rate / health_rate if health_rate else None,
            }
        )
    return result
