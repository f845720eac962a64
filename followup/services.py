"""Follow-up schedules: planned at randomisation, re-planned when the trial's rules change,
cancelled on withdrawal from follow-up, opened and closed by a periodic sweep."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from followup.instruments import DefinitionError, clean_answers, score, validate_definition
from followup.models import (
    AccessLink,
    InstrumentVersion,
    Occurrence,
    OccurrenceStatus,
    QuestionnaireResponse,
    ResponseSource,
    RuleKind,
    ScheduleRule,
)
from followup.scheduling import Planned, RuleSpec, plan
from participants.models import ContactDetails, Participant, ParticipantStatus
from trial.audit import audit_context
from trial.errors import ApplicationError, Conflict, NotFound
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


# --- Instruments ----------------------------------------------------------------------------


def instrument_publish(*, trial: Trial, definition: dict[str, Any]) -> InstrumentVersion:
    """Publish a questionnaire version. Publishing the same version again with the same definition
    does nothing; with a different one it is refused (published versions never change)."""
    try:
        validate_definition(definition=definition)
    except DefinitionError as exc:
        raise ApplicationError(f"The questionnaire definition is not valid: {exc}") from exc
    existing = InstrumentVersion.objects.filter(trial=trial, code=definition["code"], version=definition["version"]).first()
    if existing is not None:
        if existing.definition != definition:
            raise Conflict(
                f"{definition['code']} v{definition['version']} is already published with other content; publish a new version."
            )
        return existing
    return InstrumentVersion.objects.create(
        trial=trial, code=definition["code"], version=definition["version"], title=definition["title"], definition=definition
    )


def instrument_for(*, occurrence: Occurrence) -> InstrumentVersion:
    """The version current when the occurrence opened (or the first one, if it opened before any)."""
    versions = InstrumentVersion.objects.filter(trial_id=occurrence.participant.site.trial_id, code=occurrence.instrument)
    version = versions.filter(published_at__lte=occurrence.opens_at).order_by("-published_at").first()
    version = version or versions.order_by("published_at").first()
    if version is None:
        raise NotFound(f"No questionnaire '{occurrence.instrument}' is published.")
    return version


# --- Personal links -------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def access_link_issue(*, participant: Participant, by: Any = None) -> str:
    """A new personal link token (256 bits); the participant's previous link stops working."""
    trial = participant.site.trial
    ensure_writable(trial=trial)
    if participant.withdrawal_scope in ("followup", "consent"):
        raise Conflict(f"{participant.study_id} has withdrawn from follow-up: no questionnaire link is issued.")
    Participant.objects.select_for_update(of=("self",)).filter(pk=participant.pk).first()
    now = timezone.now()
    AccessLink.objects.filter(participant=participant, revoked_at__isnull=True).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    AccessLink.objects.create(participant=participant, token_sha256=_token_hash(token), created_by=by)
    return token


def access_link_participant(*, token: str) -> Participant | None:
    """The participant a live link belongs to, or None (unknown, revoked, or malformed token)."""
    if not token or len(token) > 100:
        return None
    link = (
        AccessLink.objects.select_related("participant__site__trial")
        .filter(token_sha256=_token_hash(token), revoked_at__isnull=True)
        .first()
    )
    return link.participant if link else None


def open_occurrences(*, participant: Participant, now: dt.datetime | None = None) -> Any:
    now = now or timezone.now()
    return Occurrence.objects.filter(participant=participant, status__in=ACTIVE, opens_at__lte=now, closes_at__gt=now).order_by(
        "due_date", "instrument"
    )


# --- Responses ------------------------------------------------------------------------------


class QuestionnaireClosed(ApplicationError):
    status = 410


@dataclass(frozen=True)
class Submitted:
    response: QuestionnaireResponse
    created: bool


@transaction.atomic
def response_submit(
    *, occurrence: Occurrence, raw: dict[str, Any], source: str, by: Any = None, now: dt.datetime | None = None
) -> Submitted:
    """Record the answers and scores of one occurrence, once. A second submission returns the first.

    Participants answer while the window is open; staff may enter answers on the participant's
    behalf (phone follow-up) while it is open or after it was missed, recorded as such.
    """
    now = now or timezone.now()
    occurrence = (
        Occurrence.objects.select_for_update(of=("self",)).select_related("participant__site__trial").get(pk=occurrence.pk)
    )
    ensure_writable(trial=occurrence.participant.site.trial)
    existing = QuestionnaireResponse.objects.filter(occurrence=occurrence).first()
    if existing is not None:
        return Submitted(existing, created=False)
    allowed = {OccurrenceStatus.OPEN, OccurrenceStatus.SCHEDULED}
    if source == ResponseSource.STAFF:
        allowed.add(OccurrenceStatus.MISSED)
    in_window = occurrence.opens_at <= now < occurrence.closes_at or source == ResponseSource.STAFF
    if occurrence.status not in allowed or not in_window:
        raise QuestionnaireClosed("This questionnaire is closed: it can no longer be answered here.")
    version = instrument_for(occurrence=occurrence)
    answers, errors = clean_answers(definition=version.definition, raw=raw)
    if errors:
        raise ApplicationError("Some answers need your attention.", errors=errors)
    actor = (
        {"actor": "participant", "participant": occurrence.participant.study_id} if source == ResponseSource.PARTICIPANT else {}
    )
    on_behalf = {"on_behalf_of": occurrence.participant.study_id} if source == ResponseSource.STAFF else {}
    with audit_context(reason="Questionnaire answered", **actor, **on_behalf):
        response = QuestionnaireResponse.objects.create(
            occurrence=occurrence,
            instrument_version=version,
            answers=answers,
            scores=score(definition=version.definition, answers=answers),
            source=source,
            entered_by=by if source == ResponseSource.STAFF else None,
            submitted_at=now,
        )
        occurrence.status = OccurrenceStatus.COMPLETED
        occurrence.completed_at = now
        occurrence.save(update_fields=["status", "completed_at"])
    return Submitted(response, created=True)
