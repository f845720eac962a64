"""Adverse-event reads, scoped to the sites a user may see; arms only for those who may see them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Min, QuerySet
from django.utils import timezone

from safety.models import AdverseEvent, AEStatus, SafetyPolicy
from trial import access
from trial.models import Allocation, Trial

FILTERS = ("participant", "site", "serious", "category", "status")


def adverse_event_list(*, user: Any, trial: Trial, filters: dict[str, str] | None = None) -> QuerySet[AdverseEvent]:
    """Events at the user's sites, newest first, with what lists show, in constant queries."""
    filters = filters or {}
    qs = (
        AdverseEvent.objects.filter(participant__site__in=access.visible_sites(user, trial=trial))
        .select_related("participant__site", "reported_by")
        .annotate(first_followup_at=Min("followups__recorded_at"))
    )
    if value := filters.get("participant"):
        # an id (at most 18 digits, as in URLs) or a study id; a longer number matches nothing, never a 500
        text = str(value)
        if text.isdigit():
            qs = qs.filter(participant_id=int(text)) if len(text) <= 18 else qs.none()
        else:
            qs = qs.filter(participant__study_id=text)
    if value := filters.get("site"):
        qs = qs.filter(participant__site__code=value)
    if value := filters.get("serious"):
        qs = qs.filter(serious=str(value).lower() in ("1", "true", "yes"))
    if value := filters.get("category"):
        qs = qs.filter(category=value)
    if value := filters.get("status"):
        qs = qs.filter(status=value)
    return qs.order_by("-aware_at", "-pk")


@dataclass(frozen=True)
class Deadline:
    due: dt.datetime
    done_at: dt.datetime | None

    @property
    def met(self) -> bool | None:
        """True met, False missed, None still open (not done, not yet due)."""
        if self.done_at is not None:
            return self.done_at <= self.due
        return False if timezone.now() > self.due else None


@dataclass(frozen=True)
class SaeDeadlines:
    initial: Deadline
    followup: Deadline


def sae_deadlines(*, event: AdverseEvent, policy: SafetyPolicy, first_followup_at: dt.datetime | None) -> SaeDeadlines | None:
    """The reporting deadlines of a serious event: the initial report (recorded as serious) within
    ``initial_report_hours`` of awareness, the first follow-up within ``followup_report_days``."""
    if not event.serious or event.serious_since is None:
        return None
    initial = Deadline(event.aware_at + dt.timedelta(hours=policy.initial_report_hours), event.serious_since)
    followup = Deadline(event.serious_since + dt.timedelta(days=policy.followup_report_days), first_followup_at)
    return SaeDeadlines(initial, followup)


def pending_reports(*, user: Any, trial: Trial) -> QuerySet[AdverseEvent]:
    return adverse_event_list(user=user, trial=trial, filters={"status": AEStatus.PENDING})


@dataclass(frozen=True)
class ArmSummary:
    arm: str
    participants: int
    with_event: int
    events: int
    serious: int
    by_category: dict[str, int]


def safety_by_arm(*, user: Any, trial: Trial) -> list[ArmSummary] | None:
    """Events by arm (for unblinded roles only; None for anyone else)."""
    if not access.can_see_allocation(user, trial=trial):
        return None
    allocations = dict(Allocation.objects.filter(participant__site__trial=trial).values_list("participant_id", "arm__name"))
    events = AdverseEvent.objects.filter(participant__site__trial=trial, status__in=[AEStatus.OPEN, AEStatus.RESOLVED])
    summaries = []
    for arm in trial.arms.order_by("order"):
        members = {pid for pid, name in allocations.items() if name == arm.name}
        mine = [e for e in events if e.participant_id in members]
        by_category: dict[str, int] = {}
        for e in mine:
            by_category[e.category] = by_category.get(e.category, 0) + 1
        summaries.append(
            ArmSummary(
                arm.name,
                len(members),
                len({e.participant_id for e in mine}),
                len(mine),
                sum(1 for e in mine if e.serious),
                by_category,
            )
        )
    return summaries
