"""The migration that keeps "missed since the latest completed" on each outcome summary fills it for
the participants already followed up, as ``outcomes.summarise`` would: the lost-to-follow-up rule
reads nothing else, so a database carried forward must list the same people as before."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from followup.models import Occurrence, OccurrenceStatus, OutcomeSummary
from tests.factories import ParticipantFactory

BEFORE = [("followup", "0009_response_drafts")]  # before 0010 (the fields) and 0011 (their backfill)


def _monthly(participant, statuses: str) -> list[Occurrence]:
    """Monthly questionnaires from month 1: c completed, m missed, o open."""
    status = {"c": OccurrenceStatus.COMPLETED, "m": OccurrenceStatus.MISSED, "o": OccurrenceStatus.OPEN}
    made = []
    for month, code in enumerate(statuses, start=1):
        due = dt.date(2026, month, 10)
        made.append(
            Occurrence.objects.create(
                participant=participant,
                instrument="monthly",
                month=month,
                due_date=due,
                opens_at=dt.datetime.combine(due, dt.time(), tzinfo=dt.UTC),
                closes_at=dt.datetime.combine(due + dt.timedelta(days=14), dt.time(), tzinfo=dt.UTC),
                status=status[code],
                completed_at=dt.datetime.combine(due, dt.time(12), tzinfo=dt.UTC) if code == "c" else None,
            )
        )
    return made


def _migrate(targets: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


@pytest.mark.migrations
@pytest.mark.django_db(transaction=True)
def test_the_missed_in_a_row_of_existing_participants_is_filled_when_migrating(walkback) -> None:
    site = walkback.sites.get(code="SYD")
    answered_then_missed = ParticipantFactory(site=site, randomised_to=walkback.arms.get(code="walking"))
    months = _monthly(answered_then_missed, "cmcmmo")
    OutcomeSummary.objects.create(
        participant=answered_then_missed, monthly_completed=2, monthly_missed=3, derived_at=months[0].opens_at
    )
    never_answered = ParticipantFactory(site=site, randomised_to=walkback.arms.get(code="control"))  # no summary yet
    missed = _monthly(never_answered, "mmm")
    not_randomised = ParticipantFactory(site=site)
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        _migrate(BEFORE)
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM followup_outcomesummary WHERE participant_id = %s", [never_answered.pk])
    finally:
        _migrate(leaves)
    summaries = {s.participant_id: s for s in OutcomeSummary.objects.all()}
    first = summaries[answered_then_missed.pk]
    assert (first.missed_in_a_row, first.last_missed_id, first.last_missed_due) == (2, months[4].pk, dt.date(2026, 5, 10))
    assert (first.monthly_completed, first.monthly_missed) == (2, 3)
    second = summaries[never_answered.pk]
    assert (second.missed_in_a_row, second.last_missed_id, second.monthly_missed) == (3, missed[2].pk, 3)
    assert not_randomised.pk not in summaries
