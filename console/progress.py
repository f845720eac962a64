"""The trial's progress for the dashboard: recruitment against the target, the screening funnel,
follow-up completion by month, and what needs attention, each with the list behind it.

Pooled over the sites the user may see; nothing here is by arm, so every role may see it. Each
read is one aggregate query, whatever the number of participants.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce, TruncMonth
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext

from closeout.models import DataQuery, QueryStatus
from followup.models import InstrumentVersion, Occurrence, OccurrenceStatus, OccurrenceTally, RuleKind, ScheduleRule
from participants.models import Participant, Screening, ScreeningOutcome
from safety.models import AdverseEvent, AEStatus
from safety.services import safety_policy
from trial import access
from trial.access import Perm
from trial.models import Trial


@dataclass(frozen=True)
class MonthCount:
    month: dt.date  # the first day of the calendar month
    randomised: int
    cumulative: int
    target: int  # where a straight line from 0 at the start to the target at the end would be


@dataclass(frozen=True)
class Step:
    label: str
    n: int


@dataclass(frozen=True)
class Completion:
    month: int  # months after randomisation
    completed: int
    closed: int  # completed or missed

    @property
    def percent(self) -> int:
        return round(100 * self.completed / self.closed) if self.closed else 0


@dataclass(frozen=True)
class Attention:
    label: str
    n: int
    url: str


def _months(start: dt.date, end: dt.date) -> list[dt.date]:
    months, month = [], start.replace(day=1)
    while month <= end:
        months.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return months


def recruitment_by_month(*, trial: Trial, user: Any, today: dt.date | None = None) -> list[MonthCount]:
    """Randomised per calendar month (the trial's time zone), from the start of recruitment to
    this month or its end, with the cumulative count and the target's straight line."""
    zone = zoneinfo.ZoneInfo(trial.timezone)
    today = today or timezone.localdate(timezone=zone)
    counts = dict(
        Participant.objects.filter(site__in=access.visible_sites(user, trial=trial), randomised_at__isnull=False)
        .annotate(month=TruncMonth("randomised_at", tzinfo=zone))
        .values("month")
        .annotate(n=Count("id"))
        .values_list("month", "n")
    )
    by_month = {month.date() if isinstance(month, dt.datetime) else month: n for month, n in counts.items()}
    last = min(max(today, trial.recruitment_start), trial.recruitment_end)
    months = _months(trial.recruitment_start, max(last, *(m for m in by_month), trial.recruitment_start))
    span = max((trial.recruitment_end - trial.recruitment_start).days, 1)
    result, total = [], 0
    for month in months:
        total += by_month.get(month, 0)
        month_end = min((month + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1), trial.recruitment_end)
        elapsed = max((month_end - trial.recruitment_start).days + 1, 0)
        result.append(
            MonthCount(
                month,
                by_month.get(month, 0),
                total,
                min(trial.recruitment_target, round(trial.recruitment_target * elapsed / span)),
            )
        )
    return result


def screening_funnel(*, trial: Trial, user: Any) -> list[Step]:
    """Screened, eligible, enrolled (consented), randomised."""
    sites = access.visible_sites(user, trial=trial)
    screened = Screening.objects.filter(site__in=sites).aggregate(
        screened=Count("id"),
        eligible=Count("id", filter=Q(eligible=True)),
        enrolled=Count("id", filter=Q(outcome=ScreeningOutcome.ENROLLED)),
    )
    randomised = Participant.objects.filter(site__in=sites, randomised_at__isnull=False).count()
    return [
        Step(gettext("Screened"), screened["screened"]),
        Step(gettext("Eligible"), screened["eligible"]),
        Step(gettext("Consented and enrolled"), screened["enrolled"]),
        Step(gettext("Randomised"), randomised),
    ]


def followup_completion(*, trial: Trial, user: Any) -> list[Completion]:
    """For each month after randomisation: monthly questionnaires completed of those closed (from
    the tally the questionnaires' triggers keep, not by reading every questionnaire)."""
    monthly = ScheduleRule.objects.filter(trial=trial, kind=RuleKind.MONTHLY).values("instrument")
    rows = (
        OccurrenceTally.objects.filter(site__in=access.visible_sites(user, trial=trial), instrument__in=monthly)
        .values("month")
        .annotate(
            completed=Coalesce(Sum("n", filter=Q(status=OccurrenceStatus.COMPLETED)), 0),
            closed=Coalesce(Sum("n"), 0),
        )
        .filter(closed__gt=0)
        .order_by("month")
    )
    return [Completion(row["month"], row["completed"], row["closed"]) for row in rows]


def needs_attention(*, trial: Trial, user: Any, today: dt.date | None = None) -> list[Attention]:
    """Questionnaires overdue, open data queries and serious adverse events awaiting review, for
    the roles that can act on them, each linking to its list."""
    perms = access.access_for(user, trial).perms
    sites = access.visible_sites(user, trial=trial)
    today = today or timezone.localdate(timezone=zoneinfo.ZoneInfo(trial.timezone))
    items = []
    if Perm.ENTER_FOLLOWUP in perms:
        overdue = Occurrence.objects.filter(
            participant__site__in=sites,
            status=OccurrenceStatus.OPEN,
            due_date__lt=today,
            instrument__in=ScheduleRule.objects.filter(trial=trial).values("instrument"),
        ).count()
        items.append(Attention(gettext("Questionnaires overdue"), overdue, reverse("followup-worklist")))
    if Perm.VIEW_PARTICIPANTS in perms:
        open_queries = DataQuery.objects.filter(trial=trial, site__in=sites, status=QueryStatus.OPEN).count()
        items.append(Attention(gettext("Open data queries"), open_queries, f"{reverse('query-list')}?status=open"))
    if Perm.REPORT_ADVERSE_EVENTS in perms:
        serious = AdverseEvent.objects.filter(participant__site__in=sites, serious=True, status=AEStatus.PENDING).count()
        items.append(Attention(gettext("Serious adverse events awaiting review"), serious, reverse("safety-overview")))
    return items


@dataclass(frozen=True)
class QuestionnaireCompleteness:
    instrument: str
    title: str
    month: int
    completed: int
    closed: int

    @property
    def percent(self) -> int:
        return round(100 * self.completed / self.closed) if self.closed else 0


@dataclass(frozen=True)
class SafetyRow:
    category: str
    events: int
    serious: int
    participants: int


def questionnaire_completeness(*, trial: Trial, user: Any) -> list[QuestionnaireCompleteness]:
    """For every scheduled questionnaire at fixed months (e.g. 3, 6, 9, 12): completed of closed."""
    fixed = list(ScheduleRule.objects.filter(trial=trial, kind=RuleKind.FIXED).values_list("instrument", flat=True))
    titles = dict(
        InstrumentVersion.objects.filter(trial=trial, code__in=fixed).order_by("published_at").values_list("code", "title")
    )
    rows = (
        OccurrenceTally.objects.filter(site__in=access.visible_sites(user, trial=trial), instrument__in=fixed)
        .values("instrument", "month")
        .annotate(
            completed=Coalesce(Sum("n", filter=Q(status=OccurrenceStatus.COMPLETED)), 0),
            closed=Coalesce(Sum("n"), 0),
        )
        .filter(closed__gt=0)
        .order_by("instrument", "month")
    )
    return [
        QuestionnaireCompleteness(
            r["instrument"], titles.get(r["instrument"], r["instrument"]), r["month"], r["completed"], r["closed"]
        )
        for r in rows
    ]


def safety_summary(*, trial: Trial, user: Any) -> list[SafetyRow]:
    """Adverse events (not dismissed) by category, pooled: events, serious events, participants."""
    labels = {code: label for code, label in safety_policy(trial=trial).categories}
    rows = (
        AdverseEvent.objects.filter(participant__site__in=access.visible_sites(user, trial=trial))
        .exclude(status=AEStatus.DISMISSED)
        .values("category")
        .annotate(
            events=Count("id"), serious=Count("id", filter=Q(serious=True)), participants=Count("participant", distinct=True)
        )
        .order_by("category")
    )
    return [
        SafetyRow(labels.get(r["category"], r["category"] or "Not yet categorised"), r["events"], r["serious"], r["participants"])
        for r in rows
    ]
