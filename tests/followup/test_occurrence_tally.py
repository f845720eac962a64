"""The tally of closed questionnaires (what the dashboard and the DMC report count) stays equal to
counting the questionnaires themselves, whatever writes them: one row or many per statement,
inserts, status changes both ways, deletes, at several sites. Rebuilding it, and the migration that
first fills it, give the same counts."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count

from console import progress
from followup import services
from followup.models import TALLIED_STATUSES, Occurrence, OccurrenceStatus, OccurrenceTally
from tests.factories import ParticipantFactory
from trial.models import Trial

STATUSES = [s.value for s in OccurrenceStatus]


def _counted() -> Counter[tuple[int, str, int, str]]:
    """What the tally should hold: closed questionnaires by site, instrument, month and status."""
    rows = (
        Occurrence.objects.filter(status__in=TALLIED_STATUSES)
        .values_list("participant__site_id", "instrument", "month", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return Counter({(site, instrument, month, status): n for site, instrument, month, status, n in rows})


def _tally() -> Counter[tuple[int, str, int, str]]:
    return Counter(
        {
            (t.site_id, t.instrument, t.month, t.status): t.n
            for t in OccurrenceTally.objects.all()
            if t.n != 0  # a key whose questionnaires all reopened stays, at zero
        }
    )


def _occurrence(participant, instrument: str, month: int, status: str) -> Occurrence:
    due = dt.date(2026, 1, 1) + dt.timedelta(days=30 * month)
    opens = dt.datetime.combine(due, dt.time(), tzinfo=dt.UTC)
    return Occurrence(
        participant=participant,
        instrument=instrument,
        month=month,
        due_date=due,
        opens_at=opens,
        closes_at=opens + dt.timedelta(days=14),
        status=status,
        completed_at=opens if status == OccurrenceStatus.COMPLETED else None,
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_tally_equals_counting_the_questionnaires_after_any_writes(walkback: Trial, seed: int) -> None:
    rng = random.Random(seed)
    sites = list(walkback.sites.order_by("code")[:2])
    people = [ParticipantFactory(site=sites[i % 2]) for i in range(6)]
    keys = [(p, instrument, month) for p in people for instrument in ("monthly", "fixed") for month in range(1, 5)]
    rng.shuffle(keys)
    # Many rows in one statement, some already closed (an import, a schedule written at once).
    Occurrence.objects.bulk_create([_occurrence(p, i, m, rng.choice(STATUSES)) for p, i, m in keys[:30]])
    assert _tally() == _counted()
    for p, i, m in keys[30:]:  # one row per statement
        Occurrence.objects.bulk_create([_occurrence(p, i, m, rng.choice(STATUSES))])
    assert _tally() == _counted()
    for _ in range(40):
        pick = rng.sample(list(Occurrence.objects.values_list("pk", flat=True)), rng.randint(1, 8))
        status = rng.choice(STATUSES)
        action = rng.random()
        if action < 0.6:  # answered, missed, reopened or cancelled, several at once
            Occurrence.objects.filter(pk__in=pick).update(status=status, completed_at=dt.datetime(2026, 6, 1, tzinfo=dt.UTC))
        elif action < 0.8:  # a change that leaves the status alone
            Occurrence.objects.filter(pk__in=pick).update(cancelled_reason=f"note {rng.random()}")
        else:  # saved one at a time, through the model
            for occurrence in Occurrence.objects.filter(pk__in=pick):
                occurrence.status = status
                occurrence.completed_at = occurrence.completed_at or dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
                occurrence.save()
        assert _tally() == _counted()
    Occurrence.objects.filter(participant=people[0]).delete()
    assert _tally() == _counted()
    assert sum(_tally().values()) > 0  # the sequence left closed questionnaires to count


def test_the_dashboard_completion_reads_the_tally_and_counts_only_visible_sites(walkback: Trial, coordinator, make_staff) -> None:
    syd, other = walkback.sites.get(code="SYD"), walkback.sites.get(code="NCL")  # both the coordinator's
    here, there = ParticipantFactory(site=syd), ParticipantFactory(site=other)
    Occurrence.objects.bulk_create(
        [
            _occurrence(here, "monthly", 1, OccurrenceStatus.COMPLETED),
            _occurrence(here, "monthly", 2, OccurrenceStatus.MISSED),
            _occurrence(here, "monthly", 3, OccurrenceStatus.OPEN),
            _occurrence(there, "monthly", 1, OccurrenceStatus.MISSED),
        ]
    )
    shown = [(c.month, c.completed, c.closed) for c in progress.followup_completion(trial=walkback, user=coordinator)]
    assert shown == [(1, 1, 2), (2, 0, 1)]
    only_sydney = make_staff("coordinator", sites=["SYD"], username="syd-only")
    shown = [(c.month, c.completed, c.closed) for c in progress.followup_completion(trial=walkback, user=only_sydney)]
    assert shown == [(1, 1, 1), (2, 0, 1)]
    Occurrence.objects.filter(participant=here, month=2).update(status=OccurrenceStatus.OPEN)  # reopened
    shown = [(c.month, c.completed, c.closed) for c in progress.followup_completion(trial=walkback, user=only_sydney)]
    assert shown == [(1, 1, 1)]


def test_rebuilding_the_tally_counts_again_what_a_load_without_triggers_left_out(walkback: Trial) -> None:
    person = ParticipantFactory(site=walkback.sites.get(code="SYD"))
    Occurrence.objects.bulk_create([_occurrence(person, "monthly", m, OccurrenceStatus.COMPLETED) for m in (1, 2, 3)])
    with connection.cursor() as cursor:  # as a restore with --disable-triggers would leave it
        cursor.execute("DELETE FROM followup_occurrencetally")
    assert _tally() != _counted()
    out = StringIO()
    call_command("rebuild_occurrence_tally", stdout=out)
    assert _tally() == _counted() and "tally rebuilt: 3 rows" in out.getvalue()
    assert services.occurrence_tally_rebuild() == 3  # safe to run again


@pytest.mark.migrations
@pytest.mark.django_db(transaction=True)
def test_the_migration_counts_the_questionnaires_already_closed(walkback: Trial) -> None:
    person = ParticipantFactory(site=walkback.sites.get(code="SYD"))
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate([("followup", "0011_outcome_summary_missed_backfill")])
        with connection.cursor() as cursor:
            for month, status in ((1, "completed"), (2, "missed"), (3, "missed"), (4, "open")):
                cursor.execute(
                    "INSERT INTO followup_occurrence (participant_id, instrument, month, due_date, opens_at, closes_at,"
                    " status, completed_at, cancelled_reason) VALUES (%s, 'monthly', %s, '2026-01-10', '2026-01-10',"
                    " '2026-01-24', %s, '2026-01-11', '')",
                    [person.pk, month, status],
                )
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(leaves)
    assert (
        _tally()
        == _counted()
        == Counter(
            {
                (person.site_id, "monthly", 1, "completed"): 1,
                (person.site_id, "monthly", 2, "missed"): 1,
                (person.site_id, "monthly", 3, "missed"): 1,
            }
        )
    )
