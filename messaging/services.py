"""Messages to participants: policies and wordings, the claim-and-send sweep, and opting out.

Rows before sends: every message is a row before it goes, claimed in committed batches, re-checked
just before it is sent and sent with an idempotency key. What a message is about belongs to the
feature that registered its kind (``messaging.kinds``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.db.models import F, Func, Value
from django.template import Context, Template, TemplateSyntaxError
from django.utils import timezone, translation
from django.utils.translation import gettext

from messaging import kinds
from messaging.channels import Sms, sms_backend
from messaging.kinds import MessageKind
from messaging.links import LINK_TEMPLATES, NEW_LINK, WELCOME
from messaging.models import Message, MessagePolicy, MessageStatus, MessageTemplate
from messaging.timing import allowed_send_time
from participants.links import access_link_tokens
from participants.models import Channel, ContactDetails, Participant
from participants.selectors import participant_language
from trial.audit import audit_context
from trial.errors import ApplicationError
from trial.guard import ensure_writable
from trial.models import Site, Trial, default_language


@transaction.atomic
def message_templates_default(*, trial: Trial, templates: dict[tuple[str, str], tuple[str, str]]) -> int:
    """Give a trial its message policy and the first version of each (code, channel) wording it
    lacks (``templates`` and the link messages every trial has), once (idempotent). Returns the
    number of wordings created."""
    MessagePolicy.objects.get_or_create(trial=trial)
    created = 0
    for (code, channel), (subject, body) in {**LINK_TEMPLATES, **templates}.items():
        if not MessageTemplate.objects.filter(trial=trial, code=code, channel=channel, language=default_language()).exists():
            MessageTemplate.objects.create(
                trial=trial, code=code, channel=channel, language=default_language(), version=1, subject=subject, body=body
            )
            created += 1
    return created


@transaction.atomic
def message_template_publish(
    *, trial: Trial, code: str, channel: str, subject: str, body: str, language: str = ""
) -> MessageTemplate:
    """A new version of a message's wording in ``language`` (blank: the site's); messages sent from
    now on to participants with that language use it."""
    ensure_writable(trial=trial)
    language = language or default_language()
    if language not in dict(django_settings.LANGUAGES):
        raise ApplicationError(
            gettext("This installation has no language %(code)s.") % {"code": language}, errors={"language": [language]}
        )
    try:
        Template(body)
        Template(subject)
    except TemplateSyntaxError as exc:
        raise ApplicationError(f"The message template is not valid: {exc}") from exc
    latest = (
        MessageTemplate.objects.filter(trial=trial, code=code, channel=channel, language=language).order_by("-version").first()
    )
    return MessageTemplate.objects.create(
        trial=trial,
        code=code,
        channel=channel,
        language=language,
        version=(latest.version + 1 if latest else 1),
        subject=subject,
        body=body,
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
    expired: int = 0  # claimed but left unsent: the claim's lease was about to pass

    def add(self, other: SweepResult) -> None:
        for name in ("sent", "cancelled", "deferred", "retrying", "failed", "batches", "expired"):
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
        self.templates: dict[tuple[int, str, str, str], MessageTemplate | None] = {}
        self.compiled: dict[str, Template] = {}
        self.cache: dict[Any, Any] = {}

    def template(self, trial_id: int, code: str, channel: str, language: str = "") -> MessageTemplate | None:
        """The newest wording in ``language``; else the newest in the site's language."""
        language = language or default_language()
        key = (trial_id, code, channel, language)
        if key not in self.templates:
            found = (
                MessageTemplate.objects.filter(trial_id=trial_id, code=code, channel=channel, language=language)
                .order_by("-version")
                .first()
            )
            if found is None and language != default_language():
                found = self.template(trial_id, code, channel)
            self.templates[key] = found
        return self.templates[key]

    def render(self, text: str, context: dict[str, Any]) -> str:
        if text not in self.compiled:
            self.compiled[text] = Template(text)
        return self.compiled[text].render(Context(context, autoescape=False)).strip()


def _deliver(*, ids: list[int], now: dt.datetime, renderer: _Renderer, mail: Any, deadline: float = math.inf) -> SweepResult:
    """Send a claimed batch, writing each send as it happens; nothing is sent after ``deadline``
    (``time.monotonic()``), when the claim's lease is about to pass."""
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
        if allowed > now and not (kind is not None and kind.immediate(message)):
            outcomes.append(_Outcome(message.pk, MessageStatus.PLANNED, allowed, undo_attempt=True))
            result.deferred += 1
            continue
        assert kind is not None  # _why_not cancels a message of no known kind
        sendable.append((message, policy, kind))
    # What was decided without sending is written at once; each send is written as it happens.
    _record(outcomes)
    tokens = access_link_tokens(participants=list({m.participant.pk: m.participant for m, _, _ in sendable}.values()))
    base = django_settings.PUBLIC_URL
    for message, policy, kind in sendable:
        if time.monotonic() > deadline:
            # The claim's lease is about to pass: another sweep may claim what is left once it has,
            # so this one sends nothing more (the rest stay ``sending`` until then).
            result.expired += 1
            continue
        outcome = _send(message, policy=policy, kind=kind, now=now, renderer=renderer, mail=mail, tokens=tokens, base=base)
        # Committed per message (autocommit): a sweep killed after this line never sends it again.
        _record([outcome])
        if outcome.status == MessageStatus.SENT:
            result.sent += 1
        elif outcome.status == MessageStatus.FAILED:
            result.failed += 1
        else:
            result.retrying += 1
    return result


def _send(
    message: Message,
    *,
    policy: MessagePolicy,
    kind: MessageKind,
    now: dt.datetime,
    renderer: _Renderer,
    mail: Any,
    tokens: dict[int, str],
    base: str,
) -> _Outcome:
    """Render and send one message; its outcome (sent, retrying or failed), not yet written."""
    trial = message.participant.site.trial
    code = kind.template_code(message)
    language = participant_language(message.participant)
    template = renderer.template(trial.pk, code, message.channel, language)
    if template is None:
        return _Outcome(
            message.pk, MessageStatus.FAILED, message.due_at, last_error=f"No '{code}' template for {message.channel}"
        )
    token = tokens[message.participant.pk]
    zone = message.participant.contact.timezone
    # In the participant's language: the wording's {% translate %}, and dates and words the kind gives.
    with translation.override(language):
        context = {
            "trial": trial.name,
            "link": f"{base}/p/{token}/{kind.link_path}",
            "opt_out_link": f"{base}/p/{token}/stop/{message.channel}/",
            "study_contact": message.participant.site.contact_text,
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
            return _Outcome(message.pk, MessageStatus.FAILED, message.due_at, last_error=error)
        return _Outcome(message.pk, MessageStatus.PLANNED, now + _backoff(message.attempts), last_error=error)
    return _Outcome(
        message.pk,
        MessageStatus.SENT,
        message.due_at,
        sent_at=timezone.now(),
        template_id=template.pk,
        subject=subject or body[:200],
        provider_id=provider_id,
    )


def send_seconds_per_message() -> float:
    """The time one send is allowed within a claim's lease (rendering, the provider's answer)."""
    return float(django_settings.MESSAGES_SECONDS_PER_MESSAGE)


def messages_send_due(
    *,
    now: dt.datetime | None = None,
    batch_size: int | None = None,
    lease: dt.timedelta | None = None,
    max_seconds: float | None = None,
) -> SweepResult:
    """Let every kind plan the messages that became due, then send every due message once.

    Each batch (``MESSAGES_BATCH_SIZE``, 20) is claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``
    and committed before anything is sent, so sweeps running at once share the work; each message
    is re-checked just before it goes (completed, withdrawn, opted out, locked: cancelled instead),
    sent with its idempotency key, and recorded ``sent`` (with the provider's id) in its own commit
    the moment the provider has it. The claim's lease is sized to the batch (the batch size times
    ``MESSAGES_SECONDS_PER_MESSAGE``), and a sweep sends nothing once its lease is about to pass.
    A sweep killed mid-batch leaves its claimed rows ``sending`` until the lease passes; the next
    sweep sends only those not recorded as sent, with the same keys: at most the one message in
    flight at the kill reaches a provider twice, and none does through one honouring the keys.
    Reads grow with batches, writes by one per message sent.
    """
    batch_size = batch_size or int(django_settings.MESSAGES_BATCH_SIZE)
    per_message = send_seconds_per_message()
    lease = lease or dt.timedelta(seconds=batch_size * per_message)
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
            claimed = time.monotonic()
            ids = _claim(now=current, batch_size=batch_size, lease=lease)
            if not ids:
                break
            # The last send must be able to finish within the lease.
            deadline = claimed + max(lease.total_seconds() - per_message, 0)
            with audit_context(actor="sweep:messages"):
                result.add(_deliver(ids=ids, now=current, renderer=renderer, mail=mail, deadline=deadline))
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


def _link_message_plan(*, participant: Participant, step: str, now: dt.datetime) -> int:
    """Write a link message on each channel the policy allows (skipping any the welcome's unique
    constraint already holds); the sweep sends it. Returns the number written."""
    policy = message_policy(trial=participant.site.trial)
    contact = ContactDetails.objects.filter(participant=participant).first()
    written = 0
    for channel in channels_for(contact, policy):
        if step == WELCOME:
            created = Message.objects.get_or_create(
                participant=participant,
                step=step,
                channel=channel,
                occurrence=None,
                session=None,
                defaults={"planned_at": now, "due_at": now},
            )[1]
        else:
            Message.objects.create(participant=participant, step=step, channel=channel, planned_at=now, due_at=now)
            created = True
        written += int(created)
    return written


@transaction.atomic
def message_welcome_plan(*, participant: Participant, now: dt.datetime | None = None) -> int:
    """At enrolment, when the trial's policy asks for it: a welcome message with the participant's
    personal link, once per channel however often this runs. Returns the number written."""
    if not message_policy(trial=participant.site.trial).welcome_message:
        return 0
    if Message.objects.filter(participant=participant, step=WELCOME, occurrence=None, session=None).exists():
        return 0
    return _link_message_plan(participant=participant, step=WELCOME, now=now or timezone.now())


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


@transaction.atomic
def link_request(
    *, trial: Trial, participant: Participant | None = None, address: str = "", now: dt.datetime | None = None
) -> bool:
    """A participant asks for their link again, from a link that no longer works (``participant``,
    when that link was theirs) or by giving the e-mail address or mobile number they gave the study.

    The link goes only to the contact details on file, never to the asker. At most the policy's
    ``link_requests_per_day`` are answered per participant in 24 hours. The caller answers the
    same whatever happens here (whether the address is known must not show); the result (True
    when a message was written) is for tests and logs only."""
    now = now or timezone.now()
    if participant is None and address.strip():
        text = address.strip()
        contacts = ContactDetails.objects.filter(participant__site__trial=trial).select_related("participant__site__trial")
        if "@" in text:
            matches = list(contacts.filter(email__iexact=text)[:2])
        elif len(digits := _digits(text)) >= 6:
            matches = list(
                contacts.annotate(
                    mobile_digits=Func(F("mobile"), Value(r"\D"), Value(""), Value("g"), function="regexp_replace")
                ).filter(mobile_digits=digits)[:2]
            )
        else:
            matches = []
        # An address two participants share names neither: nothing is sent rather than a guess.
        participant = matches[0].participant if len(matches) == 1 else None
    if participant is None or participant.site.trial_id != trial.pk or participant.withdrawn_from_followup:
        return False
    if trial.data_locked_at is not None:
        return False
    policy = message_policy(trial=trial)
    # One request at a time per participant: two at once must not both pass the count below.
    Participant.objects.select_for_update(of=("self",)).filter(pk=participant.pk).first()
    asked = Message.objects.filter(
        participant=participant, step=NEW_LINK, occurrence=None, session=None, planned_at__gt=now - dt.timedelta(days=1)
    )
    # One request writes a message per channel, all planned at the same instant.
    if asked.values("planned_at").distinct().count() >= policy.link_requests_per_day:
        return False
    with audit_context(actor="participant", participant=participant.study_id, reason="Asked for their link again"):
        return _link_message_plan(participant=participant, step=NEW_LINK, now=now) > 0


# Every message counted afresh into MessageTally (which must be empty first).
MESSAGE_TALLY_FILL_SQL = """
    INSERT INTO messaging_messagetally (site_id, for_session, n)
    SELECT p.site_id, m.session_id IS NOT NULL, COUNT(*)
    FROM followup_message AS m JOIN participants_participant AS p ON p.id = m.participant_id
    GROUP BY p.site_id, m.session_id IS NOT NULL
"""


@transaction.atomic
def message_tally_rebuild() -> int:
    """Count the messages again from the messages themselves, for when the tally's triggers were
    skipped (a restore or bulk load with triggers off); writes of messages wait until it commits.
    Returns the number of tally rows."""
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE followup_message IN SHARE MODE")
        cursor.execute("DELETE FROM messaging_messagetally")
        cursor.execute(MESSAGE_TALLY_FILL_SQL)
        return cursor.rowcount
