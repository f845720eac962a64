"""Tampering as a fault, end to end: a database superuser turns the triggers off, changes a
participant's answer and rewrites an audit row, on the real database (committed rows, from a
connection of its own); ``manage.py verify_audit``, run as an operator runs it, exits non-zero
naming each table and row. (tests/trial/test_audit_chain.py covers each finding in process.)"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from psycopg.types.json import Jsonb

from followup.models import QuestionnaireResponse
from tests.integration.test_stack import ROOT, _database_url
from trial.models import Arm, ArmEvent, Trial  # type: ignore[attr-defined]

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def verify_audit() -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": _database_url(), "WALKBACK_VAR_DIR": str(settings.VAR_DIR)}
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "verify_audit"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def as_superuser(*statements: tuple[str, list[Any]]) -> None:
    """What a database superuser can do from psql: turn a table's triggers off, write, turn them on."""
    with psycopg.connect(_database_url().replace("postgres://", "postgresql://"), autocommit=False, connect_timeout=10) as conn:
        (superuser,) = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()  # type: ignore[misc]
        assert superuser, "the test database's role must be a superuser to tamper"
        for sql, params in statements:
            conn.execute(sql, params)
        conn.commit()


def test_an_answer_changed_and_an_audit_row_rewritten_with_triggers_off_are_named_by_verify_audit(
    walkback: Trial, enrol: Any, record_property: Any
) -> None:
    participant = enrol()
    response = QuestionnaireResponse.objects.get(occurrence__participant=participant)
    Arm.objects.filter(trial=walkback).update(description="Second version")
    event = ArmEvent.objects.order_by("pgh_id").first()
    assert event is not None
    answers_table = QuestionnaireResponse._meta.db_table
    intact = verify_audit()
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "Audit trail intact" in intact.stdout

    item, value = next(iter(sorted(response.answers.items())))
    tampered = {**response.answers, item: f"{value}-changed"}
    as_superuser(
        (f"ALTER TABLE {answers_table} DISABLE TRIGGER ALL", []),
        (f"UPDATE {answers_table} SET answers = %s::jsonb WHERE id = %s", [Jsonb(tampered), response.pk]),
        (f"ALTER TABLE {answers_table} ENABLE TRIGGER ALL", []),
        ("ALTER TABLE trial_armevent DISABLE TRIGGER ALL", []),
        ("UPDATE trial_armevent SET name = 'rewritten' WHERE pgh_id = %s", [event.pgh_id]),
        ("ALTER TABLE trial_armevent ENABLE TRIGGER ALL", []),
    )
    response.refresh_from_db()
    assert response.answers[item] == f"{value}-changed"  # the change went in, with no audit event
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM trial_armevent WHERE pgh_id = %s", [event.pgh_id])
        assert cursor.fetchone()[0] == "rewritten"

    result = verify_audit()

    found = [line for line in result.stdout.splitlines() if " row " in line]
    expected = {
        f"{answers_table} row {response.pk}: differs from its latest audit snapshot",
        f"trial_armevent row {event.pgh_id}: content changed",
    }
    detected = {want for want in expected if any(line.startswith(want) for line in found)}
    print(f"\nTampering: 2 changes with triggers off, verify_audit exit {result.returncode}, findings: {found}")
    record_property("faults_tamper_changes", len(expected))
    record_property("faults_tamper_detected", len(detected))
    record_property("faults_tamper_missed", len(expected - detected))
    assert result.returncode != 0
    assert detected == expected, result.stdout + result.stderr
    assert "audit problem(s)" in result.stderr
