"""Load generation for the message sweep: used by ``bench_reminders`` and its test.

The benchmark day is a steady state: participants randomised over the previous three years,
each with a full schedule (some 40 questionnaires), and the sweeps of the days before already
run. Each participant's current monthly window opened today, or as many days ago as a reminder
is due, so one sweep at ``now`` has about one message per participant to send.
"""

from __future__ import annotations

import datetime as dt
import random
import resource
import secrets
import time
import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pgtrigger
from django.contrib.auth import get_user_model
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection, transaction
from django.db.models import Count, F, Q

from followup import services
from followup.models import Occurrence, ScheduleRule
from followup.scheduling import Planned, add_months, plan
from messaging import kinds
from messaging import services as messaging
from messaging.models import Message, MessageStatus
from participants import links
from participants.models import AccessLink, Channel, ContactDetails, Participant, ParticipantStatus
from presets.services import preset_apply
from presets.walkback import WALKBACK
from trial import services as trial_services
from trial.models import Allocation, Arm, RandomisationMethod, Trial

# 14:00 in Sydney and Brisbane (June: no daylight saving), clear of quiet hours.
BENCH_NOW = dt.datetime(2027, 6, 16, 4, 0, tzinfo=dt.UTC)
EARLIER = "bench:earlier-sweep"  # provider_id of the messages the simulated earlier sweeps "sent"
# The audit trail's insert triggers of the tables the setup fills. Named one by one: ignoring every
# trigger makes each row's trigger parse the whole list (some 11 kB), which costs more than the row.
AUDIT_INSERT_TRIGGERS = (
    "participants.Participant:insert_insert",
    "participants.ContactDetails:insert_insert",
    "trial.Allocation:insert_insert",
    "followup.Occurrence:insert_insert",
)
SCHEDULE_CHUNK = 5000  # participants per COPY transaction
OCCURRENCE_COLUMNS = ("participant_id", "instrument", "month", "due_date", "opens_at", "closes_at", "status", "cancelled_reason")


class CountingEmailBackend(BaseEmailBackend):
    """Sends nothing, like Django's dummy backend, but keeps each message's Message-ID so a run
    can prove no key went out twice."""

    keys: list[str] = []

    def send_messages(self, email_messages: Any) -> int:
        messages = list(email_messages)
        type(self).keys.extend(str(m.extra_headers.get("Message-ID", "")) for m in messages)
        return len(messages)


class QueryCounter:
    """A ``connection.execute_wrapper`` that counts statements without keeping them."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


@dataclass(frozen=True)
class Setup:
    trial_id: int
    participants: int
    occurrences: int
    sms_preferred: int
    now: dt.datetime
    seconds: float


def _trial(*, now: dt.datetime) -> tuple[Trial, Any]:

    today = add_months(now.date(), -37)
    trial = preset_apply(preset=WALKBACK, today=today)
    # Everyone gets the full 36 months: a common end of follow-up after the last of them.
    Trial.objects.filter(pk=trial.pk).update(followup_end=add_months(now.date(), 37))
    trial.refresh_from_db()
    user: Any = get_user_model().objects.filter(username="bench").first()
    if user is None:
        user = trial_services.staff_create(
            trial=trial,
            username="bench",
            role="coordinator",
            password=secrets.token_urlsafe(16),
            site_codes=trial.sites.values_list("code", flat=True),
        )
    return trial, user


def _copy_lines(planned: list[Planned], as_of: dt.datetime) -> list[str]:
    """A schedule as COPY text lines, each after its participant's id (the empty last field is
    ``cancelled_reason``)."""
    return [
        f"\t{p.instrument}\t{p.month}\t{p.due_date.isoformat()}\t{p.opens_at.isoformat()}\t{p.closes_at.isoformat()}"
        f"\t{services._status_at(p, as_of)}\t\n"
        for p in planned
    ]


def _earlier_sweep(*, at: dt.datetime) -> None:
    """What the sweeps of an earlier day did, without sending: windows opened, messages planned,
    and every message due by then recorded as sent."""
    services.occurrences_advance(now=at)
    while services.messages_plan(now=at):
        pass
    Message.objects.filter(status=MessageStatus.PLANNED, due_at__lte=at).update(
        status=MessageStatus.SENT, sent_at=F("due_at"), attempts=1, provider_id=EARLIER
    )


def reminders_setup(
    *,
    participants: int,
    now: dt.datetime = BENCH_NOW,
    seed: int = 0,
    sms_share: float = 0.2,
    prefix: str = "B",
    progress: Callable[[str], None] = lambda step: None,
) -> Setup:
    """``participants`` randomised participants with contact details, allocations, live links and
    full schedules (written with COPY), and the sweeps of the previous week already run.

    Each participant's current monthly questionnaire opened today, or 3 or 7 days ago (when its
    reminders are due), so about one message per participant is due at ``now``; randomisation
    dates spread over the previous 35 months give each a different point of their follow-up.

    The fabricated history is written with the audit triggers ignored: its events are not what is
    measured, and outside an audit context each row's trigger catches an error in a subtransaction,
    which in one big transaction grows quadratically (measured: COPY of 20,000 occurrences 3 s,
    40,000 11 s). The earlier sweeps run with the triggers, as the measured one does."""
    started = time.perf_counter()
    trial, user = _trial(now=now)
    monthly = ScheduleRule.objects.get(trial=trial, instrument="monthly")
    offsets = [0, *sorted({int(d) for d in monthly.reminder_days or []})]
    with pgtrigger.ignore(*AUDIT_INSERT_TRIGGERS):
        sms, occurrences = _participants_with_schedules(
            trial=trial,
            user=user,
            count=participants,
            now=now,
            offsets=offsets,
            open_days_before=monthly.open_days_before,
            rng=random.Random(seed),
            sms_share=sms_share,
            prefix=prefix,
            progress=lambda step: progress(f"{step} {time.perf_counter() - started:.1f} s"),
        )
    # The planner needs the fabricated rows' statistics before the earlier sweeps: a table it still
    # takes for empty gets nested loops whose cost grows with every row (a sweep's statement then
    # outlasts the statement timeout).
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    for days in sorted(offsets, reverse=True):
        if days:
            _earlier_sweep(at=now - dt.timedelta(days=days))
            progress(f"sweep of {days} days before {time.perf_counter() - started:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return Setup(trial.pk, participants, occurrences, sms, now, time.perf_counter() - started)


def _participants_with_schedules(
    *,
    trial: Trial,
    user: Any,
    count: int,
    now: dt.datetime,
    offsets: list[int],
    open_days_before: int,
    rng: random.Random,
    sms_share: float,
    prefix: str,
    progress: Callable[[str], None],
) -> tuple[int, int]:
    sites = list(trial.sites.order_by("code"))
    arms = list(Arm.objects.filter(trial=trial).order_by("order"))
    people: list[Participant] = []
    zones: list[str] = []
    for i in range(count):
        site = sites[i % len(sites)]
        zone = zoneinfo.ZoneInfo(site.timezone)
        opened_on = now.astimezone(zone).date() - dt.timedelta(days=rng.choice(offsets))
        due = opened_on + dt.timedelta(days=open_days_before)
        randomised_on = add_months(due, -rng.randint(1, 35))
        local = dt.datetime.combine(randomised_on, dt.time(9), tzinfo=zone) + dt.timedelta(minutes=rng.randrange(480))
        people.append(
            Participant(
                site=site,
                study_id=f"WB-{site.code}-{prefix}{i:07d}",
                status=ParticipantStatus.RANDOMISED,
                randomised_at=local.astimezone(dt.UTC),
                enrolled_at=local.astimezone(dt.UTC) - dt.timedelta(days=7),
                enrolled_by=user,
            )
        )
        zones.append(site.timezone)
    people = Participant.objects.bulk_create(people, batch_size=5000)
    progress("participants")

    sms = 0
    contacts = []
    for i, p in enumerate(people):
        prefers_sms = rng.random() < sms_share
        sms += prefers_sms
        contacts.append(
            ContactDetails(
                participant=p,
                email=f"participant{i}@bench.invalid",
                mobile=f"+614{i:08d}",
                preferred_channel=Channel.SMS if prefers_sms else Channel.EMAIL,
                timezone=zones[i],
            )
        )
    ContactDetails.objects.bulk_create(contacts, batch_size=5000)
    del contacts
    Allocation.objects.bulk_create(
        [
            Allocation(
                participant=p,
                arm=arms[i % len(arms)],
                method=RandomisationMethod.MINIMISATION,
                stratum_key="bench",
                randomised_by=user,
                randomised_at=p.randomised_at or now,
            )
            for i, p in enumerate(people)
        ],
        batch_size=5000,
    )
    link_rows = []
    for p in people:
        nonce = secrets.token_hex(32)
        link_rows.append(AccessLink(participant=p, nonce=nonce, token_sha256=links._token_hash(links._token_from_nonce(nonce))))
    AccessLink.objects.bulk_create(link_rows, batch_size=5000)
    del link_rows
    progress("contacts, allocations, links")

    # Schedules depend only on the randomisation day and the time zone: plan each pair once.
    rules = services.schedule_rules(trial=trial)
    as_of = now - dt.timedelta(days=max(offsets) + 1)  # statuses before the earlier sweeps
    cache: dict[tuple[dt.date, str], list[str]] = {}
    occurrences = 0
    for chunk in range(0, len(people), SCHEDULE_CHUNK):
        with transaction.atomic(), connection.cursor() as cursor:
            # Checked row by row, the foreign keys queue nothing until commit. Run through Django's
            # cursor, the statement also sets pgtrigger.ignore for the COPY in this transaction.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            with cursor.cursor.copy(f"COPY {Occurrence._meta.db_table} ({', '.join(OCCURRENCE_COLUMNS)}) FROM STDIN") as copy:
                for p, zone_name in zip(
                    people[chunk : chunk + SCHEDULE_CHUNK], zones[chunk : chunk + SCHEDULE_CHUNK], strict=True
                ):
                    assert p.randomised_at is not None
                    key = (p.randomised_at.astimezone(zoneinfo.ZoneInfo(zone_name)).date(), zone_name)
                    lines = cache.get(key)
                    if lines is None:
                        planned = plan(
                            randomised_on=key[0],
                            followup_end=trial.followup_end,
                            max_months=trial.max_followup_months,
                            rules=rules,
                            zone=zone_name,
                        )
                        lines = cache[key] = _copy_lines(planned, as_of)
                    pk = str(p.pk)
                    copy.write("".join(pk + line for line in lines))
                    occurrences += len(lines)
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # as Django's foreign keys are declared
    progress("schedules")
    return sms, occurrences


@contextmanager
def counting_queries() -> Iterator[QueryCounter]:
    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        yield counter


@dataclass
class SweepRun:
    seconds: float
    queries: int
    opened: int
    result: messaging.SweepResult
    keys: list[str] = field(default_factory=list)
    max_rss_mb: float = 0.0
    python_peak_mb: float | None = None
    python_cpu: float = 0.0
    database_cpu: float | None = None
    # The sending phase alone (claim, render, send, record), after the windows opened and the
    # messages were planned; and the same rows claimed and marked sent by bare SQL (the floor).
    sending_seconds: float = 0.0
    reference_seconds: float | None = None
    reference_rows: int = 0


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _backend_cpu() -> float | None:
    """CPU seconds used so far by this connection's server process, when the server runs on this
    machine: with the sweep's own CPU, a figure that other load on the machine does not inflate."""
    import os

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def sweep_once(
    *, now: dt.datetime = BENCH_NOW, batch_size: int = 200, trace_memory: bool = False, reference: bool = False
) -> SweepRun:
    """One sweep as the task runs it (open windows, then plan and send), timed and counted; with
    ``reference``, the minimal claim-and-mark SQL is first timed over the same due rows."""
    import tracemalloc

    CountingEmailBackend.keys = []
    if trace_memory:
        tracemalloc.start()
    database_before = _backend_cpu()
    reference_seconds, reference_rows, sending = None, 0, 0.0
    with counting_queries() as counter:
        started, cpu_started = time.perf_counter(), time.process_time()
        opened, _ = services.occurrences_advance(now=now)
        for kind in kinds.registered():  # what messages_send_due does first, timed apart here
            while kind.plan(now=now):
                pass
        if reference:  # not part of the sweep: neither its time nor its statements count
            paused, paused_cpu, counted = time.perf_counter(), time.process_time(), counter.count
            reference_seconds, reference_rows = claim_and_mark_reference(now=now, batch_size=batch_size)
            started += time.perf_counter() - paused
            cpu_started += time.process_time() - paused_cpu
            counter.count = counted
        sending_started = time.perf_counter()
        result = messaging.messages_send_due(now=now, batch_size=batch_size)
        sending = time.perf_counter() - sending_started
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    database_after = _backend_cpu()
    peak = None
    if trace_memory:
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    database_cpu = database_after - database_before if database_before is not None and database_after is not None else None
    return SweepRun(
        seconds,
        counter.count,
        opened,
        result,
        list(CountingEmailBackend.keys),
        _max_rss_mb(),
        peak,
        cpu,
        database_cpu,
        sending_seconds=sending,
        reference_seconds=reference_seconds,
        reference_rows=reference_rows,
    )


def claim_and_mark_reference(*, now: dt.datetime, batch_size: int) -> tuple[float, int]:
    """The floor of the sending phase: the due messages claimed in batches with the sweep's own
    claim (``FOR UPDATE SKIP LOCKED``, committed) and each marked sent by one UPDATE in its own
    commit, as the sweep records each send; no reading, rendering or sending. The rows are put
    back as they were afterwards, untimed. Returns (seconds, rows marked)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_reference AS SELECT id, status, due_at, attempts, sent_at, provider_id "
            "FROM followup_message WHERE status IN (%s, %s) AND due_at <= %s",
            [MessageStatus.PLANNED, MessageStatus.SENDING, now],
        )
    lease = dt.timedelta(hours=1)
    marked = 0
    started = time.perf_counter()
    while ids := messaging._claim(now=now, batch_size=batch_size, lease=lease):
        with connection.cursor() as cursor:
            for pk in ids:
                cursor.execute(
                    "UPDATE followup_message SET status = %s, sent_at = %s, provider_id = %s WHERE id = %s AND status = %s",
                    [MessageStatus.SENT, now, f"reference-{pk}", pk, MessageStatus.SENDING],
                )
                marked += cursor.rowcount
    seconds = time.perf_counter() - started
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE followup_message AS m SET status = r.status, due_at = r.due_at, attempts = r.attempts, "
            "sent_at = r.sent_at, provider_id = r.provider_id FROM bench_reference AS r WHERE m.id = r.id"
        )
        cursor.execute("DROP TABLE bench_reference")
    return seconds, marked


def _sweep_in_child(now: dt.datetime, batch_size: int, results: Any) -> None:  # pragma: no cover - runs in a child process
    try:
        results.put(sweep_once(now=now, batch_size=batch_size))
    except BaseException as exc:
        results.put(exc)
    finally:
        connection.close()


def sweeps_in_processes(*, clients: int, now: dt.datetime = BENCH_NOW, batch_size: int = 200) -> tuple[float, list[SweepRun]]:
    """``clients`` sweeps at once, each a process with its own connection, as task runs that overlap."""
    import multiprocessing

    from django.db import connections

    connections.close_all()  # children must open their own connections
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = [context.Process(target=_sweep_in_child, args=(now, batch_size, results)) for _ in range(clients)]
    started = time.perf_counter()
    for process in processes:
        process.start()
    runs = []
    for _ in processes:
        outcome = results.get()
        if isinstance(outcome, BaseException):
            raise outcome
        runs.append(outcome)
    for process in processes:
        process.join()
    return time.perf_counter() - started, runs


@dataclass(frozen=True)
class Integrity:
    due: int
    sent: int
    left_sending: int
    due_left_planned: int
    sent_more_than_once: int
    by_status: dict[str, int]


def sweep_integrity(*, now: dt.datetime = BENCH_NOW) -> Integrity:
    """What the sweep at ``now`` did to the messages due by then (the earlier days' excluded).

    ``sent_more_than_once`` counts sent messages claimed more than once: a claim adds an attempt,
    so a message two sweeps both sent would show two."""
    acted_on = Message.objects.exclude(provider_id=EARLIER).filter(
        Q(due_at__lte=now)
        | Q(status__in=[MessageStatus.SENT, MessageStatus.SENDING, MessageStatus.CANCELLED, MessageStatus.FAILED])
    )
    by_status = {row["status"]: row["n"] for row in acted_on.values("status").annotate(n=Count("id")).order_by()}
    return Integrity(
        due=sum(by_status.values()),
        sent=by_status.get(MessageStatus.SENT, 0),
        left_sending=Message.objects.filter(status=MessageStatus.SENDING).count(),
        due_left_planned=Message.objects.filter(status=MessageStatus.PLANNED, due_at__lte=now).count(),
        sent_more_than_once=acted_on.filter(status=MessageStatus.SENT).exclude(attempts=1).count(),
        by_status=by_status,
    )
