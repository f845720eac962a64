"""A real Celery worker on Redis, killed with SIGKILL in the middle of building a dataset release.

The build falls silent (its heartbeat thread dies with the process) and stays ``building`` with a
partial file; once its lease has passed the sweep fails it with a clear reason and removes the
file; the investigator retries it, a new worker builds the retry, and it is the release that failed
(byte-identical to a build of the same lock). The killed build's task, delivered again, changes
nothing. Runs against the configured database and Redis (CI's second pass); skipped with the
filesystem broker."""

# ruff: noqa: F811  (the release fixtures are imported from test_releases)
from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse
from rest_framework.test import APIClient

from closeout import tasks
from closeout.models import Release, ReleaseStatus
from closeout.releases import services
from tests.closeout.test_releases import (  # noqa: F401
    _fast_passwords,
    datamanager,
    dataset,
    fresh,
    locked,
    releases_dir,
    statistician,
)
from tests.integration.test_stack import _database_url, _wait_for
from tests.integration.workers import celery_workers
from trial.models import Trial

pytestmark = [
    pytest.mark.integration,
    pytest.mark.faults,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL.startswith("redis"),
        reason="needs a real broker: run with CELERY_BROKER_URL=redis://... (CI's second pass)",
    ),
]

LEASE = 4  # seconds: the worker beats every fifth of it


@pytest.fixture
def workers(tmp_path: Path, releases_dir: Path) -> Iterator[dict[str, Any]]:
    """start() runs a Celery worker exactly as docker/entrypoint.sh does, on this test's releases
    directory (with this installation's keys: the worker refuses to start on keys that do not match
    the data), each build step slowed to half a second; every worker left is stopped."""
    import trial.settings as installed

    for name in ("secret_key", "lock_signing_key"):
        if (Path(installed.VAR_DIR) / name).exists():
            shutil.copy2(Path(installed.VAR_DIR) / name, releases_dir.parent / name)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.integration.release_kill_settings",
        "SLOW_RELEASE_STEP_SECONDS": "0.5",
        "RELEASE_LEASE_SECONDS": str(LEASE),
        "DATABASE_URL": _database_url(),
        "DATABASE_TEST_NAME": "unused",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "WALKBACK_VAR_DIR": str(releases_dir.parent),
        "CELERY_CONCURRENCY": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    with celery_workers(tmp_path, env) as workers:
        yield workers


def _status(release: Release) -> tuple[str, int]:
    release.refresh_from_db()
    return release.status, release.progress


def test_a_worker_killed_mid_release_leaves_a_build_the_sweep_fails_and_the_retry_rebuilds_identically(
    locked: Trial, investigator: Any, releases_dir: Path, workers: dict[str, Any], settings: Any, record_property: Any
) -> None:
    settings.RELEASE_LEASE_SECONDS = LEASE
    release = services.release_create(trial=locked, variant="blinded", by=fresh(investigator))

    # Worker 1 takes the build and is killed once it has written part of the zip.
    first = workers["start"]()
    try:
        _wait_for(
            lambda: (
                _status(release)[0] == ReleaseStatus.BUILDING
                and 0 < release.progress < 95
                and list(releases_dir.glob("*.partial"))
            ),
            120,
            "worker 1 to be part-way through the build",
        )
    except AssertionError:
        pytest.fail(workers["dump"]())
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    status, progress = _status(release)
    assert status == ReleaseStatus.BUILDING and 0 < progress < 95, (status, progress)
    partials = list(releases_dir.glob("*.partial"))
    assert len(partials) == 1 and not list(releases_dir.glob("*.zip"))
    beat = release.heartbeat_at

    # Within its lease the sweep leaves it alone; the build is silent: nobody beats for it any more.
    assert tasks.sweep_release_builds.apply().get() == {"failed": 0, "requeued": 0}
    time.sleep(LEASE + 1)
    release.refresh_from_db()
    assert release.heartbeat_at == beat and release.status == ReleaseStatus.BUILDING

    # The lease has passed: failed with the reason, its partial file gone; safe to sweep twice.
    assert tasks.sweep_release_builds.apply().get() == {"failed": 1, "requeued": 0}
    assert tasks.sweep_release_builds.apply().get() == {"failed": 0, "requeued": 0}
    release.refresh_from_db()
    assert release.status == ReleaseStatus.FAILED and release.error == services.WORKER_STOPPED
    assert release.progress == progress and release.finished_at is not None
    assert not list(releases_dir.iterdir())

    # The killed build's task, delivered again (acks_late), finds it failed and changes nothing.
    assert services.release_build(release_id=release.pk) is None
    assert _status(release)[0] == ReleaseStatus.FAILED and not list(releases_dir.iterdir())

    # The investigator retries it from the API; a new worker builds the retry.
    api = APIClient()
    api.force_authenticate(fresh(investigator))
    answer = api.post(reverse("api-release-retry", args=[release.pk]), format="json")
    assert answer.status_code == 202, answer.content
    retry = Release.objects.get(retry_of=release)
    assert retry.number == release.number + 1 and retry.variant == release.variant and retry.lock_id == release.lock_id
    workers["start"]()
    try:
        _wait_for(lambda: _status(retry)[0] in {ReleaseStatus.READY, ReleaseStatus.FAILED}, 120, "worker 2 to build the retry")
    except AssertionError:
        pytest.fail(workers["dump"]())
    assert retry.status == ReleaseStatus.READY, retry.error
    assert [path.name for path in releases_dir.iterdir()] == [retry.zip_name]

    # The retry is the release that failed: byte for byte a build of the same lock in this process.
    settings.VAR_DIR = releases_dir.parent / "again"
    again = services.release_build(release_id=services.release_create(trial=locked, variant="blinded", by=fresh(investigator)).pk)
    assert again is not None and again.status == ReleaseStatus.READY
    assert retry.zip_sha256 == again.zip_sha256 == sha256((releases_dir / retry.zip_name).read_bytes()).hexdigest()
    record_property("faults_release_kill_progress_at_kill", progress)
    record_property("faults_release_kill_left_building", 0)
    record_property("faults_release_kill_files_left", 0)
    record_property("faults_release_kill_retry_identical", 1)
