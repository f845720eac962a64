"""Follow-up schedules: planned at randomisation, re-planned when the trial's rules change,
cancelled on withdrawal from follow-up, opened and closed by a periodic sweep."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from followup.models import Occurrence, OccurrenceStatus, RuleKind, ScheduleRule
from followup.scheduling import Planned, RuleSpec, plan
from participants.models import ContactDetails, Participant, ParticipantStatus
from trial.audit import audit_context
from trial.guard import ensure_writable
from trial.models import Trial

ACTIVE = (OccurrenceStatus.SCHEDULED, OccurrenceStatus.OPEN)


def schedule_rules(*, trial: Trial) -> list[RuleSpec]:
    specs = []
    for rule in ScheduleRule.objects.filter(trial=trial).order_by("instrument"):
        months = tuple(range(1, trial.max_followup_months + 1)) if rule.kind == RuleKind.MONTHLY else tuple(rule.months)
        specs.append(RuleSpec(rule.instrument, months, rule.open_days_before, rule.close_days_after))
    return specs


def participant_timezone(*, participant: Participant) -> str:
    zone = ContactDetails.objects.filter(participant=participant).values_list("timezone", flat=True).first()
    return zone or participant.site.timezone


def _planned_for(*, participant: Participant, trial: Trial, rules: list[RuleSpec]) -> list[Planned]:
    assert participant.randomised_at is not None
    zone = participant_timezone(participant=participant)
    import zoneinfo

    randomised_on = participant.randomised_at.astimezone(zoneinfo.ZoneInfo(zone)).date()
    return plan(
        randomised_on=randomised_on, followup_end=trial.followup_end, max_months=trial.max_followup_months, rules=rules, zone=zone
    )


def _status_at(planned: Planned, now: dt.datetime) -> str:
    if now >= planned.closes_at:
        return OccurrenceStatus.MISSED
    if now >= planned.opens_at:
        return OccurrenceStatus.OPEN
    return OccurrenceStatus.SCHEDULED


def schedule_create(*, participant: Participant, now: dt.datetime | None = None) -> int:
    """Plan a newly randomised participant's questionnaires (in the randomisation's transaction,
    which holds the participant's row lock). Safe to call again: a planned participant is left as is.

    The rows go in with COPY: a schedule is some 40 rows, written with every randomisation, and
    COPY costs a fraction of a multi-row INSERT. Row triggers (the audit trail) fire as for INSERT.
    """
    now = now or timezone.now()
    if Occurrence.objects.filter(participant=participant).exists():
        return 0
    trial = participant.site.trial
    planned = _planned_for(participant=participant, trial=trial, rules=schedule_rules(trial=trial))
    columns = ("participant_id", "instrument", "month", "due_date", "opens_at", "closes_at", "status", "cancelled_reason")
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {Occurrence._meta.db_table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for p in planned:
            copy.write_row((participant.pk, p.instrument, p.month, p.due_date, p.opens_at, p.closes_at, _status_at(p, now), ""))
    return len(planned)


@dataclass(frozen=True)
class ReplanResult:
    participants: int
    added: int
    moved: int
    cancelled: int


@transaction.atomic
def schedule_replan(*, trial: Trial, reason: str, now: dt.datetime | None = None) -> ReplanResult:
    """Bring every follow-up schedule in line with the trial's current end date and rules.

    Only occurrences not yet open change: completed, missed, cancelled and open ones are kept as
    they are. Occurrences no longer in the plan are cancelled (kept, with the reason), new ones added.
    """
    ensure_writable(trial=trial)
    now = now or timezone.now()
    rules = schedule_rules(trial=trial)
    participants = (
        Participant.objects.filter(site__trial=trial, randomised_at__isnull=False)
        .exclude(status=ParticipantStatus.WITHDRAWN)
        .select_related("site")
    )
    added = moved = cancelled = count = 0
    with audit_context(reason=reason):
        for participant in participants:
            count += 1
            wanted = {(p.instrument, p.month): p for p in _planned_for(participant=participant, trial=trial, rules=rules)}
            existing = {
                (o.instrument, o.month): o for o in Occurrence.objects.select_for_update().filter(participant=participant)
            }
            for key, occurrence in existing.items():
                if occurrence.status != OccurrenceStatus.SCHEDULED:
                    continue
                target = wanted.get(key)
                if target is None:
                    occurrence.status = OccurrenceStatus.CANCELLED
                    occurrence.cancelled_reason = "No longer in the follow-up schedule"
                    occurrence.save(update_fields=["status", "cancelled_reason"])
                    cancelled += 1
                elif (occurrence.due_date, occurrence.opens_at, occurrence.closes_at) != (
                    target.due_date,
                    target.opens_at,
                    target.closes_at,
                ):
                    occurrence.due_date, occurrence.opens_at, occurrence.closes_at = (
                        target.due_date,
                        target.opens_at,
                        target.closes_at,
                    )
                    occurrence.status = _status_at(target, now)
                    occurrence.save(update_fields=["due_date", "opens_at", "closes_at", "status"])
                    moved += 1
            new = [
                Occurrence(
                    participant=participant,
                    instrument=p.instrument,
                    month=p.month,
                    due_date=p.due_date,
                    opens_at=p.opens_at,
                    closes_at=p.closes_at,
                    status=_status_at(p, now),
                )
                for key, p in wanted.items()
                if key not in existing
            ]
            added += len(Occurrence.objects.bulk_create(new, ignore_conflicts=True))
    return ReplanResult(count, added, moved, cancelled)


def schedule_cancel(*, participant: Participant, reason: str) -> int:
    """Cancel the open and future questionnaires of a participant withdrawn from follow-up."""
    return Occurrence.objects.filter(participant=participant, status__in=ACTIVE).update(
        status=OccurrenceStatus.CANCELLED, cancelled_reason=reason[:200]
    )


@transaction.atomic
def occurrences_advance(*, now: dt.datetime | None = None) -> tuple[int, int]:
    """Open the windows that have begun and mark missed those that ended uncompleted. Idempotent."""
    now = now or timezone.now()
    with audit_context(actor="sweep:occurrences", reason="Questionnaire window opened or closed"):
        missed = Occurrence.objects.filter(status__in=ACTIVE, closes_at__lte=now).update(status=OccurrenceStatus.MISSED)
        opened = Occurrence.objects.filter(status=OccurrenceStatus.SCHEDULED, opens_at__lte=now, closes_at__gt=now).update(
            status=OccurrenceStatus.OPEN
        )
    return opened, missed


def schedule_for(*, participant: Participant) -> Any:
    return Occurrence.objects.filter(participant=participant).order_by("due_date", "instrument")
