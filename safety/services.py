"""Adverse-event writes. A serious event alerts the trial's safety contacts once, on commit; no
message or page about an event carries the participant's arm."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field, fields
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from participants.models import Participant
from safety.models import (
    AdverseEvent,
    AEFollowUp,
    AEOutcome,
    AESource,
    AEStatus,
    Relatedness,
    SafetyPolicy,
    SeriousCriterion,
    Severity,
)
from trial import access
from trial.access import Perm
from trial.audit import audit_context
from trial.errors import ApplicationError, Conflict
from trial.guard import ensure_writable
from trial.models import ContactKind, Trial
from trial.notifications import notification_queue, staff_emails

RESOLVED_OUTCOMES = {AEOutcome.RECOVERED, AEOutcome.SEQUELAE, AEOutcome.FATAL}


def safety_policy(*, trial: Trial) -> SafetyPolicy:
    return SafetyPolicy.objects.filter(trial=trial).first() or SafetyPolicy(trial=trial)


def safety_defaults_apply(*, trial: Trial, categories: list[list[str]]) -> None:
    SafetyPolicy.objects.get_or_create(trial=trial, defaults={"categories": categories})


def _require(user: Any, participant: Participant) -> Trial:
    trial = participant.site.trial
    access.require(
        user,
        Perm.REPORT_ADVERSE_EVENTS,
        trial=trial,
        site_id=participant.site_id,
        message="Your role may not record adverse events.",
    )
    return trial


@dataclass
class AEInput:
    """The fields staff complete. Every field is validated together; errors come back per field."""

    onset_date: dt.date | None = None
    description: str = ""
    category: str = ""
    severity: str = ""
    serious: bool = False
    serious_criteria: list[str] = field(default_factory=list)
    relatedness: str = ""
    expected: bool | None = None
    action_taken: str = ""
    outcome: str = ""
    resolution_date: dt.date | None = None


def _validate(data: AEInput, *, participant: Participant, policy: SafetyPolicy, today: dt.date) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if data.onset_date is None:
        errors["onset_date"] = [gettext("When did it start?")]
    elif data.onset_date > today:
        errors["onset_date"] = [gettext("In the future.")]
    if not data.description.strip():
        errors["description"] = [gettext("Describe the event.")]
    categories = {code for code, _ in policy.categories}
    if data.category not in categories:
        errors["category"] = [f"One of: {', '.join(sorted(categories))}."]
    if data.severity not in Severity.values:
        errors["severity"] = [gettext("Mild, moderate or severe.")]
    if data.serious and not data.serious_criteria:
        errors["serious_criteria"] = [gettext("A serious event meets at least one criterion.")]
    if unknown := [c for c in data.serious_criteria if c not in SeriousCriterion.values]:
        errors["serious_criteria"] = [f"Unknown: {', '.join(unknown)}."]
    if not data.serious and data.serious_criteria:
        errors["serious"] = [gettext("Criteria were chosen: mark the event serious, or clear them.")]
    if data.relatedness and data.relatedness not in Relatedness.values:
        errors["relatedness"] = [f"One of: {', '.join(Relatedness.values)}."]
    if data.outcome and data.outcome not in AEOutcome.values:
        errors["outcome"] = [f"One of: {', '.join(AEOutcome.values)}."]
    if data.resolution_date is not None:
        if data.onset_date is not None and data.resolution_date < data.onset_date:
            errors["resolution_date"] = [gettext("Before the onset.")]
        elif data.resolution_date > today:
            errors["resolution_date"] = [gettext("In the future.")]
    if data.outcome == AEOutcome.FATAL and SeriousCriterion.DEATH not in data.serious_criteria:
        errors["serious_criteria"] = [gettext("A fatal outcome makes the event serious (death).")]
    return errors


def _today(participant: Participant) -> dt.date:
    return timezone.now().astimezone(zoneinfo.ZoneInfo(participant.site.timezone)).date()


def _apply(event: AdverseEvent, data: AEInput, now: dt.datetime) -> bool:
    """Copy the input onto the event; return whether it has just become serious."""
    became_serious = data.serious and not event.serious
    for f in fields(AEInput):
        value = getattr(data, f.name)
        setattr(event, f.name, value.strip() if isinstance(value, str) else value)
    if became_serious:
        event.serious_since = now
    if not data.serious:
        event.serious_since = None
    resolved = data.outcome in RESOLVED_OUTCOMES and data.resolution_date is not None
    event.status = AEStatus.RESOLVED if resolved else AEStatus.OPEN
    return became_serious


def _alert_if_serious(event: AdverseEvent) -> None:
    """Alert the safety contacts once per serious event (the notification key makes it once)."""
    if not event.serious:
        return
    participant = event.participant
    trial = participant.site.trial
    criteria = ", ".join(SeriousCriterion(c).label.lower() for c in event.serious_criteria)
    policy = safety_policy(trial=trial)
    notification_queue(
        key=f"sae:{event.pk}",
        kind="serious_adverse_event",
        recipients=staff_emails(trial=trial, contact_kind=ContactKind.SAFETY),
        subject=f"{trial.name}: serious adverse event {event.pk} ({participant.study_id}, {participant.site.code})",
        body=(
            f"A serious adverse event was recorded for {participant.study_id} at {participant.site.name}.\n\n"
            f"Onset: {event.onset_date:%d %b %Y}\nSeriousness: {criteria}\nSeverity: {event.get_severity_display()}\n"
            f"Category: {dict(map(tuple, policy.categories)).get(event.category, event.category)}\n"
            f"Description: {event.description}\n\n"
            f"Initial report due within {policy.initial_report_hours} hours of awareness "
            f"({event.aware_at:%d %b %Y %H:%M} UTC); first follow-up within {policy.followup_report_days} days.\n"
        ),
    )


@transaction.atomic
def adverse_event_record(
    *,
    participant: Participant,
    data: AEInput,
    by: Any,
    source: str = AESource.STAFF,
    session_id: int | None = None,
    aware_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> AdverseEvent:
    """Staff enter an adverse event (or a physiotherapist reports one from session ``session_id``)."""
    now = now or timezone.now()
    participant = Participant.objects.select_related("site__trial").get(pk=participant.pk)
    trial = _require(by, participant)
    ensure_writable(trial=trial)
    session = None
    if session_id is not None:
        # The intervention's session, reached through the event's own key: safety never imports it.
        sessions: Any = AdverseEvent._meta.get_field("session").related_model
        session = sessions._default_manager.filter(pk=session_id, participant=participant).first()
        if session is None:
            raise ApplicationError(
                gettext("That session is not this participant's."), errors={"session": [gettext("Another participant's.")]}
            )
    errors = _validate(data, participant=participant, policy=safety_policy(trial=trial), today=_today(participant))
    if errors:
        raise ApplicationError(gettext("The adverse event needs your attention."), errors=errors)
    event = AdverseEvent(
        participant=participant,
        source=AESource.SESSION if session is not None else source,
        session_id=session_id,
        aware_at=aware_at or now,
        reported_by=by,
    )
    _apply(event, data, now)
    with audit_context(reason="Adverse event reported"):
        event.save()
    _alert_if_serious(event)
    return event


@transaction.atomic
def adverse_event_update(*, event: AdverseEvent, data: AEInput, reason: str, by: Any) -> AdverseEvent:
    """Change an event (or complete a pending report: the reason can then be the review)."""
    event = AdverseEvent.objects.select_for_update(of=("self",)).select_related("participant__site__trial").get(pk=event.pk)
    trial = _require(by, event.participant)
    ensure_writable(trial=trial)
    if event.status == AEStatus.DISMISSED:
        raise Conflict(gettext("This report was dismissed; record a new event instead."))
    if not reason.strip():
        raise ApplicationError(gettext("Say why the event changes."), errors={"reason": [gettext("Required.")]})
    errors = _validate(data, participant=event.participant, policy=safety_policy(trial=trial), today=_today(event.participant))
    if errors:
        raise ApplicationError(gettext("The adverse event needs your attention."), errors=errors)
    if event.reported_by is None:
        event.reported_by = by
    _apply(event, data, timezone.now())
    with audit_context(reason=reason.strip()):
        event.save()
    _alert_if_serious(event)
    return event


@transaction.atomic
def adverse_event_dismiss(*, event: AdverseEvent, reason: str, by: Any) -> AdverseEvent:
    """A pending questionnaire report that is not an adverse event is dismissed, with a reason."""
    event = AdverseEvent.objects.select_for_update(of=("self",)).select_related("participant__site__trial").get(pk=event.pk)
    trial = _require(by, event.participant)
    ensure_writable(trial=trial)
    if event.status != AEStatus.PENDING:
        raise Conflict(gettext("Only a report waiting for review can be dismissed."))
    if not reason.strip():
        raise ApplicationError(gettext("Say why it is not an adverse event."), errors={"reason": [gettext("Required.")]})
    with audit_context(reason=reason.strip()):
        event.status = AEStatus.DISMISSED
        event.dismissed_reason = reason.strip()[:300]
        event.save(update_fields=["status", "dismissed_reason", "updated_at"])
    return event


@transaction.atomic
def adverse_event_followup_add(
    *,
    event: AdverseEvent,
    note: str,
    by: Any,
    outcome: str = "",
    resolution_date: dt.date | None = None,
    reported_on: dt.date | None = None,
    now: dt.datetime | None = None,
) -> AEFollowUp:
    """A follow-up report; an outcome of recovered (with a date), with sequelae or fatal resolves the event."""
    now = now or timezone.now()
    event = AdverseEvent.objects.select_for_update(of=("self",)).select_related("participant__site__trial").get(pk=event.pk)
    trial = _require(by, event.participant)
    ensure_writable(trial=trial)
    if event.status not in (AEStatus.OPEN, AEStatus.RESOLVED):
        raise Conflict(gettext("Complete the report before adding follow-ups."))
    errors: dict[str, list[str]] = {}
    if not note.strip():
        errors["note"] = [gettext("What is the news?")]
    if outcome and outcome not in AEOutcome.values:
        errors["outcome"] = [f"One of: {', '.join(AEOutcome.values)}."]
    if resolution_date is not None and event.onset_date is not None and resolution_date < event.onset_date:
        errors["resolution_date"] = [gettext("Before the onset.")]
    if outcome in RESOLVED_OUTCOMES and outcome != AEOutcome.FATAL and resolution_date is None:
        errors["resolution_date"] = [gettext("When did it resolve?")]
    if errors:
        raise ApplicationError(gettext("The follow-up needs your attention."), errors=errors)
    with audit_context(reason="Adverse event follow-up"):
        followup = AEFollowUp.objects.create(
            event=event,
            reported_on=reported_on or _today(event.participant),
            note=note.strip(),
            outcome=outcome,
            recorded_by=by,
            recorded_at=now,
        )
        if outcome:
            event.outcome = outcome
            event.resolution_date = resolution_date if outcome in RESOLVED_OUTCOMES else None
            event.status = AEStatus.RESOLVED if outcome in RESOLVED_OUTCOMES else AEStatus.OPEN
            event.save(update_fields=["outcome", "resolution_date", "status", "updated_at"])
    return followup


def adverse_event_from_response(*, response: Any) -> AdverseEvent | None:
    """A "yes" to "any new health problems?" becomes a pending report for staff to review (once
    per questionnaire answer; inside the answer's transaction)."""
    answers = response.answers or {}
    if answers.get("new_health_problem") not in (True, "yes"):
        return None
    event, created = AdverseEvent.objects.get_or_create(
        response=response,
        defaults={
            "participant": response.occurrence.participant,
            "source": AESource.QUESTIONNAIRE,
            "status": AEStatus.PENDING,
            "reported_text": str(answers.get("new_health_problem_details", ""))[:2000],
            "aware_at": response.submitted_at,
        },
    )
    return event if created else None
