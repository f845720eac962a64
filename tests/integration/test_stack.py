"""The production processes, run exactly as docker/entrypoint.sh runs them, against the
configured database and broker (embedded PostgreSQL and the filesystem broker by default;
PostgreSQL and Redis in CI's second pass)."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from tests.integration.workers import processes_stop
from trial import services
from trial.models import Heartbeat

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    db = connection.settings_dict
    host = db["HOST"]
    if host.startswith("/"):
        host = quote(host, safe="")
    elif db.get("PORT"):
        host = f"{host}:{db['PORT']}"
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    return f"postgres://{quote(db['USER'], safe='')}{password}@{host}/{db['NAME']}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, object]]:
    from trial.celery import app

    app.conf.task_always_eager = False  # this test's tasks must travel through the broker
    services.periodic_tasks_sync()  # the rows beat reads (the test database was flushed)
    # Make the heartbeat due now rather than one interval after beat starts.
    PeriodicTask.objects.filter(task="trial.heartbeat").update(last_run_at=timezone.now() - dt.timedelta(minutes=5))
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DATABASE_TEST_NAME": "unused",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL if settings.CELERY_BROKER_URL != "filesystem://" else "",
        "WALKBACK_VAR_DIR": str(settings.VAR_DIR),
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "CELERY_CONCURRENCY": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    # as the Docker image is built: static files collected, then the processes started
    env["DJANGO_STATIC_ROOT"] = str(tmp_path / "static")
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    logs = {}
    procs = {}
    for name in ("web", "worker", "beat"):
        logs[name] = tmp_path / f"{name}.log"
        procs[name] = subprocess.Popen(
            ["bash", str(ROOT / "docker" / "entrypoint.sh"), name],
            cwd=ROOT,
            env=env,
            stdout=logs[name].open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield {"url": f"http://127.0.0.1:{port}", "procs": procs, "logs": logs}
    finally:
        app.conf.task_always_eager = True
        processes_stop(procs.values())


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def test_gunicorn_worker_and_beat_run_as_docker_runs_them(stack: dict) -> None:
    url = stack["url"]
    logs = stack["logs"]

    def dump() -> str:
        return "\n".join(f"--- {name}\n{path.read_text()[-3000:]}" for name, path in logs.items())

    # web answers and reports database and broker healthy
    try:
        _wait_for(lambda: _get(f"{url}/health/?format=json")[0] == 200, 60, "/health/ to answer 200")
    except AssertionError:
        pytest.fail(dump())
    status, body = _get(f"{url}/health/?format=json")
    assert json.loads(body) == {"Database(alias='default')": "OK", "Broker()": "OK"}
    status, page = _get(f"{url}/accounts/login/")
    assert status == 200
    css = page.decode().split('rel="stylesheet" href="')[1].split('"')[0]
    assert _get(f"{url}{css}")[0] == 200, "static files are served by the web process itself"

    # beat sends the heartbeat on start, the worker consumes it and writes to the database
    try:
        _wait_for(lambda: Heartbeat.objects.filter(name="worker").exists(), 90, "beat -> broker -> worker -> database")
    except AssertionError:
        pytest.fail(dump())

    # a task queued from this process reaches the worker too
    from trial.tasks import heartbeat

    heartbeat.delay(name="queued-by-test")
    try:
        _wait_for(lambda: Heartbeat.objects.filter(name="queued-by-test").exists(), 60, "a queued task to run")
    except AssertionError:
        pytest.fail(dump())
    for name, proc in stack["procs"].items():
        assert proc.poll() is None, f"{name} died\n{dump()}"
