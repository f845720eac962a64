"""Follow-up schedules: planned at randomisation, re-planned when the trial's rules change,
cancelled on withdrawal from follow-up, opened and closed by a periodic sweep."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import time
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.template import Context, Template, TemplateSyntaxError
from django.utils import timezone
from django.utils.crypto import salted_hmac

from followup import outcomes as outcome_rules
from followup.channels import Sms, sms_backend
from followup.instruments import DefinitionError, clean_answers, score, validate_definition
from followup.models import (
    AccessLink,
    CallLog,
    CallOutcome,
    InstrumentVersion,
    Message,
    MessagePolicy,
    MessageStatus,
    MessageTemplate,
    Occurrence,
    OccurrenceStatus,
    Outcome,
    OutcomePolicy,
    OutcomeSummary,
    QuestionnaireResponse,
    ResponseSource,
    RuleKind,
    ScheduleRule,
)
from followup.scheduling import Planned, RuleSpec, allowed_send_time, message_steps, plan
from participants.models import Channel, ContactDetails, Participant, ParticipantStatus
from trial import access
from trial.access import Perm
from trial.audit import audit_context
from trial.errors import ApplicationError, Conflict, NotAllowed, NotFound
from trial.guard import ensure_writable
from trial.models import Site, Trial

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
    """Cancel the open and future questionnaires of a participant withdrawn from follow-up,
    and every message still to be sent about them."""
    Message.objects.filter(participant=participant, status=MessageStatus.PLANNED).update(
        status=MessageStatus.CANCELLED, cancelled_reason=reason[:200]
    )
    return Occurrence.objects.filter(participant=participant, status__in=ACTIVE).update(
        status=OccurrenceStatus.CANCELLED, cancelled_reason=reason[:200]
    )


@transaction.atomic
def occurrences_advance(*, now: dt.datetime | None = None) -> tuple[int, int]:
    """Open the windows that have begun and mark missed those that ended uncompleted. Idempotent."""
    now = now or timezone.now()
    with audit_context(actor="sweep:occurrences", reason="Questionnaire window opened or closed"):
        unlocked = Occurrence.objects.filter(participant__site__trial__data_locked_at__isnull=True)  # a lock freezes them
        missed = unlocked.filter(status__in=ACTIVE, closes_at__lte=now).update(status=OccurrenceStatus.MISSED)
        opened = unlocked.filter(status=OccurrenceStatus.SCHEDULED, opens_at__lte=now, closes_at__gt=now).update(
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


def _token_from_nonce(nonce: str) -> str:
    """The link token for a nonce: 256 bits of HMAC with the server's secret, URL-safe."""
    digest = salted_hmac("followup.access-link", nonce, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


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
    nonce = secrets.token_hex(32)
    token = _token_from_nonce(nonce)
    AccessLink.objects.create(participant=participant, token_sha256=_token_hash(token), nonce=nonce, created_by=by)
    return token


def access_link_tokens(*, participants: list[Participant]) -> dict[int, str]:
    """The live link token of each participant, for messages: derived again from the stored
    nonce; a participant without a live derivable link gets a new one. Two queries per call."""
    tokens: dict[int, str] = {}
    live = AccessLink.objects.filter(participant_id__in=[p.pk for p in participants], revoked_at__isnull=True)
    for participant_id, nonce, token_sha256 in live.values_list("participant_id", "nonce", "token_sha256"):
        if nonce:
            token = _token_from_nonce(nonce)
            if _token_hash(token) == token_sha256:  # false after the secret key changed
                tokens[participant_id] = token
    missing = [p.pk for p in participants if p.pk not in tokens]
    if missing:
        AccessLink.objects.filter(participant_id__in=missing, revoked_at__isnull=True).update(revoked_at=timezone.now())
        new = []
        for pk in missing:
            nonce = secrets.token_hex(32)
            tokens[pk] = _token_from_nonce(nonce)
            new.append(AccessLink(participant_id=pk, token_sha256=_token_hash(tokens[pk]), nonce=nonce))
        AccessLink.objects.bulk_create(new)
    return tokens


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
    Message.objects.filter(occurrence=occurrence, status=MessageStatus.PLANNED).update(
        status=MessageStatus.CANCELLED, cancelled_reason="Questionnaire completed"
    )
    if occurrence.instrument == outcome_policy(trial=occurrence.participant.site.trial).instrument:
        with audit_context(reason="Outcomes derived from the answers"):
            outcomes_derive(participant=occurrence.participant, now=now)
    from participants.safety.services import adverse_event_from_response

    adverse_event_from_response(response=response)
    return Submitted(response, created=True)


# --- Messages: planned as rows, claimed in batches, re-checked, sent once ---------------------

DEFAULT_TEMPLATES: dict[tuple[str, str], tuple[str, str]] = {
    ("invitation", "email"): (
        "Your {{ trial }} questionnaire is ready",
        "Hello,\n\nYour {{ questionnaire }} for the {{ trial }} study is ready. It takes a few minutes; "
        "please answer it by {{ closes_on }}:\n\n{{ link }}\n\nThank you for taking part.\n\n"
        "To stop e-mails from the study: {{ opt_out_link }}\n",
    ),
    ("invitation", "sms"): (
        "",
        "{{ trial }} study: your {{ questionnaire }} is ready, please answer by {{ closes_on }}: {{ link }} "
        "Stop SMS: {{ opt_out_link }}",
    ),
    ("reminder", "email"): (
        "Reminder: your {{ trial }} questionnaire",
        "Hello,\n\nA reminder that your {{ questionnaire }} for the {{ trial }} study is waiting for you. "
        "It closes on {{ closes_on }}:\n\n{{ link }}\n\nThank you.\n\nTo stop e-mails from the study: {{ opt_out_link }}\n",
    ),
    ("reminder", "sms"): (
        "",
        "{{ trial }} study reminder: your {{ questionnaire }} closes on {{ closes_on }}: {{ link }} Stop SMS: {{ opt_out_link }}",
    ),
    ("session-confirmation", "email"): (
        "Booked: your {{ trial }} {{ session }}",
        "Hello,\n\nYour {{ session }} with {{ physiotherapist }} is booked for {{ when }}.\n{{ how }}\n\n"
        "The calendar invite is attached. To see or change your sessions: {{ link }}\n\n"
        "To stop e-mails from the study: {{ opt_out_link }}\n",
    ),
    ("session-confirmation", "sms"): ("", "{{ trial }}: {{ session }} booked for {{ when }}. {{ how }} {{ link }}"),
    ("session-update", "email"): (
        "Changed: your {{ trial }} {{ session }}",
        "Hello,\n\nYour {{ session }} with {{ physiotherapist }} has moved to {{ when }}.\n{{ how }}\n\n"
        "The updated calendar invite is attached. Your sessions: {{ link }}\n\n"
        "To stop e-mails from the study: {{ opt_out_link }}\n",
    ),
    ("session-update", "sms"): ("", "{{ trial }}: {{ session }} moved to {{ when }}. {{ how }} {{ link }}"),
    ("session-reminder", "email"): (
        "Tomorrow: your {{ trial }} {{ session }}",
        "Hello,\n\nA reminder of your {{ session }} with {{ physiotherapist }} on {{ when }}.\n{{ how }}\n\n"
        "Your sessions: {{ link }}\n\nTo stop e-mails from the study: {{ opt_out_link }}\n",
    ),
    ("session-reminder", "sms"): ("", "{{ trial }} reminder: {{ session }} on {{ when }}. {{ how }}"),
    ("session-cancelled", "email"): (
        "Cancelled: your {{ trial }} {{ session }}",
        "Hello,\n\nYour {{ session }} on {{ when }} is cancelled. The study team will agree a new time with you, "
        "or you can choose one: {{ link }}\n\nTo stop e-mails from the study: {{ opt_out_link }}\n",
    ),
    ("session-cancelled", "sms"): ("", "{{ trial }}: {{ session }} on {{ when }} is cancelled. New time: {{ link }}"),
}


def messaging_defaults_apply(*, trial: Trial, reminder_days: dict[str, list[int]] | None = None) -> None:
    """Give a trial its message policy and first template versions, once (idempotent)."""
    MessagePolicy.objects.get_or_create(trial=trial)
    for (code, channel), (subject, body) in DEFAULT_TEMPLATES.items():
        if not MessageTemplate.objects.filter(trial=trial, code=code, channel=channel).exists():
            MessageTemplate.objects.create(trial=trial, code=code, channel=channel, version=1, subject=subject, body=body)
    for instrument, days in (reminder_days or {}).items():
        ScheduleRule.objects.filter(trial=trial, instrument=instrument, reminder_days=[]).update(reminder_days=days)


@transaction.atomic
def message_template_publish(*, trial: Trial, code: str, channel: str, subject: str, body: str) -> MessageTemplate:
    """A new version of a message's wording; messages sent from now on use it."""
    ensure_writable(trial=trial)
    try:
        Template(body)
        Template(subject)
    except TemplateSyntaxError as exc:
        raise ApplicationError(f"The message template is not valid: {exc}") from exc
    latest = MessageTemplate.objects.filter(trial=trial, code=code, channel=channel).order_by("-version").first()
    return MessageTemplate.objects.create(
        trial=trial, code=code, channel=channel, version=(latest.version + 1 if latest else 1), subject=subject, body=body
    )


def message_policy(*, trial: Trial) -> MessagePolicy:
    return MessagePolicy.objects.filter(trial=trial).first() or MessagePolicy(trial=trial)


def _channels_for(contact: ContactDetails | None, policy: MessagePolicy) -> list[str]:
    if contact is None:
        return []
    usable: list[str] = [str(c) for c in (Channel.EMAIL, Channel.SMS) if contact.address(c) and not contact.opted_out(c)]
    if policy.channels == MessagePolicy.Channels.ALL:
        return usable
    preferred = [c for c in usable if c == contact.preferred_channel]
    return preferred or usable[:1]


_CONTACT_FIELDS = ("email", "mobile", "preferred_channel", "timezone", "email_opted_out_at", "sms_opted_out_at")
_PLANNED = {"participant_id": "bigint", "occurrence_id": "bigint", "step": "text", "channel": "text", "planned_at": "timestamptz"}


def _messages_insert(rows: list[tuple[int, int, str, str, dt.datetime]], *, now: dt.datetime) -> None:
    """Insert planned messages (participant, occurrence, step, channel, planned at; due then) in one
    statement, skipping any already planned. Every other column takes the model's default."""
    if not rows:
        return
    blank = Message(planned_at=now, due_at=now)
    columns, selected, defaults = [], [], []
    for field in Message._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        source = "planned_at" if field.attname == "due_at" else field.attname
        if source in _PLANNED:
            selected.append(f"o.{source}")
        else:
            selected.append("%s")
            defaults.append(field.get_db_prep_save(field.pre_save(blank, add=True), connection))
    document = json.dumps([dict(zip(_PLANNED, (p, o, s, c, at.isoformat()), strict=True)) for p, o, s, c, at in rows])
    record = ", ".join(f"{name} {kind}" for name, kind in _PLANNED.items())
    # Names from the model's metadata; every value is a parameter.
    sql = f"INSERT INTO {Message._meta.db_table} ({', '.join(columns)}) SELECT {', '.join(selected)} FROM jsonb_to_recordset(%s::jsonb) AS o({record}) ON CONFLICT DO NOTHING"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*defaults, document])


@transaction.atomic
def messages_plan(*, now: dt.datetime | None = None, limit: int = 5000) -> int:
    """Write the invitation and reminders of every newly opened questionnaire as message rows.

    Idempotent: each occurrence is planned once (``messages_planned_at``), the unique key on
    (occurrence, step, channel) catches any race, and concurrent planners skip each other's rows.
    Every participant's windows open at their local midnight, so one sweep may plan tens of
    thousands: they are read as values and written with one statement, not as model instances.
    """
    now = now or timezone.now()
    occurrences = list(
        Occurrence.objects.select_for_update(of=("self",), skip_locked=True)
        .filter(status=OccurrenceStatus.OPEN, messages_planned_at__isnull=True)
        .filter(participant__site__trial__data_locked_at__isnull=True)
        .order_by("opens_at")
        .values_list(
            "pk",
            "participant_id",
            "instrument",
            "opens_at",
            "closes_at",
            "participant__site__trial_id",
            "participant__site__timezone",
            "participant__contact__id",
            *(f"participant__contact__{name}" for name in _CONTACT_FIELDS),
        )[:limit]
    )
    if not occurrences:
        return 0
    trials = Trial.objects.in_bulk({row[5] for row in occurrences})
    policies = {pk: message_policy(trial=trial) for pk, trial in trials.items()}
    reminders: dict[tuple[int, str], list[int]] = {}
    for rule in ScheduleRule.objects.filter(trial_id__in=trials):
        reminders[(rule.trial_id, rule.instrument)] = list(rule.reminder_days or [])
    rows = []
    for pk, participant_id, instrument, opens_at, closes_at, trial_id, site_zone, contact_id, *details in occurrences:
        policy = policies[trial_id]
        contact = ContactDetails(**dict(zip(_CONTACT_FIELDS, details, strict=True))) if contact_id is not None else None
        zone = contact.timezone if contact and contact.timezone else site_zone
        steps = message_steps(
            opens_at=opens_at,
            closes_at=closes_at,
            reminder_days=reminders.get((trial_id, instrument), []),
            zone=zone,
            send_hour=policy.send_hour,
            quiet_start=policy.quiet_start,
            quiet_end=policy.quiet_end,
            now=now,
        )
        for channel in _channels_for(contact, policy):
            for step in steps:
                rows.append((participant_id, pk, step.step, channel, step.planned_at))
    _messages_insert(rows, now=now)
    Occurrence.objects.filter(pk__in=[row[0] for row in occurrences]).update(messages_planned_at=now)
    return len(occurrences)  # questionnaires planned (some may have no message: no address, opted out)


@dataclass
class SweepResult:
    sent: int = 0
    cancelled: int = 0
    deferred: int = 0
    retrying: int = 0
    failed: int = 0
    batches: int = 0

    def add(self, other: SweepResult) -> None:
        for name in ("sent", "cancelled", "deferred", "retrying", "failed", "batches"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _claim(*, now: dt.datetime, batch_size: int, lease: dt.timedelta) -> list[int]:
    """Claim up to ``batch_size`` due messages (committed at once): other sweeps skip them, and a
    sweep that dies leaves them to be claimed again when ``lease`` has passed."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE followup_message SET status = %(sending)s, due_at = %(lease_until)s, attempts = attempts + 1
            WHERE id IN (
                SELECT id FROM followup_message
                WHERE status IN (%(planned)s, %(sending)s) AND due_at <= %(now)s
                ORDER BY due_at
                LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED
            )
            RETURNING id
            """,
            {
                "sending": MessageStatus.SENDING,
                "planned": MessageStatus.PLANNED,
                "now": now,
                "lease_until": now + lease,
                "limit": batch_size,
            },
        )
        return [row[0] for row in cursor.fetchall()]


@dataclass
class _Outcome:
    pk: int
    status: str
    due_at: dt.datetime
    sent_at: dt.datetime | None = None
    template_id: int | None = None
    subject: str = ""
    provider_id: str = ""
    last_error: str = ""
    cancelled_reason: str = ""
    undo_attempt: bool = False


def _why_not(message: Message, now: dt.datetime) -> str:
    """Why a claimed message must not go out now (it is then cancelled), or ''."""
    participant = message.participant
    trial = participant.site.trial
    if trial.data_locked_at is not None:
        return "The study's database is locked"
    if message.session_id is not None:
        from participants.intervention.messages import session_why_not

        if reason := session_why_not(message, now):
            return reason
    elif participant.withdrawal_scope in ("followup", "consent"):
        return "Withdrawn from follow-up"
    occurrence = message.occurrence
    if occurrence is not None:
        if occurrence.status == OccurrenceStatus.COMPLETED:
            return "Questionnaire completed"
        if occurrence.status in (OccurrenceStatus.CANCELLED, OccurrenceStatus.MISSED) or now >= occurrence.closes_at:
            return "Questionnaire closed"
    contact = getattr(participant, "contact", None)
    if contact is None or not contact.address(message.channel):
        return f"No {message.get_channel_display()} address"
    if contact.opted_out(message.channel):
        return f"Opted out of {message.get_channel_display()}"
    return ""


def _backoff(attempts: int) -> dt.timedelta:
    return min(dt.timedelta(minutes=5) * 2 ** max(attempts - 1, 0), dt.timedelta(hours=6))


def _record(outcomes: list[_Outcome]) -> None:
    """Write a batch's outcomes in one statement. They travel as one JSON document: adapting ten
    arrays value by value cost more than the update itself."""
    if not outcomes:
        return
    rows = [
        {
            "id": o.pk,
            "status": o.status,
            "due_at": o.due_at.isoformat(),
            "sent_at": o.sent_at.isoformat() if o.sent_at else None,
            "template_id": o.template_id,
            "subject": o.subject[:200],
            "provider_id": o.provider_id[:100],
            "last_error": o.last_error[:300],
            "cancelled_reason": o.cancelled_reason[:200],
            "undo": o.undo_attempt,
        }
        for o in outcomes
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE followup_message AS m SET
                status = o.status, due_at = o.due_at, sent_at = COALESCE(o.sent_at, m.sent_at),
                template_id = COALESCE(o.template_id, m.template_id), subject = COALESCE(NULLIF(o.subject, ''), m.subject),
                provider_id = o.provider_id, last_error = o.last_error, cancelled_reason = o.cancelled_reason,
                attempts = m.attempts - CASE WHEN o.undo THEN 1 ELSE 0 END
            FROM jsonb_to_recordset(%s::jsonb) AS o(
                id bigint, status text, due_at timestamptz, sent_at timestamptz, template_id bigint, subject text,
                provider_id text, last_error text, cancelled_reason text, undo boolean
            )
            WHERE m.id = o.id AND m.status = %s
            """,
            [json.dumps(rows), MessageStatus.SENDING],
        )


class _Renderer:
    """Current template versions, questionnaire titles and compiled templates, cached per sweep."""

    def __init__(self) -> None:
        self.templates: dict[tuple[int, str, str], MessageTemplate | None] = {}
        self.titles: dict[tuple[int, str], str] = {}
        self.compiled: dict[str, Template] = {}

    def template(self, trial_id: int, code: str, channel: str) -> MessageTemplate | None:
        key = (trial_id, code, channel)
        if key not in self.templates:
            self.templates[key] = (
                MessageTemplate.objects.filter(trial_id=trial_id, code=code, channel=channel).order_by("-version").first()
            )
        return self.templates[key]

    def title(self, trial_id: int, instrument: str) -> str:
        key = (trial_id, instrument)
        if key not in self.titles:
            version = InstrumentVersion.objects.filter(trial_id=trial_id, code=instrument).order_by("-published_at").first()
            self.titles[key] = version.title if version else instrument
        return self.titles[key]

    def render(self, text: str, context: dict[str, Any]) -> str:
        if text not in self.compiled:
            self.compiled[text] = Template(text)
        return self.compiled[text].render(Context(context, autoescape=False)).strip()


def _deliver(*, ids: list[int], now: dt.datetime, renderer: _Renderer, mail: Any) -> SweepResult:
    result = SweepResult(batches=1)
    messages = list(
        Message.objects.filter(pk__in=ids, status=MessageStatus.SENDING)
        .select_related("occurrence", "session__physiotherapist", "participant__contact")
        .order_by("pk")
    )
    # The batch's few sites and trials, read once and shared rather than built for every message;
    # read again for every batch, so a database lock stops the next one.
    sites = Site.objects.select_related("trial").in_bulk({m.participant.site_id for m in messages})
    for message in messages:
        message.participant.site = sites[message.participant.site_id]
    policies: dict[int, MessagePolicy] = {}
    outcomes: list[_Outcome] = []
    sendable = []
    for message in messages:
        trial = message.participant.site.trial
        if trial.pk not in policies:
            policies[trial.pk] = message_policy(trial=trial)
        policy = policies[trial.pk]
        reason = _why_not(message, now)
        if reason:
            outcomes.append(_Outcome(message.pk, MessageStatus.CANCELLED, message.due_at, cancelled_reason=reason))
            result.cancelled += 1
            continue
        contact = message.participant.contact
        allowed = allowed_send_time(now, zone=contact.timezone, quiet_start=policy.quiet_start, quiet_end=policy.quiet_end)
        if allowed > now:
            outcomes.append(_Outcome(message.pk, MessageStatus.PLANNED, allowed, undo_attempt=True))
            result.deferred += 1
            continue
        sendable.append((message, policy))
    tokens = access_link_tokens(participants=list({m.participant.pk: m.participant for m, _ in sendable}.values()))
    base = django_settings.PUBLIC_URL
    for message, policy in sendable:
        trial = message.participant.site.trial
        if message.session_id is not None:
            from participants.intervention import messages as session_messages

            code = session_messages.session_template_code(message)
        else:
            code = "invitation" if message.step == "invitation" else "reminder"
        template = renderer.template(trial.pk, code, message.channel)
        if template is None:
            outcomes.append(
                _Outcome(
                    message.pk, MessageStatus.FAILED, message.due_at, last_error=f"No '{code}' template for {message.channel}"
                )
            )
            result.failed += 1
            continue
        token = tokens[message.participant.pk]
        occurrence = message.occurrence
        zone = message.participant.contact.timezone
        context = {
            "trial": trial.name,
            "questionnaire": renderer.title(trial.pk, occurrence.instrument) if occurrence else "",
            "due_date": f"{occurrence.due_date:%d %B %Y}" if occurrence else "",
            "closes_on": (
                f"{(occurrence.closes_at.astimezone(zoneinfo.ZoneInfo(zone)) - dt.timedelta(days=1)):%d %B %Y}"
                if occurrence
                else ""
            ),
            "link": f"{base}/p/{token}/",
            "opt_out_link": f"{base}/p/{token}/stop/{message.channel}/",
        }
        attachment = None
        if message.session_id is not None:
            context.update(session_messages.session_context(message, zone=zone))
            context["link"] = f"{base}/p/{token}/sessions/"
            attachment = session_messages.session_ics(message) if message.channel == Channel.EMAIL else None
        subject = renderer.render(template.subject, context) if template.subject else ""
        body = renderer.render(template.body, context)
        address = message.participant.contact.address(message.channel)
        try:
            if message.channel == Channel.EMAIL:
                email = EmailMessage(
                    subject, body, to=[address], headers={"Message-ID": f"<{message.key}@walkback>"}, connection=mail
                )
                if attachment is not None:
                    method = "CANCEL" if code == "session-cancelled" else "REQUEST"
                    email.attach("session.ics", attachment, f"text/calendar; method={method}")
                email.send(fail_silently=False)
                provider_id = message.key
            else:
                provider_id = sms_backend().send(Sms(to=address, body=body, key=message.key))
        except Exception as exc:  # any provider failure is retried, then reported
            error = f"{type(exc).__name__}: {exc}"
            if message.attempts >= policy.max_attempts:
                outcomes.append(_Outcome(message.pk, MessageStatus.FAILED, message.due_at, last_error=error))
                result.failed += 1
            else:
                outcomes.append(_Outcome(message.pk, MessageStatus.PLANNED, now + _backoff(message.attempts), last_error=error))
                result.retrying += 1
            continue
        outcomes.append(
            _Outcome(
                message.pk,
                MessageStatus.SENT,
                message.due_at,
                sent_at=timezone.now(),
                template_id=template.pk,
                subject=subject or body[:200],
                provider_id=provider_id,
            )
        )
        result.sent += 1
    _record(outcomes)
    return result


def messages_send_due(
    *,
    now: dt.datetime | None = None,
    batch_size: int = 200,
    lease: dt.timedelta = dt.timedelta(minutes=30),
    max_seconds: float | None = None,
) -> SweepResult:
    """Plan newly opened questionnaires' messages, then send every due message once.

    Each batch is claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` and committed before anything
    is sent, so sweeps running at once share the work; each message is re-checked just before it
    goes (completed, withdrawn, opted out, locked: cancelled instead) and sent with its
    idempotency key; a batch's outcomes are written in one statement. A sweep killed mid-batch
    leaves its claimed rows ``sending`` until the lease passes; the next sweep sends them again
    with the same keys. Queries grow with batches, not with messages.
    """
    fixed_now = now
    started = time.monotonic()
    while messages_plan(now=fixed_now or timezone.now()):
        pass
    result = SweepResult()
    renderer = _Renderer()
    with get_connection() as mail:
        while max_seconds is None or time.monotonic() - started < max_seconds:
            current = fixed_now or timezone.now()
            ids = _claim(now=current, batch_size=batch_size, lease=lease)
            if not ids:
                break
            with audit_context(actor="sweep:messages"):
                result.add(_deliver(ids=ids, now=current, renderer=renderer, mail=mail))
    return result


@transaction.atomic
def message_opt_out(*, participant: Participant, channel: str, now: dt.datetime | None = None) -> bool:
    """The participant asked for no more messages on ``channel``. Returns False if already so."""
    ensure_writable(trial=participant.site.trial)
    contact = ContactDetails.objects.select_for_update().filter(participant=participant).first()
    if contact is None or channel not in Channel.values or contact.opted_out(channel):
        return False
    now = now or timezone.now()
    with audit_context(actor="participant", participant=participant.study_id, reason=f"Opted out of {channel}"):
        setattr(contact, f"{channel}_opted_out_at", now)
        contact.save(update_fields=[f"{channel}_opted_out_at"])
    Message.objects.filter(participant=participant, channel=channel, status=MessageStatus.PLANNED).update(
        status=MessageStatus.CANCELLED, cancelled_reason=f"Opted out of {Channel(channel).label}"
    )
    return True


@transaction.atomic
def message_opt_in(*, participant: Participant, channel: str, by: Any, reason: str) -> None:
    """Staff record that the participant wants messages on ``channel`` again."""
    ensure_writable(trial=participant.site.trial)
    contact = ContactDetails.objects.select_for_update().get(participant=participant)
    with audit_context(reason=reason or "Opted back in"):
        setattr(contact, f"{channel}_opted_out_at", None)
        contact.save(update_fields=[f"{channel}_opted_out_at"])


# --- Worklist and calls ---------------------------------------------------------------------


@transaction.atomic
def call_log_record(
    *,
    participant: Participant,
    occurrence: Occurrence | None = None,
    outcome: str,
    note: str,
    by: Any,
    now: dt.datetime | None = None,
) -> CallLog:
    """Record a follow-up call by staff to a participant, about one of their questionnaires or none."""
    participant = Participant.objects.select_related("site__trial").get(pk=participant.pk)
    trial = participant.site.trial
    ensure_writable(trial=trial)
    if not access.has_perm(by, Perm.ENTER_FOLLOWUP, trial=trial):
        raise NotAllowed("Your role may not record follow-up calls.")
    if not access.may_see_site(by, trial=trial, site_id=participant.site_id):
        raise NotAllowed("This participant is at a site you do not work at.")
    if participant.withdrawal_scope in ("followup", "consent"):
        raise Conflict(f"{participant.study_id} has withdrawn from follow-up: no follow-up calls are recorded.")
    if outcome not in CallOutcome.values:
        raise ApplicationError(
            "Choose the outcome of the call.", errors={"outcome": [f"One of: {', '.join(CallOutcome.values)}."]}
        )
    note = (note or "").strip()
    if len(note) > 500:
        raise ApplicationError("The note is too long.", errors={"note": ["At most 500 characters."]})
    if occurrence is not None and occurrence.participant_id != participant.pk:
        raise ApplicationError(
            "That questionnaire is not this participant's.", errors={"occurrence": ["Not one of this participant's."]}
        )
    with audit_context(reason=f"Follow-up call: {CallOutcome(outcome).label}"):
        return CallLog.objects.create(
            participant=participant,
            occurrence=occurrence,
            outcome=outcome,
            note=note,
            called_at=now or timezone.now(),
            called_by=by,
        )


# --- Derived outcomes --------------------------------------------------------------------------


def outcome_policy(*, trial: Trial) -> OutcomePolicy:
    return OutcomePolicy.objects.filter(trial=trial).first() or OutcomePolicy(trial=trial)


def _rules(policy: OutcomePolicy) -> outcome_rules.Rules:
    return outcome_rules.Rules(
        interference_threshold=policy.interference_threshold,
        pain_threshold=policy.pain_threshold,
        censor_withdrawn_at=policy.censor_withdrawn_at,
        censor_completed_at=policy.censor_completed_at,
    )


def outcomes_derive(*, participant: Participant, now: dt.datetime | None = None) -> list[Outcome]:
    """Derive (again) a participant's outcomes from their monthly answers. Called in the same
    transaction as every change to those answers, to withdrawal and to the schedule, so the
    stored outcomes are never stale. Adjudicated values are kept; the derived ones update."""
    now = now or timezone.now()
    if participant.randomised_at is None:
        return []
    trial = participant.site.trial
    policy = outcome_policy(trial=trial)
    zone = zoneinfo.ZoneInfo(participant_timezone(participant=participant))
    randomised_on = participant.randomised_at.astimezone(zone).date()
    occurrences = list(
        Occurrence.objects.filter(participant=participant, instrument=policy.instrument)
        .select_related("response")
        .order_by("month")
    )
    monthly = []
    for occurrence in occurrences:
        if occurrence.status not in (OccurrenceStatus.COMPLETED, OccurrenceStatus.MISSED):
            continue
        response = getattr(occurrence, "response", None)
        monthly.append(
            outcome_rules.MonthlyAnswer(
                occurrence_id=occurrence.pk,
                month=occurrence.month,
                due_date=occurrence.due_date,
                completed_on=response.submitted_at.astimezone(zone).date() if response else None,
                answers=response.answers if response else {},
            )
        )
    withdrawal = participant.withdrawals.filter(scope__in=["followup", "consent"]).order_by("withdrawn_on").first()
    ended = None
    if withdrawal is None and occurrences and not any(o.status in ACTIVE for o in occurrences):
        ended = (
            max(o.due_date for o in occurrences if o.status != OccurrenceStatus.CANCELLED)
            if any(o.status != OccurrenceStatus.CANCELLED for o in occurrences)
            else None
        )
    rules = _rules(policy)
    stored = {o.code: o for o in Outcome.objects.select_for_update().filter(participant=participant)}
    results = []
    for code in outcome_rules.OUTCOMES:
        derived = outcome_rules.derive(
            outcome=code,
            randomised_on=randomised_on,
            monthly=monthly,
            rules=rules,
            withdrawn_on=withdrawal.withdrawn_on if withdrawal else None,
            followup_ended_on=ended,
        )
        values = {
            "event": derived.event,
            "event_date": derived.event_date,
            "censored_at": derived.censored_at,
            "censor_reason": derived.censor_reason,
            "days": derived.days,
            "source_occurrence_id": derived.occurrence_id,
        }
        outcome = stored.get(code)
        if outcome is None:
            outcome = Outcome.objects.create(participant=participant, code=code, derived_at=now, **values)
        elif any(getattr(outcome, k) != v for k, v in values.items()):
            for name, value in values.items():
                setattr(outcome, name, value)
            outcome.derived_at = now
            outcome.save()
        results.append(outcome)
    summary = outcome_rules.summarise(monthly=monthly)
    OutcomeSummary.objects.update_or_create(
        participant=participant,
        defaults={
            "recurrences": summary.recurrences,
            "care_seeking_recurrences": summary.care_seeking_recurrences,
            "work_days_missed": summary.work_days_missed,
            "work_days_by_month": summary.work_days_by_month,
            "monthly_completed": summary.monthly_completed,
            "monthly_missed": summary.monthly_missed,
            "derived_at": now,
        },
    )
    return results


@dataclass(frozen=True)
class FinalOutcome:
    """What analysis uses: the adjudicated value when there is one, else the derived one."""

    code: str
    event: bool
    event_date: dt.date | None
    censored_at: dt.date | None
    censor_reason: str
    days: int | None
    adjudicated: bool


def outcome_final(*, outcome: Outcome, randomised_on: dt.date) -> FinalOutcome:
    """The adjudicated value when there is one, else the derived one; censoring only without an event."""
    event = bool(outcome.adjudicated_event) if outcome.adjudicated else outcome.event
    event_date = outcome.adjudicated_event_date if outcome.adjudicated else outcome.event_date
    if event and event_date is not None:
        return FinalOutcome(outcome.code, True, event_date, None, "", (event_date - randomised_on).days, outcome.adjudicated)
    censored_at = outcome.censored_at
    days = (censored_at - randomised_on).days if censored_at else None
    return FinalOutcome(outcome.code, False, None, censored_at, outcome.censor_reason, days, outcome.adjudicated)


@transaction.atomic
def outcome_adjudicate(
    *, outcome: Outcome, event: bool, event_date: dt.date | None, reason: str, by: Any, now: dt.datetime | None = None
) -> Outcome:
    """A data manager overrides an outcome's event or date, with a reason; the derived value stays."""
    outcome = Outcome.objects.select_for_update().select_related("participant__site__trial").get(pk=outcome.pk)
    participant = outcome.participant
    trial = participant.site.trial
    ensure_writable(trial=trial)
    if not access.has_perm(by, Perm.MANAGE_QUERIES, trial=trial):
        raise NotAllowed("Only data managers adjudicate outcomes.")
    errors: dict[str, list[str]] = {}
    if not reason.strip():
        errors["reason"] = ["Say why the derived value is overridden."]
    if event and event_date is None:
        errors["event_date"] = ["An event needs its date."]
    assert participant.randomised_at is not None
    randomised_on = participant.randomised_at.astimezone(zoneinfo.ZoneInfo(participant_timezone(participant=participant))).date()
    if event_date is not None and event_date < randomised_on:
        errors["event_date"] = ["Before randomisation."]
    if errors:
        raise ApplicationError("The adjudication needs your attention.", errors=errors)
    with audit_context(reason=reason.strip()):
        outcome.adjudicated = True
        outcome.adjudicated_event = event
        outcome.adjudicated_event_date = event_date if event else None
        outcome.adjudication_reason = reason.strip()[:300]
        outcome.adjudicated_by = by
        outcome.adjudicated_at = now or timezone.now()
        outcome.save()
    return outcome


@transaction.atomic
def response_correct(*, response: QuestionnaireResponse, raw: dict[str, Any], reason: str, by: Any) -> QuestionnaireResponse:
    """Correct recorded answers (e.g. after a data query), with a reason; scores and the
    participant's outcomes are derived again in the same transaction."""
    response = (
        QuestionnaireResponse.objects.select_for_update(of=("self",))
        .select_related("occurrence__participant__site__trial", "instrument_version")
        .get(pk=response.pk)
    )
    participant = response.occurrence.participant
    trial = participant.site.trial
    ensure_writable(trial=trial)
    if not (access.has_perm(by, Perm.ENTER_FOLLOWUP, trial=trial) or access.has_perm(by, Perm.MANAGE_QUERIES, trial=trial)):
        raise NotAllowed("Your role may not correct answers.")
    if not access.may_see_site(by, trial=trial, site_id=participant.site_id):
        raise NotAllowed("This participant is at a site you do not work at.")
    if not reason.strip():
        raise ApplicationError("Say why the answers are corrected.", errors={"reason": ["Required."]})
    answers, errors = clean_answers(definition=response.instrument_version.definition, raw=raw)
    if errors:
        raise ApplicationError("Some answers need your attention.", errors=errors)
    with audit_context(reason=reason.strip()):
        response.answers = answers
        response.scores = score(definition=response.instrument_version.definition, answers=answers)
        response.save(update_fields=["answers", "scores"])
        outcomes_derive(participant=participant)
    return response
