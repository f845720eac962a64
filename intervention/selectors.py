"""Intervention reads: physiotherapists' free slots and agendas, sessions, diary adherence."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils import timezone

from intervention.availability import Extra, Slot, Weekly, free_slots
from intervention.models import (
    OCCUPYING,
    DeliveryMode,
    ExtraSlot,
    Holiday,
    InterventionPolicy,
    Leave,
    Prescription,
    Session,
    Walk,
    WorkingHours,
)
from participants.models import Participant
from trial.models import RoleCode, Site, Trial


def intervention_policy(*, trial: Trial) -> InterventionPolicy | None:
    return InterventionPolicy.objects.filter(trial=trial).select_related("arm").first()


def participant_zone(participant: Participant) -> str:
    contact = getattr(participant, "contact", None)
    return (contact.timezone if contact is not None and contact.timezone else "") or participant.site.timezone


def physiotherapists(*, trial: Trial, site_ids: Any = None) -> QuerySet[Any]:
    qs = get_user_model().objects.filter(is_active=True, staff__role=RoleCode.PHYSIOTHERAPIST)
    if site_ids is not None:
        qs = qs.filter(staff__sites__in=site_ids)
    return qs.select_related("staff").distinct().order_by("last_name", "username")


def _offered(physio: Any) -> frozenset[str]:
    staff = getattr(physio, "staff", None)
    return frozenset(getattr(staff, "delivery_modes", None) or DeliveryMode.values)


def physiotherapist_slots(
    *,
    physiotherapist: Any,
    trial: Trial,
    date_from: dt.date,
    date_to: dt.date,
    ignore_session_id: int | None = None,
    now: dt.datetime | None = None,
) -> list[Slot]:
    """Free slots of a physiotherapist at their clinics, in a constant number of queries."""
    now = now or timezone.now()
    policy = InterventionPolicy.objects.filter(trial=trial).first()
    slot_minutes = policy.slot_minutes if policy else 45
    sites = {s.pk: s for s in Site.objects.filter(trial=trial, staff__user=physiotherapist)}
    hours = list(
        WorkingHours.objects.filter(site__in=sites.values()).filter(
            Q(physiotherapist=physiotherapist) | Q(physiotherapist__isnull=True)
        )
    )
    own_sites = {h.site_id for h in hours if h.physiotherapist_id == physiotherapist.pk}
    weekly = [
        Weekly(h.site_id, sites[h.site_id].timezone, h.weekday, h.start, h.end, frozenset(h.modes))
        for h in hours
        # a physiotherapist's own hours at a clinic replace the clinic's default hours there
        if (h.physiotherapist_id == physiotherapist.pk) or (h.physiotherapist_id is None and h.site_id not in own_sites)
    ]
    start = dt.datetime.combine(date_from, dt.time(0), tzinfo=dt.UTC) - dt.timedelta(days=1)
    end = dt.datetime.combine(date_to, dt.time(0), tzinfo=dt.UTC) + dt.timedelta(days=2)
    extras = [
        Extra(e.site_id, sites[e.site_id].timezone, e.starts_at, e.ends_at, frozenset(e.modes))
        for e in ExtraSlot.objects.filter(physiotherapist=physiotherapist, ends_at__gt=start, starts_at__lt=end)
        if e.site_id in sites
    ]
    blocked = [
        (leave.starts_at, leave.ends_at)
        for leave in Leave.objects.filter(physiotherapist=physiotherapist, ends_at__gt=start, starts_at__lt=end)
    ]
    booked = Session.objects.filter(physiotherapist=physiotherapist, status__in=OCCUPYING, ends_at__gt=start, starts_at__lt=end)
    if ignore_session_id is not None:
        booked = booked.exclude(pk=ignore_session_id)
    blocked += [(s.starts_at, s.ends_at) for s in booked if s.starts_at and s.ends_at]
    holidays = []
    for holiday in Holiday.objects.filter(
        trial=trial, date__gte=date_from - dt.timedelta(days=1), date__lte=date_to
    ).prefetch_related("sites"):
        for site_id in [s.pk for s in holiday.sites.all()] or list(sites):
            holidays.append((site_id, holiday.date))
    return free_slots(
        date_from=date_from,
        date_to=date_to,
        weekly=weekly,
        extras=extras,
        blocked=blocked,
        holidays=holidays,
        offered_modes=_offered(physiotherapist),
        slot_minutes=slot_minutes,
        not_before=now,
    )


def slot_at(
    *,
    physiotherapist: Any,
    starts_at: dt.datetime,
    trial: Trial,
    ignore_session_id: int | None = None,
    now: dt.datetime | None = None,
) -> Slot | None:
    """The free slot starting at ``starts_at``, or None."""
    day = starts_at.astimezone(dt.UTC).date()
    for slot in physiotherapist_slots(
        physiotherapist=physiotherapist,
        trial=trial,
        date_from=day - dt.timedelta(days=1),
        date_to=day + dt.timedelta(days=1),
        ignore_session_id=ignore_session_id,
        now=now,
    ):
        if slot.starts_at == starts_at:
            return slot
    return None


def sessions_for(*, participant: Participant) -> QuerySet[Session]:
    return (
        Session.objects.filter(participant=participant)
        .select_related("physiotherapist", "record", "prescription")
        .order_by("number")
    )


def agenda(*, physiotherapist: Any, date_from: dt.date, date_to: dt.date, zone: str) -> QuerySet[Session]:
    """Booked and held sessions of a physiotherapist between two local dates."""
    tz = zoneinfo.ZoneInfo(zone)
    start = dt.datetime.combine(date_from, dt.time(0), tzinfo=tz)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return (
        Session.objects.filter(physiotherapist=physiotherapist, status__in=OCCUPYING, starts_at__gte=start, starts_at__lt=end)
        .select_related("participant__site", "participant__contact", "record")
        .order_by("starts_at")
    )


@dataclass
class Week:
    starts_on: dt.date
    minutes: int = 0
    walks: int = 0
    target_minutes: int | None = None
    target_walks: int | None = None

    @property
    def met(self) -> bool | None:
        if self.target_minutes is None or self.target_walks is None:
            return None
        return self.walks >= self.target_walks and self.minutes >= self.target_minutes * self.target_walks


@dataclass
class Adherence:
    weeks: list[Week] = field(default_factory=list)
    last_walk_on: dt.date | None = None
    inactive: bool = False
    inactive_days: int = 0


def adherence(*, participant: Participant, today: dt.date | None = None) -> Adherence:
    """Minutes and walks per programme week (from randomisation) against the prescription in
    force that week, and whether nothing was logged for the configured number of days."""
    zone = zoneinfo.ZoneInfo(participant_zone(participant))
    today = today or timezone.now().astimezone(zone).date()
    if participant.randomised_at is None:
        return Adherence()
    policy = InterventionPolicy.objects.filter(trial_id=participant.site.trial_id).first()
    diary_weeks = policy.diary_weeks if policy else 12
    start = participant.randomised_at.astimezone(zone).date()
    prescriptions = list(Prescription.objects.filter(participant=participant).order_by("starts_on"))
    walks = list(Walk.objects.filter(participant=participant).values_list("walked_on", "minutes"))
    elapsed = (today - start).days // 7 + 1
    count = max(min(elapsed, max(diary_weeks, elapsed)), 0)
    weeks = [Week(start + dt.timedelta(weeks=i)) for i in range(count)]
    for week in weeks:
        current = [p for p in prescriptions if p.starts_on <= week.starts_on + dt.timedelta(days=6)]
        if current:
            week.target_minutes, week.target_walks = current[-1].minutes_per_walk, current[-1].walks_per_week
    for walked_on, minutes in walks:
        index = (walked_on - start).days // 7
        if 0 <= index < len(weeks):
            weeks[index].minutes += minutes
            weeks[index].walks += 1
    last = max((w for w, _ in walks), default=None)
    quiet_for = (today - (last or start)).days
    limit = policy.inactivity_days if policy else 14
    return Adherence(weeks=weeks, last_walk_on=last, inactive=quiet_for >= limit, inactive_days=quiet_for)
