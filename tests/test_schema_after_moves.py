"""Data survives the move of models between apps: a database at the migrations of the last release
before the split (followup 0007, participants 0005, trial 0004), carried forward, has exactly the
schema of a fresh one (tables, columns, constraints, indexes, triggers), keeps its rows, keeps
writing history, and its data queries name the records by their new apps."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from safety.models import AdverseEvent
from tests.factories import ParticipantFactory

# The leaf migrations of each app before the apps were split (main at c37f05f); apps that did not
# exist then are unapplied entirely.
BEFORE_SPLIT = [
    ("trial", "0004_refuse_writes_when_locked"),
    ("participants", "0005_safety_outcomes"),
    ("followup", "0007_safety_outcomes"),
    ("messaging", None),
    ("intervention", None),
    ("safety", None),
    ("closeout", None),
]


def schema() -> dict[str, list[tuple[Any, ...]]]:
    """This project's part of the catalogue, in a stable order."""
    queries = {
        "columns": """
            SELECT table_name, column_name, data_type, is_nullable, column_default
            FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2""",
        "constraints": """
            SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
            FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2""",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2",
        "triggers": """
            SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
            FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2""",
        "functions": """
            SELECT proname, md5(prosrc) FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY 1""",
    }
    with connection.cursor() as cursor:
        result = {}
        for name, sql in queries.items():
            cursor.execute(sql)
            result[name] = [tuple(row) for row in cursor.fetchall()]
    return result


def migrate(targets: list[tuple[str, str | None]], *, finish: bool = False) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    if finish:  # as `manage.py migrate` ends: the apps' post-migrate work (the audit chain on the
        # event tables created after it, the periodic tasks)
        emit_post_migrate_signal(0, False, connection.alias)


@pytest.mark.migrations
@pytest.mark.django_db(transaction=True)
def test_a_database_from_before_the_split_migrates_to_the_fresh_schema(walkback, make_staff) -> None:
    coordinator = make_staff("coordinator", sites=["SYD"])
    participant = ParticipantFactory(site=walkback.sites.get(code="SYD"))
    event = AdverseEvent.objects.create(
        participant=participant,
        source="staff",
        status="open",
        description="Sprained ankle",
        onset_date=dt.date(2026, 3, 1),
        category="lower_extremity",
        severity="mild",
        aware_at=timezone.now(),
    )
    fresh = schema()
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()

    try:
        migrate(BEFORE_SPLIT)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM participants_adverseevent")
            assert cursor.fetchone()[0] == 1
            # A data query raised before the split names the record by its old app.
            cursor.execute(
                "INSERT INTO trial_dataquery (trial_id, site_id, record_type, record_id, field, text, status, raised_by_id, "
                "check_code, finding_key, answer, created_at, updated_at) "
                "VALUES (%s, %s, 'participants.adverseevent', %s, 'onset_date', 'Is this date right?', 'open', %s, "
                "'onset_in_future', %s, '', now(), now())",
                [
                    walkback.pk,
                    participant.site_id,
                    event.pk,
                    coordinator.pk,
                    f"onset_in_future:participants.adverseevent:{event.pk}:onset_date",
                ],
            )
    finally:
        migrate(leaves, finish=True)  # whatever happened, the next test finds the database as it was
    assert schema() == fresh
    with connection.cursor() as cursor:
        cursor.execute("SELECT record_type, finding_key FROM trial_dataquery")
        # ... and a finding of a check keeps matching its query, so it is not raised again.
        assert cursor.fetchall() == [("safety.adverseevent", f"onset_in_future:safety.adverseevent:{event.pk}:onset_date")]
    moved = AdverseEvent.objects.get(pk=event.pk)
    moved.description = "Sprained left ankle"
    moved.save()
    # The history trigger, installed under the new app's name, still writes to the old history table.
    assert [e.pgh_label for e in moved.events.order_by("pgh_id")] == ["insert", "update"]
