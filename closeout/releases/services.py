"""Dataset releases: created from the current lock (built on commit by a task), built once, downloaded
with an audit record. The zips live under ``VAR_DIR/releases``."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import secrets
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Max
from django.db.models.functions import Coalesce
from django.utils import timezone

from closeout.datalock.services import lock_current
from closeout.models import Release, ReleaseStatus, ReleaseVariant
from closeout.releases import analyse, export, selectors
from trial import access
from trial.access import Perm
from trial.audit import security_event_record
from trial.errors import ApplicationError, Conflict, NotAllowed, NotFound
from trial.models import SecurityEventKind, Trial
from trial.tasking import queue_on_commit

logger = logging.getLogger(__name__)

NOT_LOCKED = "The database is not locked: a release is built from a locked database, once an investigator has signed the lock."
WORKER_STOPPED = "The worker building it stopped; retry."


def releases_dir() -> Path:
    return Path(settings.VAR_DIR) / "releases"


def _may_create(user: Any, trial: Trial) -> None:
    access.require(
        user, Perm.CREATE_RELEASE, trial=trial, message="Only investigators and statisticians work with dataset releases."
    )


def _may_have_variant(user: Any, trial: Trial, variant: str) -> None:
    if variant == ReleaseVariant.UNBLINDED and not access.can_see_allocation(user, trial=trial):
        raise NotAllowed("Your role does not see allocations, so it may not have an unblinded release; choose blinded.")


@transaction.atomic
def release_create(*, trial: Trial, variant: str, by: Any) -> Release:
    """Number a new release of the current lock and queue its build once this transaction commits."""
    _may_create(by, trial)
    if variant not in ReleaseVariant.values:
        raise ApplicationError("Choose the variant: blinded or unblinded.", errors={"variant": ["blinded or unblinded."]})
    trial = Trial.objects.select_for_update().get(pk=trial.pk)  # numbers are given one at a time
    lock = lock_current(trial=trial)
    if trial.data_locked_at is None or lock is None:
        raise Conflict(NOT_LOCKED)
    _may_have_variant(by, trial, variant)
    number = (Release.objects.filter(trial=trial).aggregate(last=Max("number"))["last"] or 0) + 1
    release = Release.objects.create(trial=trial, lock=lock, number=number, variant=variant, created_by=by)

    queue_on_commit("trial.build_release", release.pk)
    return release


def zip_name(release: Release) -> str:
    return f"{release.trial.code}-release-{release.number:03d}-{release.variant}.zip"


def release_lease() -> dt.timedelta:
    """How long a build may be silent before it is taken for dead (``RELEASE_LEASE_SECONDS``)."""
    return dt.timedelta(seconds=settings.RELEASE_LEASE_SECONDS)


class _Progress:
    """Writes a build's progress and heartbeat on a connection of its own, so the page sees it while
    the build's snapshot transaction is still open. A thread also beats every fifth of the lease
    between progress steps, so a long step never looks like a dead worker; it dies with the process,
    so a killed worker's build falls silent and the sweep fails it once its lease has passed."""

    def __init__(self, release_id: int) -> None:
        self.release_id = release_id
        self.connection = connections.create_connection(DEFAULT_DB_ALIAS)
        self.connection.inc_thread_sharing()  # the beating thread writes on it too, one at a time
        self.lock = threading.Lock()
        self.last = -1
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"release-{release_id}-heartbeat", daemon=True)
        self.thread.start()

    def _write(self, percent: int | None) -> None:
        with self.lock, self.connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Release._meta.db_table} SET progress = COALESCE(%s, progress), heartbeat_at = %s "  # noqa: S608
                "WHERE id = %s AND status = %s",
                [percent, timezone.now(), self.release_id, ReleaseStatus.BUILDING],
            )

    def __call__(self, percent: int) -> None:
        if percent == self.last:
            return
        self._write(percent)
        self.last = percent

    def _beat(self) -> None:
        interval = release_lease().total_seconds() / 5
        while not self.stopped.wait(interval):
            try:
                self._write(None)
            except Exception:  # a missed beat; the next one tries again
                logger.warning("Release %s: could not write the build's heartbeat", self.release_id, exc_info=True)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.connection.close()


def release_build(*, release_id: int) -> Release | None:
    """Build a queued release; None when another run has it already (safe to run twice).

    Not one transaction: the claim (queued -> building) commits first, the files are read in the
    export's own snapshot transaction, and the result (ready, or failed with the reason) is one
    last update. The zip is written under a temporary name and renamed once complete."""
    claimed = Release.objects.filter(pk=release_id, status=ReleaseStatus.QUEUED).update(
        status=ReleaseStatus.BUILDING, progress=0, heartbeat_at=timezone.now()
    )
    if not claimed:
        return None
    release = Release.objects.select_related("trial", "lock").get(pk=release_id)
    directory = releases_dir()
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / zip_name(release)
    partial = directory / f".{final.name}.{secrets.token_hex(4)}.partial"
    progress = _Progress(release.pk)
    try:
        with open(partial, "w+b") as target:
            built = export.release_zip_write(
                trial=release.trial, lock=release.lock, variant=release.variant, target=target, progress=progress
            )
            target.flush()
            os.fsync(target.fileno())
        os.replace(partial, final)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        logger.exception("Release %s of trial %s failed", release.number, release.trial.code)
        message = exc.message if isinstance(exc, ApplicationError) else f"The build failed: {type(exc).__name__}: {exc}"
        # Unless the sweep failed it already (its heartbeat could not be written for a whole lease).
        Release.objects.filter(pk=release.pk, status=ReleaseStatus.BUILDING).update(
            status=ReleaseStatus.FAILED, error=message[:500], finished_at=timezone.now()
        )
        release.refresh_from_db()
        return release
    finally:
        progress.close()
    ready = Release.objects.filter(pk=release.pk, status=ReleaseStatus.BUILDING).update(
        status=ReleaseStatus.READY,
        progress=100,
        files=[{"name": f.name, "rows": f.rows, "sha256": f.sha256} for f in built.files],
        zip_name=final.name,
        zip_sha256=built.zip_sha256,
        zip_bytes=built.zip_bytes,
        error="",
        finished_at=timezone.now(),
    )
    if not ready:  # the sweep failed it meanwhile (no heartbeat for a whole lease): it is retried, not kept
        final.unlink(missing_ok=True)
        logger.warning(
            "Release %s of trial %s was failed by the sweep while it built; its file is removed",
            release.number,
            release.trial.code,
        )
    release.refresh_from_db()
    return release


def _files_remove(release: Release) -> list[str]:
    """Remove what a build of ``release`` left in the releases directory: its partial files, and its
    zip if the worker died after writing it but before recording it ready. Returns the names."""
    directory = releases_dir()
    final = zip_name(release)
    leftovers = [*directory.glob(f".{final}.*.partial"), directory / final]
    removed = []
    for path in leftovers:
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def release_builds_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The sweep over release builds (beat, every minute; safe to run twice or at once).

    A build whose heartbeat is older than the lease while it is ``building`` lost its worker: it is
    marked failed with the reason, and its partial file removed; the user may retry it. A release
    ``queued`` for longer than the lease (the broker was down when it was created) has its build
    queued again, once per lease. Returns how many of each."""
    now = now or timezone.now()
    stale = now - release_lease()
    last_sign = Coalesce("heartbeat_at", "created_at")
    failed = 0
    for release in (
        Release.objects.alias(last_sign=last_sign)
        .filter(status=ReleaseStatus.BUILDING, last_sign__lt=stale)
        .select_related("trial")
    ):
        # Conditional on the same staleness: a build that beat meanwhile is alive and kept.
        if (
            Release.objects.alias(last_sign=last_sign)
            .filter(pk=release.pk, status=ReleaseStatus.BUILDING, last_sign__lt=stale)
            .update(status=ReleaseStatus.FAILED, error=WORKER_STOPPED, finished_at=now)
        ):
            failed += 1
            removed = _files_remove(release)
            logger.warning(
                "Release %s of trial %s: its worker stopped (no heartbeat since %s); failed, removed %s",
                release.number,
                release.trial.code,
                release.heartbeat_at or release.created_at,
                removed or "no file",
            )
    requeued = 0
    for release_id in (
        Release.objects.alias(last_sign=last_sign)
        .filter(status=ReleaseStatus.QUEUED, last_sign__lt=stale)
        .values_list("pk", flat=True)
    ):
        if Release.objects.filter(pk=release_id, status=ReleaseStatus.QUEUED).update(heartbeat_at=now):
            requeued += 1
            queue_on_commit("trial.build_release", release_id)
    return {"failed": failed, "requeued": requeued}


@transaction.atomic
def release_retry(*, release: Release, by: Any) -> Release:
    """Build a failed release again, as a new release of the same lock and variant (the failed one
    stays in the list with its reason). Both builds of one lock are byte-identical, so the retry
    is exactly the release that failed, under the next number. Retrying again returns the same retry."""
    trial = release.trial
    _may_create(by, trial)
    _may_have_variant(by, trial, release.variant)
    trial = Trial.objects.select_for_update().get(pk=trial.pk)  # numbers are given one at a time
    release = Release.objects.select_related("lock").get(pk=release.pk)
    existing = Release.objects.filter(retry_of=release).first()
    if existing is not None:
        return existing
    if release.status != ReleaseStatus.FAILED:
        raise Conflict(f"Release {release.number} is {release.get_status_display().lower()}: only a failed release is retried.")
    lock = lock_current(trial=trial)
    if trial.data_locked_at is None or lock is None or lock.pk != release.lock_id:
        raise Conflict(
            f"Release {release.number} was of lock v{release.lock.version}, which has been undone since: "
            "create a release from the current lock."
        )
    number = (Release.objects.filter(trial=trial).aggregate(last=Max("number"))["last"] or 0) + 1
    retry = Release.objects.create(
        trial=trial, lock=lock, number=number, variant=release.variant, created_by=by, retry_of=release
    )
    queue_on_commit("trial.build_release", retry.pk)
    return retry


@transaction.atomic
def release_download(*, release: Release, by: Any, ip_address: str | None = None) -> Path:
    """The zip's path, once the download is recorded in the audit trail (who, when, which file)."""
    trial = release.trial
    _may_create(by, trial)
    _may_have_variant(by, trial, release.variant)
    if release.status != ReleaseStatus.READY:
        raise Conflict(
            f"Release {release.number} is {release.get_status_display().lower()}: it can be downloaded once it is ready."
        )
    path = releases_dir() / release.zip_name
    if not path.is_file():
        raise NotFound(f"The file of release {release.number} is missing from the server.")
    security_event_record(
        kind=SecurityEventKind.DOWNLOAD,
        user=by,
        ip_address=ip_address,
        detail={
            "release": release.number,
            "file": release.zip_name,
            "variant": release.variant,
            "lock_version": release.lock.version,
            "sha256": release.zip_sha256,
        },
    )
    return path


@dataclass(frozen=True)
class ReleaseAnalysis:
    release: Release
    results: dict[str, Any] | None  # None: built before releases carried the analysis
    figures: dict[str, str]  # outcome code -> the Kaplan-Meier SVG as a data: URL


def release_analysis_read(*, trial: Trial, by: Any) -> ReleaseAnalysis | None:
    """The analysis of the newest ready release ``by`` may download: an unblinded one first for a
    role that sees arms, else the newest blinded one (pooled results only). None when there is none."""
    _may_create(by, trial)
    variants = [ReleaseVariant.BLINDED.value]
    if access.can_see_allocation(by, trial=trial):
        variants.insert(0, ReleaseVariant.UNBLINDED.value)
    ready = {
        release.variant: release for release in selectors.release_list(trial=trial).filter(status=ReleaseStatus.READY).reverse()
    }
    release = next((ready[variant] for variant in variants if variant in ready), None)
    if release is None:
        return None
    _may_have_variant(by, trial, release.variant)
    path = releases_dir() / release.zip_name
    if not path.is_file():
        raise NotFound(f"The file of release {release.number} is missing from the server.")
    with zipfile.ZipFile(path) as archive:
        names = {info.filename.split("/", 1)[-1]: info.filename for info in archive.infolist()}
        results_name = f"{export.SAP_FOLDER}/{analyse.RESULTS}"
        if results_name not in names:
            return ReleaseAnalysis(release=release, results=None, figures={})
        results = json.loads(archive.read(names[results_name]))
        figures = {}
        for code, figure in results.get("figures", {}).items():
            svg = archive.read(names[f"{export.SAP_FOLDER}/{figure['svg']}"])
            figures[code] = "data:image/svg+xml;base64," + base64.b64encode(svg).decode()
    return ReleaseAnalysis(release=release, results=results, figures=figures)
