"""Messages to participants: policies and wordings, the claim-and-send sweep, and opting out.

Rows before sends: every message is a row before it goes, claimed in committed batches, re-checked
just before it is sent and sent with an idempotency key. What a message is about belongs to the
feature that registered its kind (``messaging.kinds``).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.template import Context, Template, TemplateSyntaxError
from django.utils import timezone

from messaging import kinds
from messaging.channels import Sms, sms_backend
from messaging.kinds import MessageKind
from messaging.models import Message, MessagePolicy, MessageStatus, MessageTemplate
from messaging.timing import allowed_send_time
from participants.links import access_link_tokens
from participants.models import Channel, ContactDetails, Participant
from trial.audit import audit_context
from trial.errors import ApplicationError
from trial.guard import ensure_writable
from trial.models import Site, Trial


@transaction.atomic
def message_templates_default(*, trial: Trial, templates: dict[tuple[str, str], tuple[str, str]]) -> int:
    """Give a trial its message policy and the first version of each (code, channel) wording it
    lacks, once (idempotent). Returns the number of wordings created."""
    MessagePolicy.objects.get_or_create(trial=trial)
    created = 0
    for (code, channel), (subject, body) in templates.items():
        if not MessageTemplate.objects.filter(trial=trial, code=code, channel=channel).exists():
            MessageTemplate.objects.create(trial=trial, code=code, channel=channel, version=1, subject=subject, body=body)
            created += 1
    return created


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


def channels_for(contact: ContactDetails | None, policy: MessagePolicy) -> list[str]:
    """The channels a participant is written to under the trial's policy (none opted out)."""
    if contact is None:
        return []
    usable: list[str] = [str(c) for c in (Channel.EMAIL, Channel.SMS) if contact.address(c) and not contact.opted_out(c)]
    if policy.channels == MessagePolicy.Channels.ALL:
        return usable
    preferred = [c for c in usable if c == contact.preferred_channel]
    return preferred or usable[:1]


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


def _why_not(message: Message, kind: MessageKind | None, now: dt.datetime) -> str:
    """Why a claimed message must not go out now (it is then cancelled), or ''."""
    participant = message.participant
    trial = participant.site.trial
    if trial.data_locked_at is not None:
        return "The study's database is locked"
    if kind is None:
        return "No feature sends this kind of message"
    if reason := kind.why_not(message, now):
        return reason
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
    """Current template versions and compiled templates, and the kinds' own cache, for one sweep."""

    def __init__(self) -> None:
        self.templates: dict[tuple[int, str, str], MessageTemplate | None] = {}
        self.compiled: dict[str, Template] = {}
        self.cache: dict[Any, Any] = {}

    def template(self, trial_id: int, code: str, channel: str) -> MessageTemplate | None:
        key = (trial_id, code, channel)
        if key not in self.templates:
            self.templates[key] = (
                MessageTemplate.objects.filter(trial_id=trial_id, code=code, channel=channel).order_by("-version").first()
            )
        return self.templates[key]

    def render(self, text: str, context: dict[str, Any]) -> str:
        if text not in self.compiled:
            self.compiled[text] = Template(text)
        return self.compiled[text].render(Context(context, autoescape=False)).strip()


def _deliver(*, ids: list[int], now: dt.datetime, renderer: _Renderer, mail: Any) -> SweepResult:
    result = SweepResult(batches=1)
    messages = list(
        Message.objects.filter(pk__in=ids, status=MessageStatus.SENDING)
        .select_related("participant__contact", *kinds.select_related())
        .order_by("pk")
    )
    # The batch's few sites and trials, read once and shared rather than built for every message;
    # read again for every batch, so a database lock stops the next one.
    sites = Site.objects.select_related("trial").in_bulk({m.participant.site_id for m in messages})
    for message in messages:
        message.participant.site = sites[message.participant.site_id]
    policies: dict[int, MessagePolicy] = {}
    outcomes: list[_Outcome] = []
    sendable: list[tuple[Message, MessagePolicy, MessageKind]] = []
    for message in messages:
        trial = message.participant.site.trial
        if trial.pk not in policies:
            policies[trial.pk] = message_policy(trial=trial)
        policy = policies[trial.pk]
        kind = kinds.kind_of(message)
        reason = _why_not(message, kind, now)
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
        assert kind is not None  # _why_not cancels a message of no known kind
        sendable.append((message, policy, kind))
    tokens = access_link_tokens(participants=list({m.participant.pk: m.participant for m, _, _ in sendable}.values()))
    base = django_settings.PUBLIC_URL
    for message, policy, kind in sendable:
        trial = message.participant.site.trial
        code = kind.template_code(message)
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
        zone = message.participant.contact.timezone
        context = {
            "trial": trial.name,
            "link": f"{base}/p/{token}/{kind.link_path}",
            "opt_out_link": f"{base}/p/{token}/stop/{message.channel}/",
            **kind.context(message, zone=zone, cache=renderer.cache),
        }
        attachment = kind.attachment(message, code=code) if message.channel == Channel.EMAIL else None
        subject = renderer.render(template.subject, context) if template.subject else ""
        body = renderer.render(template.body, context)
        address = message.participant.contact.address(message.channel)
        try:
            if message.channel == Channel.EMAIL:
                email = EmailMessage(
                    subject, body, to=[address], headers={"Message-ID": f"<{message.key}@walkback>"}, connection=mail
                )
                if attachment is not None:
                    email.attach(*attachment)
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
    """Let every kind plan the messages that became due, then send every due message once.

    Each batch is claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` and committed before anything
    is sent, so sweeps running at once share the work; each message is re-checked just before it
    goes (completed, withdrawn, opted out, locked: cancelled instead) and sent with its
    idempotency key; a batch's outcomes are written in one statement. A sweep killed mid-batch
    leaves its claimed rows ``sending`` until the lease passes; the next sweep sends them again
    with the same keys. Queries grow with batches, not with messages.
    """
    fixed_now = now
    started = time.monotonic()
    for kind in kinds.registered():
        while kind.plan(now=fixed_now or timezone.now()):
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
