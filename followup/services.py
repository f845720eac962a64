"""Follow-up schedules: planned at randomisation, re-planned when the trial's rules change,
cancelled on withdrawal from follow-up, opened and closed by a periodic sweep."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from followup import hooks, scheduling
from followup import outcomes as outcome_rules
from followup.baseline import BASELINE_INSTRUMENT, BASELINE_MONTH, BASELINE_OPEN_DAYS
from followup.instruments import DefinitionError, Step, clean_answers, score, step_clean, steps, validate_definition
from followup.models import (
    TALLIED_STATUSES,
    CallLog,
    CallOutcome,
    InstrumentVersion,
    Occurrence,
    OccurrenceStatus,
    Outcome,
    OutcomePolicy,
    OutcomeSummary,
    QuestionnaireResponse,
    ResponseDraft,
    ResponseSource,
    RuleKind,
    ScheduleRule,
)
from followup.scheduling import Planned, RuleSpec, local_midnight, message_steps, plan
from messaging.models import Message, MessageStatus
from messaging.services import channels_for, message_policy, message_templates_default
from participants.models import FOLLOWUP_ENDING_SCOPES, ContactDetails, Participant, ParticipantStatus
from participants.services import NotReady
from trial import access
from trial.access import Perm
from trial.audit import audit_context
from trial.errors import ApplicationError, Conflict, NotFound
from trial.guard import ensure_writable, write_block_reason
from trial.models import Site, Trial
from trial.tasking import queue_on_commit

ACTIVE = (OccurrenceStatus.SCHEDULED, OccurrenceStatus.OPEN)


def schedule_rules(*, trial: Trial) -> list[RuleSpec]:
    specs = []
    for rule in ScheduleRule.objects.filter(trial=trial).order_by("instrument"):
        months = tuple(range(1, trial.max_followup_months + 1)) if rule.kind == RuleKind.MONTHLY else tuple(rule.months)
        specs.append(RuleSpec(rule.instrument, months, rule.open_days_before, rule.close_days_after))
    return specs


def participant_timezone(*, participant: Participant) -> str:
    """Their own time zone, else their site's. The contact is read once per participant object
    (Django keeps it on the instance), however many steps of a transaction ask."""
    contact = getattr(participant, "contact", None)  # None when there is none (also remembered)
    return (contact.timezone if contact is not None else "") or participant.site.timezone


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
    if Occurrence.objects.filter(participant=participant).exclude(instrument=BASELINE_INSTRUMENT).exists():
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
    """Bring every follow-up schedule in line with the trial's current end date and rules, and
    derive every randomised participant's outcomes again (their end of follow-up may have moved).

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
                (o.instrument, o.month): o
                for o in Occurrence.objects.select_for_update()
                .filter(participant=participant)
                .exclude(instrument=BASELINE_INSTRUMENT)  # not follow-up: never moved or cancelled here
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
        # Outcomes are truncated at each participant's end of follow-up, which may have moved
        # (withdrawn participants' too).
        randomised = Participant.objects.filter(site__trial=trial, randomised_at__isnull=False).values_list("pk", flat=True)
        outcomes_derive_many(participant_ids=list(randomised), now=now)
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
        missed, touched = _occurrences_miss(now=now)
        opened = unlocked.filter(status=OccurrenceStatus.SCHEDULED, opens_at__lte=now, closes_at__gt=now).update(
            status=OccurrenceStatus.OPEN
        )
        if touched:
            with audit_context(reason="Outcomes derived again: a questionnaire was missed"):
                outcomes_derive_many(participant_ids=touched, now=now)
    return opened, missed


def _occurrences_miss(*, now: dt.datetime) -> tuple[int, list[int]]:
    """Mark missed every open or scheduled questionnaire whose window has closed (not in a locked
    trial), in one statement; return the participants whose outcome questionnaire it was, whose
    outcomes depend on it (the censoring reason may now be the administrative end)."""
    occurrence = Occurrence._meta.db_table
    participant, site = Participant._meta.db_table, Site._meta.db_table
    trial, policy = Trial._meta.db_table, OutcomePolicy._meta.db_table
    default_instrument = OutcomePolicy._meta.get_field("instrument").get_default()
    # Table names from the models' metadata; every value is a parameter.
    sql = f"""
        UPDATE {occurrence} AS o SET status = %s
          FROM {participant} AS p
          JOIN {site} AS s ON s.id = p.site_id
          JOIN {trial} AS t ON t.id = s.trial_id
          LEFT JOIN {policy} AS op ON op.trial_id = t.id
         WHERE o.participant_id = p.id AND t.data_locked_at IS NULL
           AND o.status = ANY(%s) AND o.closes_at <= %s
        RETURNING o.participant_id, o.instrument = coalesce(op.instrument, %s)
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [OccurrenceStatus.MISSED, list(ACTIVE), now, default_instrument])
        rows = cursor.fetchall()
    return len(rows), sorted({participant_id for participant_id, for_outcomes in rows if for_outcomes})


def schedule_for(*, participant: Participant) -> Any:
    return Occurrence.objects.filter(participant=participant).order_by("due_date", "instrument")


# --- Baseline -------------------------------------------------------------------------------


def baseline_published(*, trial: Trial) -> bool:
    """Whether the trial has a baseline questionnaire (an instrument published under its code)."""
    return InstrumentVersion.objects.filter(trial=trial, code=BASELINE_INSTRUMENT).exists()


def baseline_create(*, participant: Participant, now: dt.datetime | None = None) -> Occurrence | None:
    """Give an enrolled participant their baseline questionnaire: due on the enrolment day (their
    time zone), open from then on for ``BASELINE_OPEN_DAYS`` days on their link (counted from today
    for someone enrolled before the trial had one). None when the trial has no baseline questionnaire
    or the participant has left follow-up. Safe to call again: an existing baseline is returned as is."""
    existing = Occurrence.objects.filter(participant=participant, instrument=BASELINE_INSTRUMENT, month=BASELINE_MONTH).first()
    if existing is not None:
        return existing
    if participant.withdrawn_from_followup or not baseline_published(trial=participant.site.trial):
        return None
    now = now or timezone.now()
    zone = participant_timezone(participant=participant)
    local = zoneinfo.ZoneInfo(zone)
    enrolled_on = participant.enrolled_at.astimezone(local).date()
    opens_at = local_midnight(enrolled_on, zone)
    closes_at = local_midnight(max(enrolled_on, now.astimezone(local).date()) + dt.timedelta(days=BASELINE_OPEN_DAYS + 1), zone)
    with audit_context(reason="Baseline questionnaire planned at enrolment"):
        return Occurrence.objects.create(
            participant=participant,
            instrument=BASELINE_INSTRUMENT,
            month=BASELINE_MONTH,
            due_date=enrolled_on,
            opens_at=opens_at,
            closes_at=closes_at,
            status=OccurrenceStatus.OPEN if opens_at <= now else OccurrenceStatus.SCHEDULED,
        )


@transaction.atomic
def baselines_create(*, trial: Trial, now: dt.datetime | None = None) -> int:
    """Give every enrolled participant not yet randomised (nor withdrawn from follow-up) a baseline
    questionnaire, when the trial has just gained one: a migration cannot, as it runs before the
    questionnaire is published. Returns how many were created; idempotent."""
    ensure_writable(trial=trial)
    if not baseline_published(trial=trial):
        return 0
    waiting = (
        Participant.objects.filter(site__trial=trial, randomised_at__isnull=True)
        .exclude(withdrawal_scope__in=FOLLOWUP_ENDING_SCOPES)
        .exclude(occurrences__instrument=BASELINE_INSTRUMENT)
        .select_related("site__trial")
        .order_by("pk")
    )
    return sum(baseline_create(participant=participant, now=now) is not None for participant in waiting)


def baseline_outstanding(*, participant: Participant) -> bool:
    """Whether randomisation must wait for this participant's baseline questionnaire: the trial
    requires it, has one, and the participant's is not complete."""
    trial = participant.site.trial
    if not trial.baseline_before_randomisation or not baseline_published(trial=trial):
        return False
    return not Occurrence.objects.filter(
        participant=participant, instrument=BASELINE_INSTRUMENT, status=OccurrenceStatus.COMPLETED
    ).exists()


def baseline_require(*, participant: Participant) -> None:
    """Refuse randomisation while the trial requires a complete baseline questionnaire and it is not."""
    if baseline_outstanding(participant=participant):
        raise NotReady(
            gettext("Complete the baseline questionnaire before randomising."),
            errors={"baseline": [gettext("The baseline questionnaire is not complete.")]},
        )


# --- Instruments ----------------------------------------------------------------------------


def instrument_publish(*, trial: Trial, definition: dict[str, Any]) -> InstrumentVersion:
    """Publish a questionnaire version. Publishing the same version again with the same definition
    does nothing; with a different one it is refused (published versions never change)."""
    try:
        validate_definition(definition=definition)
    except DefinitionError as exc:
        raise ApplicationError(gettext("The questionnaire definition is not valid: %(exc)s") % {"exc": exc}) from exc
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
    cached = getattr(occurrence, "_instrument_version", None)  # asked again for the same object: no query
    if cached is not None:
        return cached
    # One query: a questionnaire has a handful of versions, the choice is made here.
    versions = list(
        InstrumentVersion.objects.filter(
            trial_id=occurrence.participant.site.trial_id, code=occurrence.instrument, published_at__isnull=False
        ).order_by("published_at", "pk")
    )
    opened_under = [v for v in versions if v.published_at <= occurrence.opens_at]
    version = opened_under[-1] if opened_under else (versions[0] if versions else None)
    if version is None:
        raise NotFound(gettext("No questionnaire '%(instrument)s' is published.") % {"instrument": occurrence.instrument})
    occurrence._instrument_version = version  # type: ignore[attr-defined]
    return version


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
        raise QuestionnaireClosed(gettext("This questionnaire is closed: it can no longer be answered here."))
    version = instrument_for(occurrence=occurrence)
    answers, errors = clean_answers(definition=version.definition, raw=raw)
    if errors:
        raise ApplicationError(gettext("Some answers need your attention."), errors=errors)
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
        # The answers saved step by step are now the response (or staff entered it): the draft goes.
        ResponseDraft.objects.filter(occurrence=occurrence).delete()
    Message.objects.filter(occurrence=occurrence, status=MessageStatus.PLANNED).update(
        status=MessageStatus.CANCELLED, cancelled_reason="Questionnaire completed"
    )
    policy = outcome_policy(trial=occurrence.participant.site.trial)
    if occurrence.instrument == policy.instrument:
        with audit_context(reason="Outcomes derived from the answers"):
            outcomes_derive(participant=occurrence.participant, now=now, policy=policy)
    hooks.run_submitted(response)
    return Submitted(response, created=True)


# --- Drafts: the participant's answers saved at each step -------------------------------------


@dataclass(frozen=True)
class DraftSaved:
    draft: ResponseDraft
    errors: dict[str, list[str]]


def _draft_occurrence(*, occurrence: Occurrence, now: dt.datetime) -> Occurrence:
    """The occurrence, locked (so a draft is never written after its response), if the participant
    may still answer it; QuestionnaireClosed otherwise."""
    occurrence = (
        Occurrence.objects.select_for_update(of=("self",)).select_related("participant__site__trial").get(pk=occurrence.pk)
    )
    ensure_writable(trial=occurrence.participant.site.trial)
    in_window = occurrence.opens_at <= now < occurrence.closes_at
    if occurrence.status not in ACTIVE or not in_window:
        raise QuestionnaireClosed(gettext("This questionnaire is closed: it can no longer be answered here."))
    return occurrence


def draft_step(*, definition: dict[str, Any], number: int) -> Step:
    """The step with this number (as in its address); NotFound for a number the definition has not."""
    for step in steps(definition=definition):
        if step.number == number:
            return step
    raise NotFound(gettext("There is no such step in this questionnaire."))


@transaction.atomic
def draft_save(
    *, occurrence: Occurrence, step: int, raw: dict[str, Any], partial: bool = False, now: dt.datetime | None = None
) -> DraftSaved:
    """Save the participant's answers to one step of their questionnaire (the draft is created on the
    first step). The step is checked with the rules of ``clean_answers``, restricted to its questions.

    With errors the draft is not changed and ApplicationError lists them, unless ``partial`` (going
    back): then the valid answers are saved, the invalid ones left out, and the errors returned.
    A completed questionnaire refuses as closed: its answers are the response, recorded once."""
    now = now or timezone.now()
    occurrence = _draft_occurrence(occurrence=occurrence, now=now)
    version = instrument_for(occurrence=occurrence)
    the_step = draft_step(definition=version.definition, number=step)
    draft = ResponseDraft.objects.filter(occurrence=occurrence).first()
    if draft is not None and draft.instrument_version_id != version.pk:  # never happens unless versions change mid-way
        draft.answers = {}
    before = draft.answers if draft is not None else {}
    answers, errors = step_clean(definition=version.definition, step=the_step, answers=before, raw=raw)
    if errors and not partial:
        raise ApplicationError(gettext("Some answers need your attention."), errors=errors)
    actor = {"actor": "participant", "participant": occurrence.participant.study_id}
    with audit_context(reason="Questionnaire answers saved", **actor):
        if draft is None:
            draft = ResponseDraft.objects.create(
                occurrence=occurrence, instrument_version=version, answers=answers, step=0 if partial else step, updated_at=now
            )
        else:
            draft.instrument_version = version
            draft.answers = answers
            draft.step = draft.step if partial else max(draft.step, step)
            draft.updated_at = now
            draft.save(update_fields=["instrument_version", "answers", "step", "updated_at"])
    return DraftSaved(draft, errors)


@transaction.atomic
def draft_submit(*, occurrence: Occurrence, now: dt.datetime | None = None) -> Submitted:
    """Send the answers saved step by step as the participant's response, through ``response_submit``
    (the same checks, scores and outcomes as any response); the draft is deleted with it."""
    now = now or timezone.now()
    draft = ResponseDraft.objects.filter(occurrence=occurrence).first()
    return response_submit(
        occurrence=occurrence, raw=dict(draft.answers) if draft is not None else {}, source=ResponseSource.PARTICIPANT, now=now
    )


# --- Messages: planned as rows, claimed in batches, re-checked, sent once ---------------------

QUESTIONNAIRE_TEMPLATES: dict[tuple[str, str], tuple[str, str]] = {
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
}


def messaging_defaults_apply(*, trial: Trial, reminder_days: dict[str, list[int]] | None = None) -> None:
    """Give a trial its message policy, the first wordings of questionnaire messages, and the
    reminder days of its schedule rules that have none, once (idempotent)."""
    message_templates_default(trial=trial, templates=QUESTIONNAIRE_TEMPLATES)
    for instrument, days in (reminder_days or {}).items():
        ScheduleRule.objects.filter(trial=trial, instrument=instrument, reminder_days=[]).update(reminder_days=days)


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
        .order_by("opens_at", "pk")
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
        for channel in channels_for(contact, policy):
            for step in steps:
                rows.append((participant_id, pk, step.step, channel, step.planned_at))
    _messages_insert(rows, now=now)
    Occurrence.objects.filter(pk__in=[row[0] for row in occurrences]).update(messages_planned_at=now)
    return len(occurrences)  # questionnaires planned (some may have no message: no address, opted out)


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
    access.require(
        by, Perm.ENTER_FOLLOWUP, trial=trial, site_id=participant.site_id, message="Your role may not record follow-up calls."
    )
    if participant.withdrawn_from_followup:
        raise Conflict(
            gettext("%(study_id)s has withdrawn from follow-up: no follow-up calls are recorded.")
            % {"study_id": participant.study_id}
        )
    if outcome not in CallOutcome.values:
        raise ApplicationError(
            gettext("Choose the outcome of the call."), errors={"outcome": [f"One of: {', '.join(CallOutcome.values)}."]}
        )
    note = (note or "").strip()
    if len(note) > 500:
        raise ApplicationError(gettext("The note is too long."), errors={"note": [gettext("At most 500 characters.")]})
    if occurrence is not None and occurrence.participant_id != participant.pk:
        raise ApplicationError(
            gettext("That questionnaire is not this participant's."),
            errors={"occurrence": [gettext("Not one of this participant's.")]},
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


@dataclass(frozen=True)
class OutcomeInputs:
    """Everything a participant's outcomes depend on, read from the database."""

    randomised_on: dt.date
    monthly: list[outcome_rules.MonthlyAnswer]
    rules: outcome_rules.Rules
    withdrawn_on: dt.date | None
    followup_ended_on: dt.date | None  # their schedule is over (the administrative end)
    followup_ends_on: dt.date  # their planned end of follow-up: nothing counts after it


def participant_randomised_on(*, participant: Participant) -> dt.date:
    """Day 0: the randomisation date in the participant's time zone."""
    assert participant.randomised_at is not None
    return participant.randomised_at.astimezone(zoneinfo.ZoneInfo(participant_timezone(participant=participant))).date()


def followup_ends_on(*, participant: Participant) -> dt.date:
    """The participant's planned end of follow-up, as their schedule is planned (``scheduling.followup_ends_on``)."""
    trial = participant.site.trial
    return scheduling.followup_ends_on(
        randomised_on=participant_randomised_on(participant=participant),
        followup_end=trial.followup_end,
        max_months=trial.max_followup_months,
    )


def outcome_inputs(*, participant: Participant, policy: OutcomePolicy | None = None) -> OutcomeInputs:
    """What ``outcomes_derive`` reads: the completed and missed monthly questionnaires, the
    withdrawal from follow-up, whether the schedule is over, the rules and the end of follow-up."""
    assert participant.randomised_at is not None
    policy = policy or outcome_policy(trial=participant.site.trial)
    zone = zoneinfo.ZoneInfo(participant_timezone(participant=participant))
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
    withdrawal = participant.withdrawals.filter(scope__in=FOLLOWUP_ENDING_SCOPES).order_by("withdrawn_on").first()
    ended = None
    kept = [o for o in occurrences if o.status != OccurrenceStatus.CANCELLED]
    if withdrawal is None and kept and not any(o.status in ACTIVE for o in occurrences):
        ended = max(o.due_date for o in kept)
    return OutcomeInputs(
        randomised_on=participant_randomised_on(participant=participant),
        monthly=monthly,
        rules=_rules(policy),
        withdrawn_on=withdrawal.withdrawn_on if withdrawal else None,
        followup_ended_on=ended,
        followup_ends_on=followup_ends_on(participant=participant),
    )


def outcome_values(*, inputs: OutcomeInputs) -> dict[str, dict[str, Any]]:
    """The derived values of each outcome (by code) as ``Outcome`` stores them. No database."""
    values = {}
    for code in outcome_rules.OUTCOMES:
        derived = outcome_rules.derive(
            outcome=code,
            randomised_on=inputs.randomised_on,
            monthly=inputs.monthly,
            rules=inputs.rules,
            withdrawn_on=inputs.withdrawn_on,
            followup_ended_on=inputs.followup_ended_on,
            followup_ends_on=inputs.followup_ends_on,
        )
        values[code] = {
            "event": derived.event,
            "event_date": derived.event_date,
            "censored_at": derived.censored_at,
            "censor_reason": derived.censor_reason,
            "days": derived.days,
            "source_occurrence_id": derived.occurrence_id,
        }
    return values


def outcomes_derive(
    *, participant: Participant, now: dt.datetime | None = None, policy: OutcomePolicy | None = None
) -> list[Outcome]:
    """Derive (again) a participant's outcomes, from randomisation on (censored at day 0 until the
    first answer). Called in the same transaction as every change they depend on: randomisation,
    an answer or its correction, a questionnaire closing as missed, withdrawal, the end of
    follow-up or the schedule; a change of the rules re-derives the trial in a task
    (``followup.derive_outcomes``). Adjudicated values are kept; the derived ones update."""
    now = now or timezone.now()
    if participant.randomised_at is None:
        return []
    inputs = outcome_inputs(participant=participant, policy=policy)
    stored = {o.code: o for o in Outcome.objects.select_for_update().filter(participant=participant)}
    results = []
    for code, values in outcome_values(inputs=inputs).items():
        outcome = stored.get(code)
        if outcome is None:
            outcome = Outcome.objects.create(participant=participant, code=code, derived_at=now, **values)
        elif any(getattr(outcome, k) != v for k, v in values.items()):
            for name, value in values.items():
                setattr(outcome, name, value)
            outcome.derived_at = now
            outcome.save()
        results.append(outcome)
    summary = outcome_rules.summarise(monthly=inputs.monthly)
    fields = {
        "recurrences": summary.recurrences,
        "care_seeking_recurrences": summary.care_seeking_recurrences,
        "work_days_missed": summary.work_days_missed,
        "work_days_by_month": summary.work_days_by_month,
        "monthly_completed": summary.monthly_completed,
        "monthly_missed": summary.monthly_missed,
        "missed_in_a_row": summary.missed_in_a_row,
        "last_missed_id": summary.last_missed_occurrence_id,
        "last_missed_due": summary.last_missed_due,
        "derived_at": now,
    }
    # One statement when the summary exists (always, after randomisation): no savepoint, no read.
    if not OutcomeSummary.objects.filter(participant=participant).update(**fields):
        OutcomeSummary.objects.create(participant=participant, **fields)
    return results


def outcomes_start(*, participant: Participant, now: dt.datetime | None = None) -> list[Outcome]:
    """The outcomes of a participant being randomised: censored at day 0 ("last questionnaire"),
    nothing answered yet. Exactly what ``outcomes_derive`` writes then (a test compares them), without
    reading what cannot exist yet (answers, withdrawals, stored outcomes): randomisation is a hot path."""
    now = now or timezone.now()
    inputs = OutcomeInputs(
        randomised_on=participant_randomised_on(participant=participant),
        monthly=[],
        rules=_rules(outcome_policy(trial=participant.site.trial)),
        withdrawn_on=None,
        followup_ended_on=None,
        followup_ends_on=followup_ends_on(participant=participant),
    )
    outcomes = Outcome.objects.bulk_create(
        Outcome(participant=participant, code=code, derived_at=now, **values)
        for code, values in outcome_values(inputs=inputs).items()
    )
    OutcomeSummary.objects.create(participant=participant, derived_at=now)
    return outcomes


def outcomes_derive_many(*, participant_ids: Iterable[int], now: dt.datetime | None = None) -> int:
    """``outcomes_derive`` for each of these participants (the randomised ones); returns how many."""
    now = now or timezone.now()
    ids = sorted(set(participant_ids))
    derived = 0
    for chunk in range(0, len(ids), 500):
        participants = Participant.objects.filter(pk__in=ids[chunk : chunk + 500], randomised_at__isnull=False)
        for participant in participants.select_related("site__trial").order_by("pk"):
            outcomes_derive(participant=participant, now=now)
            derived += 1
    return derived


@transaction.atomic
def outcomes_derive_trial(*, trial_id: int, now: dt.datetime | None = None) -> int:
    """Re-derive every randomised participant of a trial (after its outcome rules changed).
    Idempotent: a second run finds nothing to change. A lock freezes the outcomes: nothing is done."""
    trial = Trial.objects.get(pk=trial_id)
    if write_block_reason(trial=trial):
        return 0
    ids = Participant.objects.filter(site__trial=trial, randomised_at__isnull=False).values_list("pk", flat=True)
    with audit_context(reason="Outcomes derived again: the outcome rules changed"):
        return outcomes_derive_many(participant_ids=list(ids), now=now)


def outcome_policy_changed(*, policy: OutcomePolicy) -> None:
    """Queue the re-derivation of the trial's outcomes once the change commits."""
    queue_on_commit("followup.derive_outcomes", trial_id=policy.trial_id)


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
    access.require(by, Perm.MANAGE_QUERIES, trial=trial, message="Only data managers adjudicate outcomes.")
    errors: dict[str, list[str]] = {}
    if not reason.strip():
        errors["reason"] = [gettext("Say why the derived value is overridden.")]
    if event and event_date is None:
        errors["event_date"] = [gettext("An event needs its date.")]
    assert participant.randomised_at is not None
    randomised_on = participant.randomised_at.astimezone(zoneinfo.ZoneInfo(participant_timezone(participant=participant))).date()
    if event_date is not None and event_date < randomised_on:
        errors["event_date"] = [gettext("Before randomisation.")]
    if errors:
        raise ApplicationError(gettext("The adjudication needs your attention."), errors=errors)
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
    access.require(
        by,
        Perm.ENTER_FOLLOWUP,
        Perm.MANAGE_QUERIES,
        trial=trial,
        site_id=participant.site_id,
        message="Your role may not correct answers.",
    )
    if not reason.strip():
        raise ApplicationError(gettext("Say why the answers are corrected."), errors={"reason": [gettext("Required.")]})
    answers, errors = clean_answers(definition=response.instrument_version.definition, raw=raw)
    if errors:
        raise ApplicationError(gettext("Some answers need your attention."), errors=errors)
    with audit_context(reason=reason.strip()):
        response.answers = answers
        response.scores = score(definition=response.instrument_version.definition, answers=answers)
        response.save(update_fields=["answers", "scores"])
        outcomes_derive(participant=participant)
    return response


# Every closed questionnaire counted afresh into OccurrenceTally (which must be empty first).
OCCURRENCE_TALLY_FILL_SQL = f"""
    INSERT INTO followup_occurrencetally (site_id, instrument, month, status, n)
    SELECT p.site_id, o.instrument, o.month, o.status, COUNT(*)
    FROM followup_occurrence AS o JOIN participants_participant AS p ON p.id = o.participant_id
    WHERE o.status IN ({", ".join(f"'{status}'" for status in TALLIED_STATUSES)})
    GROUP BY p.site_id, o.instrument, o.month, o.status
"""  # noqa: S608 (the statuses are constants)


@transaction.atomic
def occurrence_tally_rebuild() -> int:
    """Count the closed questionnaires again from the questionnaires themselves, for when the
    tally's triggers were skipped (a restore or bulk load with triggers off); writes to
    questionnaires wait until it commits. Returns the number of tally rows."""
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE followup_occurrence IN SHARE MODE")
        cursor.execute("DELETE FROM followup_occurrencetally")
        cursor.execute(OCCURRENCE_TALLY_FILL_SQL)
        return cursor.rowcount
