"""Tamper evidence: hash-chained audit events, verify_audit and the nightly check."""

from __future__ import annotations

import io
import itertools
import json
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction

from trial import audit, auditchain, selectors, tasks
from trial.models import Arm, ArmEvent, Notification, SecurityEvent, SecurityEventKind, Trial, TrialContact


def verify(*args: str) -> tuple[bool, str]:
    out = io.StringIO()
    try:
        call_command("verify_audit", *args, stdout=out)
    except CommandError:
        return False, out.getvalue()
    return True, out.getvalue()


def as_superuser_without_triggers(sql: str, params: list[object]) -> None:
    """What a database superuser can do: write with every trigger off."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET LOCAL session_replication_role = origin")


def test_every_event_table_is_on_the_chain_and_an_intact_trail_verifies(walkback: Trial) -> None:
    with connection.cursor() as cursor:
        for model in auditchain.event_models():
            cursor.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass(%s) AND tgname = 'zz_audit_chain'",
                [model._meta.db_table],
            )
            assert cursor.fetchone()[0] == 1, model._meta.db_table

    intact, out = verify()

    assert intact, out
    assert "Audit trail intact" in out


def test_each_event_links_to_the_one_before_in_its_table(walkback: Trial) -> None:
    Arm.objects.filter(trial=walkback).update(description="v2")
    events = list(ArmEvent.objects.order_by("pgh_id").values_list("pgh_id", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pgh_id, prev_hash, row_hash FROM trial_armevent ORDER BY pgh_id")
        rows = cursor.fetchall()
    assert [row[0] for row in rows] == events
    assert rows[0][1] == auditchain.GENESIS
    assert all(later[1] == earlier[2] for earlier, later in itertools.pairwise(rows))
    assert selectors.audit_chain_heads()["trial_armevent"] == rows[-1][2]


def test_an_audit_row_rewritten_is_named(walkback: Trial) -> None:
    target = ArmEvent.objects.order_by("pgh_id").first()
    assert target is not None
    as_superuser_without_triggers("UPDATE trial_armevent SET name = 'rewritten' WHERE pgh_id = %s", [target.pgh_id])

    intact, out = verify("--chains-only")

    assert not intact
    assert f"trial_armevent row {target.pgh_id}: content changed" in out


def test_an_audit_row_deleted_is_named(walkback: Trial) -> None:
    Arm.objects.filter(trial=walkback).update(description="v2")
    first, second, third = ArmEvent.objects.order_by("pgh_id")[:3]
    as_superuser_without_triggers("DELETE FROM trial_armevent WHERE pgh_id = %s", [second.pgh_id])

    intact, out = verify("--chains-only")

    assert not intact
    assert f"trial_armevent row {third.pgh_id}: does not follow event {first.pgh_id}" in out


def test_events_deleted_from_the_end_after_a_check_are_named(walkback: Trial) -> None:
    """The newest events leave no broken link behind when deleted, so each check records the last
    event it found intact and the next one requires it."""
    Arm.objects.filter(trial=walkback).update(description="v2")
    assert verify("--chains-only")[0]
    last = ArmEvent.objects.order_by("-pgh_id").first()
    assert last is not None
    as_superuser_without_triggers("DELETE FROM trial_armevent WHERE pgh_id = %s", [last.pgh_id])

    intact, out = verify("--chains-only")

    assert not intact
    assert f"trial_armevent row {last.pgh_id}: an event found intact by an earlier check is missing" in out


def test_many_audited_writes_in_one_transaction_cost_the_same_each(walkback: Trial) -> None:
    """The chain reads the previous event through the primary key: the thousandth write in a
    transaction costs what the first did (a head row updated per write grew slower each time)."""
    import time

    arm = walkback.arms.get(code="control")

    def batch(n: int) -> float:
        start = time.perf_counter()
        for i in range(n):
            Arm.objects.filter(pk=arm.pk).update(description=f"d{i}")
        return time.perf_counter() - start

    first = batch(200)
    batch(1600)
    later = batch(200)
    assert later < first * 3, (first, later)
    assert verify("--chains-only")[0]


def test_a_clinical_row_changed_with_triggers_off_is_named(walkback: Trial) -> None:
    arm = walkback.arms.get(code="control")
    as_superuser_without_triggers("UPDATE trial_arm SET name = 'swapped' WHERE id = %s", [arm.pk])

    intact, out = verify()

    assert not intact
    assert f"trial_arm row {arm.pk}: differs from its latest audit snapshot (trial_armevent)" in out
    assert ArmEvent.objects.filter(pgh_obj=arm, name="swapped").count() == 0


def test_a_column_added_to_an_event_table_later_keeps_old_rows_verifiable(walkback: Trial) -> None:
    # As a migration adding a field with a default to a tracked model does: old events get the default.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE trial_armevent ADD COLUMN colour text NOT NULL DEFAULT 'blue'")
    Arm.objects.filter(trial=walkback).update(description="after the new column")

    intact, out = verify("--chains-only")

    assert intact, out


def test_exported_heads_are_checked_against_the_chain(walkback: Trial, tmp_path) -> None:  # type: ignore[no-untyped-def]
    heads = tmp_path / "heads.json"
    heads.write_text(json.dumps({"audit_chain_heads": {"trial_armevent": selectors.audit_chain_heads()["trial_armevent"]}}))
    assert verify("--heads", str(heads), "--chains-only")[0]

    heads.write_text(json.dumps({"trial_armevent": "f" * 64}))
    intact, out = verify("--heads", str(heads), "--chains-only")
    assert not intact
    assert "trial_armevent row -: the exported head ffffffffffffffff... is no longer in the chain" in out


def test_the_nightly_check_alerts_once_for_the_same_break(walkback: Trial, make_staff, settings) -> None:  # type: ignore[no-untyped-def]
    settings.CELERY_TASK_ALWAYS_EAGER = False
    TrialContact.objects.get_or_create(trial=walkback, kind="safety", email="safety@example.org", defaults={"name": "Safety"})
    assert tasks.verify_audit.apply().get() == 0
    assert not Notification.objects.filter(kind="audit_broken").exists()

    target = ArmEvent.objects.order_by("pgh_id").first()
    assert target is not None
    as_superuser_without_triggers("UPDATE trial_armevent SET name = 'rewritten' WHERE pgh_id = %s", [target.pgh_id])
    first = tasks.verify_audit.apply().get()
    second = tasks.verify_audit.apply().get()

    assert first == second >= 1
    alerts = Notification.objects.filter(kind="audit_broken")
    assert alerts.count() == 1
    assert "safety@example.org" in alerts.get().recipients
    assert f"trial_armevent row {target.pgh_id}" in alerts.get().body
    assert SecurityEvent.objects.filter(kind=SecurityEventKind.AUDIT_BROKEN).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_form_one_valid_chain() -> None:
    writers, each = 4, 15
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(n: int) -> None:
        try:
            start.wait()
            for i in range(each):
                audit.security_event_record(kind=SecurityEventKind.DOWNLOAD, username=f"writer{n}-{i}")
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert SecurityEvent.objects.filter(username__startswith="writer").count() == writers * each
    findings = [f for f in auditchain.audit_verify(snapshots=True) if f.table.startswith("trial_securityevent")]
    assert findings == []


def test_the_application_role_writes_audited_rows_but_cannot_turn_triggers_off(walkback: Trial, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_APP_PASSWORD", "a-long-test-password")
    call_command("grant_app_role", "chain_test_app", stdout=io.StringIO())
    arm = walkback.arms.get(code="control")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL ROLE chain_test_app")
        audit.security_event_record(kind=SecurityEventKind.DOWNLOAD, username="as-app")
        Arm.objects.filter(pk=arm.pk).update(description="written as the app")
        for forbidden in (
            "ALTER TABLE trial_arm DISABLE TRIGGER ALL",
            "SET session_replication_role = replica",
            "UPDATE trial_armevent SET name = 'x'",
            "DELETE FROM trial_securityeventevent",
            "UPDATE audit_chain_head SET last_hash = 'x'",
        ):
            with pytest.raises(DatabaseError), transaction.atomic():
                cursor.execute(forbidden)
        cursor.execute("RESET ROLE")

    assert verify()[0]
