"""Reads of trial configuration and trial-level figures."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Prefetch, Q, QuerySet

from trial.errors import NotFound
from trial.models import (
    Allocation,
    Arm,
    EligibilityCriterion,
    Heartbeat,
    SecurityEvent,
    Site,
    StratificationFactor,
    StratumLevel,
    Trial,
)


def trial_get_current() -> Trial:
    """The trial this installation runs (``TRIAL_CODE``)."""
    trial = Trial.objects.filter(code=settings.TRIAL_CODE).first()
    if trial is None:
        raise NotFound(
            f"No trial with code '{settings.TRIAL_CODE}' is configured yet. "
            "Run 'python manage.py setup_walkback' (or configure one in admin)."
        )
    return trial


def trial_get_current_or_none() -> Trial | None:
    return Trial.objects.filter(code=settings.TRIAL_CODE).first()


def contact_sites() -> list[Site]:
    """The current trial's active sites that give participants a study-team contact, for pages
    shown to someone whose site is not known (a link that does not work)."""
    sites = Site.objects.filter(trial__code=settings.TRIAL_CODE, active=True).order_by("code")
    return [site for site in sites if site.contact_lines]


def trial_configuration(*, trial: Trial) -> Trial:
    """The trial with its arms, sites, strata and levels, and checklist, in a fixed number of queries."""
    return (
        Trial.objects.filter(pk=trial.pk)
        .prefetch_related(
            Prefetch("arms", queryset=Arm.objects.order_by("order", "code")),
            Prefetch("sites", queryset=Site.objects.order_by("code")),
            Prefetch(
                "strata",
                queryset=StratificationFactor.objects.order_by("order", "code").prefetch_related(
                    Prefetch("levels", queryset=StratumLevel.objects.order_by("order", "code"))
                ),
            ),
            Prefetch("eligibility", queryset=EligibilityCriterion.objects.filter(active=True).order_by("order", "code")),
        )
        .get()
    )


def trial_has_randomised(*, trial: Trial) -> bool:
    """Whether anyone has been randomised (after which arms, ratio and strata are frozen)."""
    # An allocation is written in the same transaction as the participant's randomisation.
    return Allocation.objects.filter(arm__trial=trial).exists()


# The columns the audit trail may be sorted by (trial.sorting).
SECURITY_EVENT_SORTS: dict[str, tuple[str, ...]] = {"when": ("created_at",), "event": ("kind",), "user": ("username",)}


def security_event_list(*, filters: dict[str, Any] | None = None) -> QuerySet[SecurityEvent]:
    filters = filters or {}
    qs = SecurityEvent.objects.select_related("user").order_by("-created_at", "-id")
    if kind := filters.get("kind"):
        qs = qs.filter(kind=kind)
    if username := filters.get("username"):
        qs = qs.filter(Q(username__icontains=username) | Q(user__username__icontains=username))
    return qs


def heartbeat_age_seconds(*, name: str = "worker") -> float | None:
    from django.utils import timezone

    beat = Heartbeat.objects.filter(name=name).first()
    return None if beat is None else (timezone.now() - beat.last_seen).total_seconds()


def audit_chain_heads(*, at: Any = None, cursor: Any = None) -> dict[str, str]:
    """{event table: row_hash of its last event}: the chain heads to keep outside the database.

    ``at`` (a datetime): the heads as they were then (the last event recorded by that moment), so a
    release rebuilt later from the same lock gives the same heads. ``cursor``: read in the caller's
    snapshot."""
    from django.db import connection

    from trial.auditchain import event_models

    def read(cur: Any) -> dict[str, str]:
        heads: dict[str, str] = {}
        for model in event_models():
            table = model._meta.db_table
            cur.execute(
                f"SELECT row_hash FROM {connection.ops.quote_name(table)} "  # noqa: S608
                "WHERE pgh_created_at <= coalesce(%s, 'infinity'::timestamptz) ORDER BY pgh_id DESC LIMIT 1",
                [at],
            )
            row = cur.fetchone()
            if row is not None:
                heads[table] = row[0]
        return heads

    if cursor is not None:
        return read(cursor)
    with connection.cursor() as own:
        return read(own)
