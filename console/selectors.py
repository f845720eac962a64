"""Reads that combine features, for the pages of this layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q

from participants.models import Participant, ParticipantStatus
from trial import access
from trial.models import Site, Trial


@dataclass(frozen=True)
class SiteCounts:
    site: Site
    participants: int
    randomised: int
    withdrawn: int
    by_arm: dict[str, int] | None


def site_counts(*, trial: Trial, user: Any) -> list[SiteCounts]:
    """Participant counts per site the user may see; counts by arm only for unblinded roles."""
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
