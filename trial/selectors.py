"""Reads of trial configuration and trial-level figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, Prefetch, Q, QuerySet

from trial import access
from trial.errors import NotFound
from trial.models import Arm, EligibilityCriterion, SecurityEvent, Site, StratificationFactor, StratumLevel, Trial


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
    from participants.models import Participant

    return Participant.objects.filter(site__trial=trial, randomised_at__isnull=False).exists()


@dataclass(frozen=True)
class SiteCounts:
    site: Site
    participants: int
    randomised: int
    withdrawn: int
    by_arm: dict[str, int] | None


def site_counts(*, trial: Trial, user: Any) -> list[SiteCounts]:
    """Participant counts per site the user may see; counts by arm only for unblinded roles."""
    from participants.models import Participant, ParticipantStatus

    sites = list(access.visible_sites(user, trial=trial).order_by("code"))
    sees_arm = access.can_see_allocation(user, trial=trial)
    arms = list(trial.arms.order_by("order", "code")) if sees_arm else []
    aggregates: dict[str, Any] = {
        "participants": Count("id"),
        "randomised": Count("id", filter=Q(randomised_at__isnull=False)),
        "withdrawn": Count("id", filter=Q(status=ParticipantStatus.WITHDRAWN)),
    }
    for arm in arms:
        aggregates[f"arm_{arm.pk}"] = Count("id", filter=Q(allocation__arm=arm))
    rows = {
        row["site"]: row for row in Participant.objects.filter(site__in=sites).values("site").annotate(**aggregates).order_by()
    }
    result = []
    for site in sites:
        row = rows.get(site.pk, {})
        result.append(
            SiteCounts(
                site=site,
                participants=row.get("participants", 0),
                randomised=row.get("randomised", 0),
                withdrawn=row.get("withdrawn", 0),
                by_arm={arm.name: row.get(f"arm_{arm.pk}", 0) for arm in arms} if sees_arm else None,
            )
        )
    return result


def security_event_list(*, filters: dict[str, Any] | None = None) -> QuerySet[SecurityEvent]:
    filters = filters or {}
    qs = SecurityEvent.objects.select_related("user").order_by("-created_at")
    if kind := filters.get("kind"):
        qs = qs.filter(kind=kind)
    if username := filters.get("username"):
        qs = qs.filter(Q(username__icontains=username) | Q(user__username__icontains=username))
    return qs


def heartbeat_age_seconds(*, name: str = "worker") -> float | None:
    from django.utils import timezone

    from trial.models import Heartbeat

    beat = Heartbeat.objects.filter(name=name).first()
    return None if beat is None else (timezone.now() - beat.last_seen).total_seconds()
