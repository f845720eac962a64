"""Tamper evidence for the audit trail: hash-chained event tables and their verification.

The chain itself is kept by the database (migration ``trial/0011_audit_chain``): every pghistory
event row carries ``row_hash`` = SHA-256 of (``prev_hash`` + the row as PostgreSQL's jsonb text,
without the two hash columns, timestamps in UTC) and ``prev_hash``, the previous event's
``row_hash`` in the same table (64 zeros for the first). No application path can skip it: a
BEFORE INSERT trigger computes both. Verification recomputes every hash in one set-based query per
table, and compares each tracked row with its latest snapshot, which finds a row changed while
triggers were off (``session_replication_role = replica``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import pghistory
import pgtrigger
from django.apps import apps
from django.db import connection, models, transaction

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
HASH_COLUMNS = ("row_hash", "prev_hash")
# The settings the trigger pins (to_jsonb renders timestamps in the session's time zone).
_PINNED = (
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL DateStyle = 'ISO, YMD'",
    "SET LOCAL IntervalStyle = 'postgres'",
    "SET LOCAL extra_float_digits = 1",
)


@dataclass(frozen=True, order=True)
class Finding:
    """One place where the trail and the data disagree."""

    table: str
    row_id: int | str
    problem: str

    def __str__(self) -> str:
        return f"{self.table} row {self.row_id}: {self.problem}"


def audit_chain_install() -> int:
    """Put every event table on the chain (idempotent; after each migrate). Returns rows sealed."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regproc('audit_chain_install_all') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return 0  # trial's migration 0010 has not run yet
        cursor.execute("SELECT audit_chain_install_all()")
        return int(cursor.fetchone()[0])


@cache
def event_models() -> tuple[type[models.Model], ...]:
    """Every concrete pghistory event model, by table name."""
    found = [
        model
        for model in apps.get_models()
        if getattr(model, "pgh_tracked_model", None) is not None and not model._meta.abstract and not model._meta.proxy
    ]
    return tuple(sorted(found, key=lambda model: model._meta.db_table))


def _columns(cursor: Any, table: str) -> list[str]:
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        [table],
    )
    return [row[0] for row in cursor.fetchall()]


def _hash_expression(current: list[str], epochs: list[dict[str, Any]]) -> tuple[str, list[Any]]:
    """SQL for each row's recomputed hash: the row's jsonb without the columns its epoch did not
    hash (added to the table after it was sealed) and without the hash columns."""
    current_set = set(current) - set(HASH_COLUMNS)
    removals = [sorted(current_set - set(epoch["columns"]) | set(HASH_COLUMNS)) for epoch in epochs] or [sorted(HASH_COLUMNS)]
    if len(removals) == 1:
        removal_sql, params = "%s::text[]", [removals[0]]
    else:
        cases, params = [], []
        for epoch, removal in zip(epochs[1:], removals[:-1], strict=True):
            cases.append("WHEN t.pgh_id < %s THEN %s::text[]")
            params += [epoch["first_id"], removal]
        removal_sql = "CASE " + " ".join(cases) + " ELSE %s::text[] END"
        params.append(removals[-1])
    expression = (
        "encode(sha256(convert_to(coalesce(t.prev_hash, '') || (to_jsonb(t) - " + removal_sql + ")::text, 'UTF8')), 'hex')"
    )
    return expression, params


def _verify_table(cursor: Any, table: str) -> list[Finding]:
    quoted = connection.ops.quote_name(table)
    current = _columns(cursor, table)
    if not current:
        return []
    if "row_hash" not in current:
        return [Finding(table, "-", "not on the hash chain (no row_hash column)")]
    cursor.execute("SELECT tgenabled FROM pg_trigger WHERE tgrelid = to_regclass(%s) AND tgname = 'zz_audit_chain'", [table])
    trigger = cursor.fetchone()
    findings: list[Finding] = []
    if trigger is None:
        findings.append(Finding(table, "-", "the chain trigger is missing"))
    elif trigger[0] == "D":
        findings.append(Finding(table, "-", "the chain trigger is disabled"))
    cursor.execute("SELECT last_id, last_hash, epochs FROM audit_chain_head WHERE table_name = %s", [table])
    head = cursor.fetchone()
    epochs = head[2] if head else []
    if isinstance(epochs, str):
        epochs = json.loads(epochs)
    expression, params = _hash_expression(current, epochs)
    cursor.execute(
        f"""
        WITH c AS (
            SELECT t.pgh_id, t.row_hash, t.prev_hash, {expression} AS recomputed,
                   lag(t.row_hash) OVER w AS before_hash, lag(t.pgh_id) OVER w AS before_id
            FROM {quoted} t WINDOW w AS (ORDER BY t.pgh_id)
        )
        SELECT pgh_id, before_id, CASE
            WHEN row_hash IS NULL THEN 'unsealed'
            WHEN row_hash IS DISTINCT FROM recomputed THEN 'changed'
            ELSE 'link' END
        FROM c
        WHERE row_hash IS NULL OR row_hash IS DISTINCT FROM recomputed
           OR prev_hash IS DISTINCT FROM coalesce(before_hash, %s)
        ORDER BY pgh_id
        """,  # noqa: S608 (table names come from the models, values are parameters)
        [*params, GENESIS],
    )
    for row_id, before_id, kind in cursor.fetchall():
        if kind == "unsealed":
            problem = "not sealed: inserted while the chain trigger was off"
        elif kind == "changed":
            problem = "content changed after it was recorded"
        elif before_id is None:
            problem = "events before it are missing"
        else:
            problem = f"does not follow event {before_id}: an event between was deleted, or the chain reordered"
        findings.append(Finding(table, row_id, problem))
    cursor.execute(f"SELECT pgh_id, row_hash FROM {quoted} ORDER BY pgh_id DESC LIMIT 1")  # noqa: S608
    last = cursor.fetchone()
    if head is None:
        if last is not None:
            findings.append(Finding(table, last[0], "the table has events but no chain head"))
        return findings
    # The head holds the last event an earlier verification (or the installer) found intact: it
    # must still be there, unchanged, or events were deleted from the end since.
    if head[0] > 0:
        cursor.execute(f"SELECT row_hash FROM {quoted} WHERE pgh_id = %s", [head[0]])  # noqa: S608
        verified = cursor.fetchone()
        if verified is None:
            findings.append(Finding(table, head[0], "an event found intact by an earlier check is missing (events deleted)"))
        elif verified[0] != head[1]:
            findings.append(Finding(table, head[0], "an event found intact by an earlier check no longer matches"))
    if not findings and last is not None and last[1] is not None:
        cursor.execute("SELECT audit_chain_mark_verified(%s, %s, %s)", [table, last[0], last[1]])
    return findings


def _compared_fields(event_model: type[models.Model]) -> list[str] | None:
    """Columns of the tracked row that its latest snapshot must match; None when updates are
    legitimately not recorded (an insert-only history of a table that may change)."""
    tracked = event_model.pgh_tracked_model  # type: ignore[attr-defined]
    trackers = getattr(event_model, "pgh_trackers", ())
    updates = [t for t in trackers if isinstance(t, pghistory.UpdateEvent)]
    concrete = tracked._meta.concrete_model
    append_only = any(
        isinstance(trigger, pgtrigger.Protect) and "UPDATE" in str(trigger.operation)
        for trigger in getattr(concrete._meta, "triggers", [])
    )
    if not updates and not append_only:
        return None
    excluded: set[str] = set()
    for tracker in updates:
        condition = getattr(tracker, "condition", None)
        excluded |= set(getattr(condition, "exclude", None) or [])
    tracked_columns = {field.column for field in concrete._meta.concrete_fields}
    return [
        field.column
        for field in event_model._meta.concrete_fields
        if not field.name.startswith("pgh_") and field.name not in excluded and field.column in tracked_columns
    ]


def _verify_snapshots(cursor: Any, event_model: type[models.Model]) -> list[Finding]:
    fields = _compared_fields(event_model)
    tracked = event_model.pgh_tracked_model._meta.concrete_model  # type: ignore[attr-defined]
    table = tracked._meta.db_table
    if fields is None or not fields:
        return []
    q = connection.ops.quote_name
    events, rows, pk = q(event_model._meta.db_table), q(table), q(tracked._meta.pk.column)
    tracks_deletes = any(isinstance(t, pghistory.DeleteEvent) for t in getattr(event_model, "pgh_trackers", ()))
    row_values = ", ".join(f"o.{q(f)}" for f in fields)
    snapshot_values = ", ".join(f"l.{q(f)}" for f in fields)
    cursor.execute(
        f"""
        WITH latest AS (
            SELECT DISTINCT ON (pgh_obj_id) * FROM {events} ORDER BY pgh_obj_id, pgh_id DESC
        )
        SELECT coalesce(o.{pk}, l.pgh_obj_id), CASE
            WHEN l.pgh_obj_id IS NULL THEN 'no event'
            WHEN o.{pk} IS NULL THEN 'deleted'
            WHEN l.pgh_label = 'delete' THEN 'revived'
            ELSE 'differs' END
        FROM {rows} o FULL JOIN latest l ON l.pgh_obj_id = o.{pk}
        WHERE (l.pgh_obj_id IS NULL)
           OR (o.{pk} IS NULL AND l.pgh_label <> 'delete' AND %s)
           OR (o.{pk} IS NOT NULL AND l.pgh_label = 'delete')
           OR (o.{pk} IS NOT NULL AND ROW({row_values}) IS DISTINCT FROM ROW({snapshot_values}))
        ORDER BY 1
        """,  # noqa: S608
        [tracks_deletes],
    )
    problems = {
        "no event": "has no audit event (written while triggers were off)",
        "deleted": "deleted without an audit event",
        "revived": "exists although its history ends with its deletion",
        "differs": f"differs from its latest audit snapshot ({event_model._meta.db_table})",
    }
    return [Finding(table, row_id, problems[kind]) for row_id, kind in cursor.fetchall()]


def audit_verify(*, snapshots: bool = True) -> list[Finding]:
    """Every break of every chain, and (``snapshots``) every tracked row that differs from its
    latest audit snapshot. Empty when the trail is intact. Read in one snapshot of the database."""
    findings: list[Finding] = []
    outermost = not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if outermost:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        for statement in _PINNED:
            cursor.execute(statement)
        cursor.execute("SET LOCAL statement_timeout = 0")
        for model in event_models():
            findings += _verify_table(cursor, model._meta.db_table)
        if snapshots:
            for model in event_models():
                findings += _verify_snapshots(cursor, model)
    return findings


def findings_fingerprint(findings: Iterable[Finding]) -> str:
    """The same set of breaks always gives the same fingerprint (the alert's idempotency key)."""
    text = "\n".join(str(finding) for finding in sorted(findings))
    return hashlib.sha256(text.encode()).hexdigest()
