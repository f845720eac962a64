"""Adverse-event reads, scoped to the sites a user may see; arms only for those who may see them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, DateTimeField, ExpressionWrapper, F, Min, Q, QuerySet
from django.utils import timezone

from safety.models import AdverseEvent, AEStatus, SafetyPolicy
from trial import access
from trial.models import Trial

FILTERS = ("participant", "site", "serious", "category", "status")
# The columns the event list may be sorted by (trial.sorting). Not the source nor who reported it:
# to a blinded reader both can read differently from the truth (an education session tells the arm).
EVENT_SORTS: dict[str, tuple[str, ...]] = {
    "event": ("pk",),
    "participant": ("participant__study_id",),
    "aware": ("aware_at",),
    "onset": ("onset_date",),
    "category": ("category",),
    "severity": ("severity",),
    "status": ("status",),
}


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


def sae_deadline_counts(
    *, user: Any, trial: Trial, policy: SafetyPolicy, now: dt.datetime | None = None
) -> dict[str, dict[str, int]]:
    """How many serious events at the user's sites met, missed or still have open each reporting
    deadline, reckoned as ``sae_deadlines`` does, in one aggregate query (not an object per event)."""
    now = now or timezone.now()
    events = adverse_event_list(user=user, trial=trial, filters={"serious": "true"}).filter(serious_since__isnull=False)
    initial_due = ExpressionWrapper(F("aware_at") + dt.timedelta(hours=policy.initial_report_hours), DateTimeField())
    followup_due = ExpressionWrapper(F("serious_since") + dt.timedelta(days=policy.followup_report_days), DateTimeField())
    not_done = Q(first_followup_at__isnull=True)
    overdue = Q(serious_since__lt=now - dt.timedelta(days=policy.followup_report_days))
    counts = events.order_by().aggregate(
        initial_met=Count("pk", filter=Q(serious_since__lte=initial_due)),
        initial_missed=Count("pk", filter=Q(serious_since__gt=initial_due)),
        followup_met=Count("pk", filter=Q(first_followup_at__lte=followup_due)),
        followup_missed=Count("pk", filter=Q(first_followup_at__gt=followup_due) | (not_done & overdue)),
        followup_open=Count("pk", filter=not_done & ~overdue),
    )
    return {
        # The initial report is the event recorded as serious, so it is never still open.
        "initial": {"met": counts["initial_met"], "missed": counts["initial_missed"], "open": 0},
        "followup": {"met": counts["followup_met"], "missed": counts["followup_missed"], "open": counts["followup_open"]},
    }


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


def adverse_event_counts(*, user: Any, trial: Trial) -> dict[str, int]:
    """Events at the user's sites by status, and serious ones (dismissed ones left out of total and
    serious), in one aggregate query over the events alone."""
    events = AdverseEvent.objects.filter(participant__site__in=access.visible_sites(user, trial=trial))
    live = ~Q(status=AEStatus.DISMISSED)
    return events.aggregate(
        total=Count("pk", filter=live),
        pending=Count("pk", filter=Q(status=AEStatus.PENDING)),
        open=Count("pk", filter=Q(status=AEStatus.OPEN)),
        resolved=Count("pk", filter=Q(status=AEStatus.RESOLVED)),
        dismissed=Count("pk", filter=Q(status=AEStatus.DISMISSED)),
        serious=Count("pk", filter=Q(serious=True) & live),
    )


def safety_by_arm(*, user: Any, trial: Trial) -> list[ArmSummary] | None:
    """Events by arm (for unblinded roles only; None for anyone else), counted in SQL: the arms
    with their allocations, then the open and resolved events by arm and category."""
    if not access.can_see_allocation(user, trial=trial):
        return None
    arms = list(trial.arms.order_by("order").annotate(members=Count("allocations")))
    events = AdverseEvent.objects.filter(
        participant__site__trial=trial, status__in=[AEStatus.OPEN, AEStatus.RESOLVED], participant__allocation__isnull=False
    )
    by_arm_category = events.values_list("participant__allocation__arm_id", "category").annotate(
        events=Count("pk"), serious=Count("pk", filter=Q(serious=True))
    )
    with_event = dict(
        events.values_list("participant__allocation__arm_id").annotate(people=Count("participant_id", distinct=True))
    )
    totals: dict[int, dict[str, Any]] = {arm.pk: {"events": 0, "serious": 0, "by_category": {}} for arm in arms}
    for arm_id, category, count, serious in by_arm_category.order_by():
        if arm_id in totals:
            totals[arm_id]["events"] += count
            totals[arm_id]["serious"] += serious
            totals[arm_id]["by_category"][category] = count
    return [
        ArmSummary(
            arm.name,
            arm.members,
            with_event.get(arm.pk, 0),
            totals[arm.pk]["events"],
            totals[arm.pk]["serious"],
            totals[arm.pk]["by_category"],
        )
        for arm in arms
    ]
