"""Leases on release builds: a build beats while it works; one whose worker died (no heartbeat for a
lease while ``building``) is failed by the sweep with a clear reason and its partial file removed,
and the user retries it from the page or the API as a new release of the same lock."""

# ruff: noqa: F811  (the release fixtures are imported from test_releases)
from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from closeout import tasks
from closeout.datalock.services import database_unlock
from closeout.models import Release, ReleaseStatus
from closeout.releases import export, services
from tests.closeout.test_releases import _fast_passwords, datamanager, dataset, fresh, locked, releases_dir, statistician  # noqa: F401
from trial.models import Trial


def building(release: Release, *, silent_for: dt.timedelta, progress: int = 80) -> None:
    """As a worker leaves it: claimed, 80 % built, last heartbeat ``silent_for`` ago."""
    Release.objects.filter(pk=release.pk).update(
        status=ReleaseStatus.BUILDING, progress=progress, heartbeat_at=timezone.now() - silent_for
    )


def test_a_build_whose_worker_stopped_is_failed_after_its_lease_and_its_partial_file_removed(
    locked: Trial, investigator: Any, releases_dir: Path, settings: Any
) -> None:
    settings.RELEASE_LEASE_SECONDS = 300
    dead = services.release_create(trial=locked, variant="blinded", by=fresh(investigator))
    alive = services.release_create(trial=locked, variant="blinded", by=fresh(investigator))
    building(dead, silent_for=dt.timedelta(minutes=6))
    building(alive, silent_for=dt.timedelta(minutes=4), progress=40)  # slow, but it beat within its lease
    releases_dir.mkdir(parents=True)
    partial = releases_dir / f".{services.zip_name(dead)}.1a2b3c4d.partial"
    partial.write_bytes(b"half a zip")
    other = releases_dir / f".{services.zip_name(alive)}.5e6f7a8b.partial"
    other.write_bytes(b"a live build's file")

    assert tasks.sweep_release_builds.apply().get() == {"failed": 1, "requeued": 0}
    assert tasks.sweep_release_builds.apply().get() == {"failed": 0, "requeued": 0}  # safe to run twice

    dead.refresh_from_db()
    assert dead.status == ReleaseStatus.FAILED and dead.error == "The worker building it stopped; retry."
    assert dead.finished_at is not None and dead.progress == 80
    assert not partial.exists() and other.exists()
    alive.refresh_from_db()
    assert alive.status == ReleaseStatus.BUILDING and alive.error == ""


def test_a_build_failed_by_the_sweep_while_it_still_ran_keeps_no_file_and_stays_failed(
    locked: Trial, investigator: Any, releases_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its heartbeat could not be written for a whole lease (say the database was unreachable):
    the sweep failed it, so its result is not recorded ready and its zip not kept."""
    release = services.release_create(trial=locked, variant="blinded", by=fresh(investigator))

    def slow_write(*, target: Any, progress: Any, **kwargs: Any) -> export.Built:
        target.write(b"a complete zip")
        progress(50)
        services.release_builds_sweep(now=timezone.now() + dt.timedelta(hours=1))
        return export.Built(files=[], zip_sha256="0" * 64, zip_bytes=14)

    monkeypatch.setattr(export, "release_zip_write", slow_write)
    result = services.release_build(release_id=release.pk)
    assert result is not None and result.status == ReleaseStatus.FAILED and result.error == services.WORKER_STOPPED
    assert not releases_dir.exists() or list(releases_dir.iterdir()) == []


def test_a_build_beats_between_progress_steps(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long step (the analysis) never looks like a dead worker: a thread writes the heartbeat
    every fifth of the lease, and stops with the build."""
    settings.RELEASE_LEASE_SECONDS = 1
    beats: list[int | None] = []
    monkeypatch.setattr(services._Progress, "_write", lambda self, percent: beats.append(percent))
    progress = services._Progress(release_id=0)
    progress(10)
    time.sleep(0.7)
    progress.close()
    assert beats[0] == 10 and beats.count(None) >= 2
    count = len(beats)
    time.sleep(0.4)
    assert len(beats) == count and not progress.thread.is_alive()


def test_a_failed_release_is_retried_from_the_page_as_the_next_release_of_the_same_lock(
    locked: Trial, investigator: Any, releases_dir: Path, client: Any
) -> None:
    failed = services.release_create(trial=locked, variant="blinded", by=fresh(investigator))
    building(failed, silent_for=dt.timedelta(hours=1))
    services.release_builds_sweep()
    client.force_login(investigator)
    page = client.get("/releases/").content.decode()
    assert "The worker building it stopped; retry." in page and 'data-testid="release-retry"' in page
    assert 'aria-label="Retry release 1"' in page

    response = client.post(f"/releases/{failed.pk}/retry/")
    assert response.status_code == 302
    retry = Release.objects.get(retry_of=failed)
    assert (retry.number, retry.lock_id, retry.variant, retry.status) == (2, failed.lock_id, "blinded", ReleaseStatus.QUEUED)
    client.post(f"/releases/{failed.pk}/retry/")  # twice (a double click): still one retry
    assert Release.objects.count() == 2
    page = client.get("/releases/").content.decode()
    assert "Retried as release 2." in page and 'data-testid="release-retry"' not in page

    built = services.release_build(release_id=retry.pk)
    assert built is not None and built.status == ReleaseStatus.READY, built and built.error
    assert (releases_dir / built.zip_name).is_file()
    failed.refresh_from_db()
    assert failed.status == ReleaseStatus.FAILED  # the failed one stays, with its reason


def test_the_api_retries_a_failed_release_and_refuses_others_with_a_clear_409(
    locked: Trial, investigator: Any, password: str, releases_dir: Path, api: APIClient
) -> None:
    failed = services.release_create(trial=locked, variant="blinded", by=fresh(investigator))
    queued = services.release_create(trial=locked, variant="blinded", by=fresh(investigator))
    building(failed, silent_for=dt.timedelta(hours=1))
    services.release_builds_sweep()
    api.force_authenticate(fresh(investigator))

    detail = api.get(f"/api/v1/releases/{failed.pk}/").json()
    assert (
        detail["status"] == "failed"
        and detail["error"] == "The worker building it stopped; retry."
        and detail["retry_of"] is None
    )
    response = api.post(f"/api/v1/releases/{failed.pk}/retry/")
    assert response.status_code == 202, response.content
    retry_id = response.json()["id"]
    assert response.json()["status"] == "queued" and api.get(f"/api/v1/releases/{retry_id}/").json()["retry_of"] == failed.pk
    assert api.post(f"/api/v1/releases/{failed.pk}/retry/").json()["id"] == retry_id  # the same retry

    response = api.post(f"/api/v1/releases/{queued.pk}/retry/")
    assert response.status_code == 409 and "only a failed release is retried" in response.json()["detail"]
    assert api.post("/api/v1/releases/999999/retry/").status_code == 404

    # A lock undone since: the failed release's data may have changed, so it is not built again.
    other = services.release_create(trial=locked, variant="blinded", by=fresh(investigator))
    building(other, silent_for=dt.timedelta(hours=1))
    services.release_builds_sweep()
    database_unlock(trial=locked, user=fresh(investigator), password=password, reason="A late questionnaire")
    response = api.post(f"/api/v1/releases/{other.pk}/retry/")
    assert response.status_code == 409 and "has been undone since" in response.json()["detail"]


def test_a_release_left_queued_when_the_broker_was_down_is_queued_again_once_a_lease(
    locked: Trial, investigator: Any, releases_dir: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.RELEASE_LEASE_SECONDS = 300
    with django_capture_on_commit_callbacks(execute=False):  # the broker was down: never queued
        release = services.release_create(trial=locked, variant="blinded", by=fresh(investigator))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.release_builds_sweep()["requeued"] == 0  # fresh: its task may be on its way
    assert callbacks == []
    Release.objects.filter(pk=release.pk).update(created_at=timezone.now() - dt.timedelta(minutes=6))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.release_builds_sweep() == {"failed": 0, "requeued": 1}
        assert services.release_builds_sweep() == {"failed": 0, "requeued": 0}  # once a lease
    assert len(callbacks) == 1
    callbacks[0]()  # the build runs (in process here)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.READY
