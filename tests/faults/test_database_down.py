"""The database frozen (SIGSTOP: it neither answers nor refuses) and stopped (pg_ctl stop), for
real: the test's data is backed up (``manage.py backup``) and restored (``manage.py restore``) into
a private PostgreSQL the test starts, and this process's requests go to it with a 2-second connect
timeout. Pages, the API and /health/ answer 503 with Retry-After within the timeout, never hang;
once the server is thawed or started again they answer 200, without a restart."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from bench.http import gunicorn
from tests.faults.servers import PostgresServer, postgres_server, wait_for
from tests.integration.test_stack import ROOT, _database_url
from trial.models import Trial

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

CONNECT_TIMEOUT = 2
# What a request may take while the database does not answer: the connect timeout, and room for a
# loaded CI machine. A hung request would take until the test's own timeout.
BOUND = CONNECT_TIMEOUT + 4


def manage(*args: str, database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "WALKBACK_VAR_DIR": str(settings.VAR_DIR)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def private_database(walkback: Trial, coordinator: Any, tmp_path: Path) -> Iterator[PostgresServer]:
    """The test's committed data, restored into a private server this process now talks to."""
    archive = tmp_path / "backup.tar"
    manage("backup", "--output", str(archive), database_url=_database_url())
    with postgres_server(tmp_path / "pg" / "pgdata") as server:
        server.create_database("walkback_faults")
        manage("restore", str(archive), database_url=server.url("walkback_faults"))
        saved = {key: connection.settings_dict[key] for key in ("HOST", "PORT", "NAME", "OPTIONS", "CONN_MAX_AGE")}
        connection.close()
        connection.settings_dict.update(
            server.settings_dict("walkback_faults"),
            OPTIONS={**saved["OPTIONS"], "connect_timeout": CONNECT_TIMEOUT},
        )
        try:
            yield server
        finally:
            connection.close()
            connection.settings_dict.update(saved)


def timed(client: Client, path: str, **headers: Any) -> tuple[int, float, str]:
    """(status, seconds, Retry-After) of a GET, or status 0 when it has not answered within BOUND
    (it is then left waiting in its thread until the server answers again)."""
    result: list[Any] = []
    started = time.monotonic()
    worker = threading.Thread(target=lambda: result.append(client.get(path, **headers)), daemon=True)
    worker.start()
    worker.join(BOUND)
    if not result:
        return 0, time.monotonic() - started, ""
    return result[0].status_code, time.monotonic() - started, result[0].get("Retry-After", "")


Answer = Callable[[], dict[str, tuple[int, float, str]]]


def in_process(coordinator: Any) -> Answer:
    """/health/, a page and the API through Django's test client, each request in a thread of its own."""
    client = Client(raise_request_exception=False)
    client.force_login(coordinator)  # a session in the private database
    paths = {"health": "/health/", "page": reverse("participant-list"), "api": "/api/v1/participants/"}
    return lambda: {
        name: timed(client, path, HTTP_ACCEPT="application/json" if name == "health" else "*/*") for name, path in paths.items()
    }


def outage(server: PostgresServer, answers: Answer, fault: str, record_property: Any, *, label: str = "") -> None:
    healthy = answers()
    assert {name: status for name, (status, _, _) in healthy.items()} == {"health": 200, "page": 200, "api": 200}, healthy
    break_it, mend = (server.freeze, server.thaw) if fault == "frozen" else (server.stop, server.start)
    break_it()
    try:
        down = answers()
    finally:
        mend()
    started = time.monotonic()
    wait_for(lambda: all(status == 200 for status, _, _ in answers().values()), 30, f"200 again after {fault}", every=0.5)
    recovered = time.monotonic() - started
    print(f"\nDatabase {fault}{label} (connect timeout {CONNECT_TIMEOUT} s): {down}; 200 again {recovered:.1f} s after")
    name = f"faults_database_{fault}{label.replace(' ', '_')}"
    record_property(f"{name}_requests", len(down))
    record_property(f"{name}_hung", sum(status == 0 for status, _, _ in down.values()))
    record_property(f"{name}_not_503", sum((status, retry) != (503, "30") for status, _, retry in down.values()))
    record_property(f"{name}_slowest_ms", int(max(seconds for _, seconds, _ in down.values()) * 1000))
    for path, (status, _, retry) in down.items():
        assert status != 0, f"{path} did not answer within {BOUND} s while the database was {fault}"
        assert (status, retry) == (503, "30"), (fault, path, status)


def test_a_stopped_database_answers_503_at_once_and_recovers_without_restart(
    private_database: PostgresServer, coordinator: Any, record_property: Any
) -> None:
    outage(private_database, in_process(coordinator), "stopped", record_property)


def test_a_frozen_database_answers_503_at_once_and_recovers_without_restart(
    private_database: PostgresServer, coordinator: Any, record_property: Any
) -> None:
    outage(private_database, in_process(coordinator), "frozen", record_property)


def test_through_gunicorn_a_kept_connection_to_a_frozen_database_gives_503_not_a_hang(
    private_database: PostgresServer, coordinator: Any, record_property: Any, tmp_path: Path
) -> None:
    """The web process as deployed keeps its connections (DATABASE_CONN_MAX_AGE 60, the default):
    each gunicorn worker holds one to the server when it freezes. The check of a kept connection
    gives up after the connect timeout, a new connection times out in turn: 503, not a hang."""
    client = Client()
    client.force_login(coordinator)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    env = {"DATABASE_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT), "OUTAGE_RETRY_AFTER_SECONDS": "30"}
    with gunicorn(workers=2, conn_max_age=60, directory=tmp_path / "web", extra_env=env) as (host, port):
        paths = {"health": "/health/", "page": reverse("participant-list"), "api": "/api/v1/participants/"}

        def get(path: str, accept: str) -> tuple[int, float, str]:
            started = time.monotonic()
            # At most three connect timeouts in a row (/health/: the check, a new connection, its own query).
            connection_ = http.client.HTTPConnection(host, port, timeout=3 * CONNECT_TIMEOUT + 6)
            try:
                connection_.request("GET", path, headers={"Cookie": cookie, "Accept": accept})
                response = connection_.getresponse()
                response.read()
                return response.status, time.monotonic() - started, response.headers.get("Retry-After", "")
            except TimeoutError:
                return 0, time.monotonic() - started, ""
            finally:
                connection_.close()

        def answers() -> dict[str, tuple[int, float, str]]:
            return {name: get(path, "application/json" if name != "page" else "text/html") for name, path in paths.items()}

        for _ in range(4):  # every worker holds a connection opened before the freeze
            answers()
        outage(private_database, answers, "frozen", record_property, label=" gunicorn")
