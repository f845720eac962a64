"""Load generation for randomisation: used by ``bench_randomise`` and the concurrency tests."""

from __future__ import annotations

import datetime as dt
import queue
import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from bench import threads_run
from followup.baseline import BASELINE_INSTRUMENT, BASELINE_MONTH, BASELINE_OPEN_DAYS
from followup.models import InstrumentVersion, Occurrence, OccurrenceStatus, QuestionnaireResponse, ResponseSource
from participants import services
from participants.models import Consent, Participant, ParticipantStratum, Screening, ScreeningOutcome
from participants.selectors import consent_document_current
from trial.models import Allocation, Trial


@transaction.atomic
def participants_make_ready(*, trial: Trial, count: int, by: Any, seed: int = 0, prefix: str = "LOAD") -> list[int]:
    """``count`` eligible, consented participants with every stratification answer, spread over sites
    and strata, created in bulk (the path under test is randomisation, not enrolment)."""
    rng = random.Random(seed)
    sites = list(trial.sites.order_by("code"))
    factors = list(trial.strata.prefetch_related("levels").order_by("code"))
    document = consent_document_current(trial=trial)
    if document is None:
        raise ValueError("Publish a consent document first.")
    today = timezone.localdate()
    answers = {c.code: c.kind == "inclusion" for c in trial.eligibility.filter(active=True)}
    screenings = Screening.objects.bulk_create(
        [
            Screening(
                site=sites[i % len(sites)],
                screened_on=today,
                answers=answers,
                eligible=True,
                reasons=[],
                outcome=ScreeningOutcome.ENROLLED,
                recorded_by=by,
            )
            for i in range(count)
        ],
        batch_size=1000,
    )
    participants = Participant.objects.bulk_create(
        [
            Participant(screening=s, site=s.site, study_id=f"{prefix}-{s.site.code}-{s.pk:07d}", enrolled_by=by)
            for s in screenings
        ],
        batch_size=1000,
    )
    ParticipantStratum.objects.bulk_create(
        [
            ParticipantStratum(participant=p, factor=f, level=rng.choice(list(f.levels.all())))
            for p in participants
            for f in factors
        ],
        batch_size=2000,
    )
    Consent.objects.bulk_create(
        [
            Consent(
                screening=p.screening, participant=p, document=document, method="in_person", signed_name="Load Test", taken_by=by
            )
            for p in participants
        ],
        batch_size=1000,
    )
    _baselines_complete(trial=trial, participants=participants, by=by)
    return [p.pk for p in participants]


def _baselines_complete(*, trial: Trial, participants: list[Participant], by: Any) -> None:
    """Ready includes a completed baseline questionnaire, when the trial has one (its answers are
    left empty: only randomisation is under test)."""
    version = InstrumentVersion.objects.filter(trial=trial, code=BASELINE_INSTRUMENT).order_by("-published_at").first()
    if version is None:
        return
    now = timezone.now()
    occurrences = Occurrence.objects.bulk_create(
        [
            Occurrence(
                participant=p,
                instrument=BASELINE_INSTRUMENT,
                month=BASELINE_MONTH,
                due_date=timezone.localdate(),
                opens_at=now,
                closes_at=now + dt.timedelta(days=BASELINE_OPEN_DAYS),
                status=OccurrenceStatus.COMPLETED,
                completed_at=now,
            )
            for p in participants
        ],
        batch_size=1000,
    )
    QuestionnaireResponse.objects.bulk_create(
        [
            QuestionnaireResponse(
                occurrence=o, instrument_version=version, answers={}, source=ResponseSource.STAFF, entered_by=by, submitted_at=now
            )
            for o in occurrences
        ],
        batch_size=1000,
    )


@dataclass
class LoadResult:
    requested: int
    clients: int
    elapsed: float
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    already: int = 0

    @property
    def allocations_per_second(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def _attempt(*, participant_id: int, by: Any, result: LoadResult, lock: threading.Lock) -> None:
    """One randomisation request, its outcome counted in ``result``."""
    started = time.perf_counter()
    try:
        services.participant_randomise(participant_id=participant_id, by=by)
        with lock:
            result.latencies.append(time.perf_counter() - started)
    except services.AlreadyRandomised:
        with lock:
            result.already += 1
    except Exception as exc:
        with lock:
            result.failures.append(f"{type(exc).__name__}: {exc}")


def randomise_concurrently(*, participant_ids: list[int], clients: int, by: Any) -> LoadResult:
    """``clients`` threads, each with its own database connection, randomise every id once."""
    work: queue.Queue[int] = queue.Queue()
    for pk in participant_ids:
        work.put(pk)
    result = LoadResult(requested=len(participant_ids), clients=clients, elapsed=0.0)
    lock = threading.Lock()

    def client() -> None:
        try:
            while True:
                try:
                    pk = work.get_nowait()
                except queue.Empty:
                    return
                _attempt(participant_id=pk, by=by, result=result, lock=lock)
        finally:
            connection.close()

    result.elapsed = threads_run(clients=clients, target=client)
    return result


def hammer_one_participant(*, participant_id: int, clients: int, by: Any) -> LoadResult:
    """``clients`` threads released at once, all randomising the same participant."""
    barrier = threading.Barrier(clients)
    result = LoadResult(requested=clients, clients=clients, elapsed=0.0)
    lock = threading.Lock()

    def client() -> None:
        try:
            barrier.wait()
            _attempt(participant_id=participant_id, by=by, result=result, lock=lock)
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.elapsed = time.perf_counter() - started
    return result


@dataclass(frozen=True)
class IntegrityReport:
    allocations: int
    duplicate_slots: int
    participants_with_two_allocations: int
    strata_with_gaps: int


def allocation_integrity(*, trial: Trial) -> IntegrityReport:
    """Counts that must all be zero: slots used twice, participants allocated twice, and strata whose
    used positions are not exactly 1..n (a skipped or reused slot)."""
    allocations = Allocation.objects.filter(arm__trial=trial)
    dup_slots = allocations.exclude(slot=None).values("slot").annotate(n=Count("id")).filter(n__gt=1).count()
    dup_participants = allocations.values("participant").annotate(n=Count("id")).filter(n__gt=1).count()
    gaps = 0
    for row in (
        allocations.exclude(slot=None)
        .values("stratum_key")
        .annotate(n=Count("id"), lo=Min("slot__position"), hi=Max("slot__position"))
        .order_by()
    ):
        if row["lo"] != 1 or row["hi"] != row["n"]:
            gaps += 1
    return IntegrityReport(allocations.count(), dup_slots, dup_participants, gaps)


def summary(result: LoadResult, report: IntegrityReport) -> dict[str, Any]:
    return {
        "clients": result.clients,
        "allocations": len(result.latencies),
        "seconds": round(result.elapsed, 2),
        "allocations_per_second": round(result.allocations_per_second, 1),
        "p50_ms": round(result.percentile(50) * 1000, 1),
        "p95_ms": round(result.percentile(95) * 1000, 1),
        "mean_ms": round(statistics.fmean(result.latencies) * 1000, 1) if result.latencies else 0.0,
        "failures": len(result.failures),
        "duplicate_slots": report.duplicate_slots,
        "participants_with_two_allocations": report.participants_with_two_allocations,
        "strata_with_gaps": report.strata_with_gaps,
    }


def _process_client(ids: list[int], user_id: int, results: Any) -> None:  # pragma: no cover - runs in a child process
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(pk=user_id)
    latencies, failures, already = [], [], 0
    for pk in ids:
        started = time.perf_counter()
        try:
            services.participant_randomise(participant_id=pk, by=user)
            latencies.append(time.perf_counter() - started)
        except services.AlreadyRandomised:
            already += 1
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
    connection.close()
    results.put((latencies, failures, already))


def randomise_in_processes(*, participant_ids: list[int], clients: int, by: Any) -> LoadResult:
    """Like ``randomise_concurrently`` but each client is a process, as web workers are in production."""
    import multiprocessing

    from django.db import connections

    connections.close_all()  # children must open their own connections
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    chunks = [participant_ids[i::clients] for i in range(clients)]
    processes = [context.Process(target=_process_client, args=(chunk, by.pk, results)) for chunk in chunks]
    started = time.perf_counter()
    for process in processes:
        process.start()
    outcome = LoadResult(requested=len(participant_ids), clients=clients, elapsed=0.0)
    for _ in processes:
        latencies, failures, already = results.get()
        outcome.latencies += latencies
        outcome.failures += failures
        outcome.already += already
    for process in processes:
        process.join()
    outcome.elapsed = time.perf_counter() - started
    return outcome
