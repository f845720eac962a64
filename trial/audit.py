"""The audit trail: who (staff, participant or task), when (UTC), what (old and new), why.

Model changes are caught by pghistory's triggers, so bulk updates and raw SQL are caught too;
every event table refuses UPDATE and DELETE. Non-model events are ``SecurityEvent`` rows,
themselves tracked, so one trail holds both.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pghistory
import pghistory.models
from django.contrib.auth import get_user_model, user_logged_in, user_logged_out, user_login_failed
from django.db import connection
from django.db.models import Model
from django.http import HttpRequest
from pghistory import runtime as pghistory_runtime
from pghistory.middleware import HistoryMiddleware

from trial import access
from trial.models import SecurityEventKind, Trial


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


class AuditContextMiddleware(HistoryMiddleware):
    """Every write made while serving a request names the user, the URL and the client."""

    def get_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().get_context(request)
        context["actor"] = "staff" if context.get("user") else "anonymous"
        context["ip"] = client_ip(request)
        return context


def _on_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    from trial.services import security_event_record

    security_event_record(kind=SecurityEventKind.LOGIN, user=user, ip_address=client_ip(request))


def _on_logout(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    from trial.services import security_event_record

    if user is not None:
        security_event_record(kind=SecurityEventKind.LOGOUT, user=user, ip_address=client_ip(request))


def _on_login_failed(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any) -> None:
    from trial.services import security_event_record

    # Django has already masked the password in ``credentials``.
    security_event_record(
        kind=SecurityEventKind.LOGIN_FAILED,
        username=str(credentials.get("username", "")),
        ip_address=client_ip(request),
    )


def connect_signals() -> None:
    user_logged_in.connect(_on_login, dispatch_uid="trial.audit.login")
    user_logged_out.connect(_on_logout, dispatch_uid="trial.audit.logout")
    user_login_failed.connect(_on_login_failed, dispatch_uid="trial.audit.login_failed")


REDACTED = "(hidden: blinded role)"


@dataclass(frozen=True)
class HistoryEntry:
    at: Any
    label: str
    who: str
    reason: str
    changes: list[tuple[str, Any, Any]]
    data: dict[str, Any]


def _allocation_fields(obj: Model) -> frozenset[str]:
    from participants.models import ALLOCATION_FIELDS

    return ALLOCATION_FIELDS.get(obj._meta.label_lower, frozenset())


def record_history(*, obj: Model, user: Any, trial: Trial) -> list[HistoryEntry]:
    """Every event of one record, oldest first, with arm-revealing fields hidden from blinded roles."""
    hidden = frozenset() if access.can_see_allocation(user, trial=trial) else _allocation_fields(obj)
    events = list(pghistory.models.Events.objects.tracks(obj).order_by("pgh_created_at", "pgh_id"))
    user_ids = {e.pgh_context.get("user") for e in events if e.pgh_context and e.pgh_context.get("user")}
    names = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    entries = []
    for event in events:
        context = event.pgh_context or {}
        user_id = context.get("user")
        who = (names.get(int(user_id)) if user_id else None) or context.get("actor") or "system"
        if context.get("on_behalf_of"):
            who = f"{who} (for {context['on_behalf_of']})"
        diff = event.pgh_diff or {}
        changes = [
            (field, REDACTED if field in hidden else old, REDACTED if field in hidden else new)
            for field, (old, new) in sorted(diff.items())
        ]
        data = {k: (REDACTED if k in hidden else v) for k, v in (event.pgh_data or {}).items()}
        entries.append(
            HistoryEntry(
                at=event.pgh_created_at,
                label=event.pgh_label,
                who=str(who),
                reason=str(context.get("reason", "")),
                changes=changes,
                data=data,
            )
        )
    return entries


@contextlib.contextmanager
def audit_context(**metadata: Any) -> Iterator[None]:
    """Attribute the writes inside to an actor and reason.

    pghistory folds nested contexts into the outermost one and overwrites its metadata, so two
    actions in one request would share the last reason. Here each block gets its own context
    row (inheriting the outer metadata: user, url) and the outer one is restored on exit.
    """
    parent = getattr(pghistory_runtime._tracker, "value", None)
    if parent is None:
        with pghistory.context(**metadata):
            yield
        _forget_transaction_context()
        return
    pghistory_runtime._tracker.value = pghistory_runtime.Context(id=uuid.uuid4(), metadata={**parent.metadata, **metadata})
    try:
        yield
    finally:
        pghistory_runtime._tracker.value = parent


def _forget_transaction_context() -> None:
    # The context id is a transaction-local setting; once the block ends, later writes in the
    # same transaction must not be attributed to it. An empty id reads as "no context".
    if connection.in_atomic_block and not connection.needs_rollback:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('pghistory.context_id', '', true)")
