"""The audit trail: who (staff, participant or task), when (UTC), what (old and new), why.

Model changes are caught by pghistory's triggers, so bulk updates and raw SQL are caught too;
every event table refuses UPDATE and DELETE. Non-model events are ``SecurityEvent`` rows,
themselves tracked, so one trail holds both.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import uuid
from collections.abc import Iterator
from typing import Any

import pghistory
import pghistory.models
from axes.signals import user_locked_out
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model, user_logged_in, user_logged_out, user_login_failed
from django.db import connection
from django.http import HttpRequest
from pghistory import runtime as pghistory_runtime
from pghistory.middleware import HistoryMiddleware

from trial.models import SecurityEvent, SecurityEventKind


@functools.cache
def tracked_models() -> frozenset[str]:
    """Labels of the models whose every change pghistory's triggers record."""
    tracked = (getattr(model, "pgh_tracked_model", None) for model in apps.get_models())
    return frozenset(model._meta.label_lower for model in tracked if model is not None)


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address: REMOTE_ADDR, or with ``NUM_PROXIES`` trusted proxies in front, the
    address the outermost of them saw (the N-th entry from the right of X-Forwarded-For, as DRF's
    throttles count it). Entries further left are written by the client and never trusted."""
    if request is None:
        return None
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = settings.NUM_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies <= 0 or not forwarded:
        return remote
    addresses = [part.strip() for part in forwarded.split(",") if part.strip()]
    if not addresses:
        return remote
    candidate = addresses[-min(proxies, len(addresses))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


class AuditContextMiddleware(HistoryMiddleware):
    """Every write made while serving a request names the user, the URL and the client; every
    request the superuser (the emergency account) makes, page or API, is itself a security event."""

    def get_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().get_context(request)
        context["actor"] = "staff" if context.get("user") else "anonymous"
        context["ip"] = client_ip(request)
        return context

    def __call__(self, request: HttpRequest) -> Any:
        response = super().__call__(request)
        user = getattr(request, "user", None)  # set by DRF too, for token-authenticated API calls
        if getattr(user, "is_superuser", False) and getattr(user, "is_active", False):
            security_event_record(
                kind=SecurityEventKind.SUPERUSER,
                user=user,
                ip_address=client_ip(request),
                detail={
                    "action": "request",
                    "method": request.method,
                    "path": request.path[:300],
                    "status": response.status_code,
                },
            )
        return response


def _on_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    security_event_record(kind=SecurityEventKind.LOGIN, user=user, ip_address=client_ip(request))
    if getattr(user, "is_superuser", False):
        # The emergency account (createsuperuser on the server): every use is on the record.
        security_event_record(
            kind=SecurityEventKind.SUPERUSER,
            user=user,
            ip_address=client_ip(request),
            detail={"action": "login", "path": request.path if request is not None else ""},
        )


def _on_logout(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is not None:
        security_event_record(kind=SecurityEventKind.LOGOUT, user=user, ip_address=client_ip(request))


def known_username(username: Any) -> str:
    """The username if such an account exists, else "" (a mistyped password in the username field
    must not end up in the audit trail)."""
    username = str(username or "")[:150]
    if username and get_user_model().objects.filter(username=username).exists():
        return username
    return ""


def _on_login_failed(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any) -> None:
    # Django has already masked the password in ``credentials``.
    security_event_record(
        kind=SecurityEventKind.LOGIN_FAILED,
        username=known_username(credentials.get("username")),
        ip_address=client_ip(request),
        detail={"reason": str(credentials["reason"])} if credentials.get("reason") else None,
    )


def _on_locked_out(
    sender: Any, request: HttpRequest | None = None, username: Any = None, ip_address: Any = None, **kwargs: Any
) -> None:
    security_event_record(
        kind=SecurityEventKind.LOGIN_LOCKED_OUT,
        username=known_username(username),
        ip_address=ip_address or client_ip(request),
    )


def connect_signals() -> None:
    user_logged_in.connect(_on_login, dispatch_uid="trial.audit.login")
    user_logged_out.connect(_on_logout, dispatch_uid="trial.audit.logout")
    user_login_failed.connect(_on_login_failed, dispatch_uid="trial.audit.login_failed")
    user_locked_out.connect(_on_locked_out, dispatch_uid="trial.audit.locked_out")


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


def security_event_record(
    *,
    kind: str,
    user: Any = None,
    username: str = "",
    ip_address: str | None = None,
    detail: dict[str, Any] | None = None,
) -> SecurityEvent:
    """Append a non-model event (login, download, role change) to the audit trail."""
    if user is not None and not getattr(user, "pk", None):
        user = None
    if user is not None and not username:
        username = user.get_username()
    return SecurityEvent.objects.create(kind=kind, user=user, username=username[:150], ip_address=ip_address, detail=detail or {})
