"""Follow-up reads: messages, worklists. Every query is scoped to the sites the user may see."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone

from followup import outcomes as outcome_rules
from followup.baseline import BASELINE_INSTRUMENT
from followup.models import (
    CallLog,
    CensorReason,
    Occurrence,
    OccurrenceStatus,
    Outcome,
    OutcomeCode,
    OutcomeSummary,
    RuleKind,
    ScheduleRule,
)
from followup.services import followup_ends_on, outcome_final, outcome_policy, participant_timezone
from messaging.models import Message, MessagePolicy, MessageStatus
from participants import blinding
from participants.models import FOLLOWUP_ENDING_SCOPES, ContactDetails, Participant
from trial import access
from trial.access import Perm
from trial.models import Site, Trial


def message_list(*, user: Any, trial: Trial, participant_id: int | None = None) -> QuerySet[Message]:
    """Messages to participants at the user's sites, newest planned first."""
    qs = Message.objects.filter(participant__site__in=access.visible_sites(user, trial=trial)).select_related(
        "occurrence", "template"
    )
    if participant_id is not None:
        qs = qs.filter(participant_id=participant_id)
    return _session_messages_for_unblinded(qs, user=user, trial=trial).order_by("-planned_at", "-pk")


def _session_messages_for_unblinded(qs: QuerySet[Message], *, user: Any, trial: Trial) -> QuerySet[Message]:
    """Session messages exist only in the intervention arm: shown only to those who may see the arm."""
    unblinded = blinding.unblinded_participant_ids(user, trial=trial)
    if unblinded is None:
        return qs
    return qs.filter(Q(session__isnull=True) | Q(participant_id__in=unblinded))


# --- Calls ----------------------------------------------------------------------------------


def call_list(*, user: Any, trial: Trial, participant_id: int | None = None) -> QuerySet[CallLog]:
    """Follow-up calls to participants at the user's sites, newest first."""
    qs = CallLog.objects.filter(participant__site__in=access.visible_sites(user, trial=trial)).select_related(
        "occurrence", "called_by"
    )
    if participant_id is not None:
        qs = qs.filter(participant_id=participant_id)
    return qs.order_by("-called_at", "-pk")


def call_occurrences(*, participant: Participant, now: dt.datetime | None = None) -> QuerySet[Occurrence]:
    """The questionnaires a call may be about: the participant's that have opened and were not cancelled."""
    now = now or timezone.now()
    return (
        Occurrence.objects.filter(participant=participant, opens_at__lte=now)
        .exclude(status=OccurrenceStatus.CANCELLED)
        .order_by("-due_date", "instrument")
    )


def last_calls(*, participant_ids: Iterable[int]) -> dict[int, CallLog]:
    """Each participant's most recent call, in one query (PostgreSQL's DISTINCT ON)."""
    ids = set(participant_ids)
    if not ids:
        return {}
    calls = (
        CallLog.objects.filter(participant_id__in=ids)
        .select_related("called_by", "occurrence")
        .order_by("participant_id", "-called_at", "-pk")
        .distinct("participant_id")
    )
    return {call.participant_id: call for call in calls}


# --- Worklist -------------------------------------------------------------------------------

# Failed messages older than this are history, not work: the next invitation fails again if the
# address is still wrong, and shows up anew.
FAILED_MESSAGE_DAYS = 30
WITHDRAWN_FROM_FOLLOWUP = FOLLOWUP_ENDING_SCOPES
CLOSED = (OccurrenceStatus.COMPLETED, OccurrenceStatus.MISSED)


@dataclass
class WorkItem:
    """One row of the worklist. ``contact`` is set only for roles that may see contact details."""

    participant: Participant
    occurrence: Occurrence | None = None
    days_overdue: int | None = None
    last_day: dt.date | None = None  # the last local day the questionnaire can be answered
    contact: ContactDetails | None = None
    last_call: CallLog | None = None
    missed_in_a_row: int = 0
    message: Message | None = None


@dataclass
class Worklist:
    now: dt.datetime
    policy: MessagePolicy
    may_see_contacts: bool
    overdue: list[WorkItem] = field(default_factory=list)
    due_now: list[WorkItem] = field(default_factory=list)
    closing_soon: list[WorkItem] = field(default_factory=list)
    lost_to_followup: list[WorkItem] = field(default_factory=list)
    failed_messages: list[WorkItem] = field(default_factory=list)

    @property
    def rows(self) -> list[WorkItem]:
        return [*self.closing_soon, *self.overdue, *self.due_now, *self.lost_to_followup, *self.failed_messages]


def message_policy_get(*, trial: Trial) -> MessagePolicy:
    """The trial's message policy, or an unsaved one with the defaults."""
    return MessagePolicy.objects.filter(trial=trial).first() or MessagePolicy(trial=trial)


def _monthly_instruments(trial: Trial) -> QuerySet[ScheduleRule, Any]:
    return ScheduleRule.objects.filter(trial=trial, kind=RuleKind.MONTHLY).values("instrument")


def _sites(user: Any, trial: Trial, site: Site | None) -> QuerySet[Site]:
    sites = access.visible_sites(user, trial=trial)
    return sites.filter(pk=site.pk) if site is not None else sites


def open_occurrence_list(
    *, user: Any, trial: Trial, site: Site | None = None, now: dt.datetime | None = None
) -> QuerySet[Occurrence]:
    """Unanswered questionnaires whose window is open now (whether or not the sweep has marked them
    open yet), with the participant's local time zone as ``zone``."""
    now = now or timezone.now()
    qs = (
        Occurrence.objects.filter(
            participant__site__in=_sites(user, trial, site),
            status__in=(OccurrenceStatus.SCHEDULED, OccurrenceStatus.OPEN),
            opens_at__lte=now,
            closes_at__gt=now,
        )
        .exclude(participant__withdrawal_scope__in=WITHDRAWN_FROM_FOLLOWUP)
        .exclude(instrument=BASELINE_INSTRUMENT)  # asked at enrolment, not follow-up work
        .select_related("participant__site")
        .annotate(zone=Coalesce(NullIf(F("participant__contact__timezone"), Value("")), F("participant__site__timezone")))
        .order_by("due_date", "participant__study_id", "instrument")
    )
    if access.has_perm(user, Perm.VIEW_CONTACTS, trial=trial):
        qs = qs.select_related("participant__contact")
    return qs


def lost_to_followup_list(
    *, user: Any, trial: Trial, site: Site | None = None, missed: int | None = None
) -> QuerySet[Participant]:
    """Participants (not withdrawn from follow-up) whose last ``missed`` closed monthly
    questionnaires were all missed (default: the trial's ``lost_to_followup_missed``).

    Closed means completed or missed (cancelled ones do not count). The last N closed are all
    missed exactly when at least N were missed after the latest completed one, which one
    aggregate query counts. ``missed_in_a_row`` and ``last_missed_id`` come annotated.
    """
    if missed is None:
        missed = message_policy_get(trial=trial).lost_to_followup_missed
    monthly = _monthly_instruments(trial)
    latest_completed = (
        Occurrence.objects.filter(participant=OuterRef("pk"), instrument__in=monthly, status=OccurrenceStatus.COMPLETED)
        .order_by("-due_date")
        .values("due_date")[:1]
    )
    last_missed = (
        Occurrence.objects.filter(participant=OuterRef("pk"), instrument__in=monthly, status=OccurrenceStatus.MISSED)
        .order_by("-due_date")
        .values("pk")[:1]
    )
    missed_since = Q(occurrences__instrument__in=monthly, occurrences__status=OccurrenceStatus.MISSED) & (
        Q(latest_completed_due__isnull=True) | Q(occurrences__due_date__gt=F("latest_completed_due"))
    )
    qs = (
        Participant.objects.filter(site__in=_sites(user, trial, site))
        .exclude(withdrawal_scope__in=WITHDRAWN_FROM_FOLLOWUP)
        .annotate(latest_completed_due=Subquery(latest_completed))
        .annotate(missed_in_a_row=Count("occurrences", filter=missed_since), last_missed_id=Subquery(last_missed))
        .filter(missed_in_a_row__gte=max(missed, 1))
        .select_related("site")
        .order_by("-missed_in_a_row", "study_id")
    )
    if access.has_perm(user, Perm.VIEW_CONTACTS, trial=trial):
        qs = qs.select_related("contact")
    return qs


def failed_message_list(
    *, user: Any, trial: Trial, site: Site | None = None, now: dt.datetime | None = None
) -> QuerySet[Message]:
    """Messages that could not be sent, planned in the last ``FAILED_MESSAGE_DAYS`` days, newest first."""
    now = now or timezone.now()
    qs = (
        Message.objects.filter(
            participant__site__in=_sites(user, trial, site),
            status=MessageStatus.FAILED,
            planned_at__gte=now - dt.timedelta(days=FAILED_MESSAGE_DAYS),
        )
        .exclude(participant__withdrawal_scope__in=WITHDRAWN_FROM_FOLLOWUP)
        .select_related("participant__site", "occurrence")
        .order_by("-planned_at", "-pk")
    )
    if access.has_perm(user, Perm.VIEW_CONTACTS, trial=trial):
        qs = qs.select_related("participant__contact")
    return _session_messages_for_unblinded(qs, user=user, trial=trial)


def _zone(name: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def worklist_get(*, user: Any, trial: Trial, site: Site | None = None, now: dt.datetime | None = None) -> Worklist:
    """What follow-up staff should act on now, at one site or all the user's sites.

    Every open, unanswered questionnaire is in exactly one section, the most urgent that applies
    (dates in the participant's time zone):

    - closing soon: its window closes within the policy's ``closing_soon_days``;
    - overdue: its due date has passed (the window is still open);
    - due now: its window is open and the due date is today or still ahead.

    Then participants meeting the lost-to-follow-up rule (``lost_to_followup_list``) and
    failed messages. Six queries however many rows.
    """
    now = now or timezone.now()
    policy = message_policy_get(trial=trial)
    may_see_contacts = access.has_perm(user, Perm.VIEW_CONTACTS, trial=trial)
    result = Worklist(now=now, policy=policy, may_see_contacts=may_see_contacts)

    def contact_of(participant: Participant) -> ContactDetails | None:
        return getattr(participant, "contact", None) if may_see_contacts else None

    closing_by = now + dt.timedelta(days=policy.closing_soon_days)
    for occurrence in open_occurrence_list(user=user, trial=trial, site=site, now=now):
        zone = _zone(occurrence.zone)  # type: ignore[attr-defined]
        late = (now.astimezone(zone).date() - occurrence.due_date).days
        item = WorkItem(
            participant=occurrence.participant,
            occurrence=occurrence,
            days_overdue=max(late, 0),
            last_day=(occurrence.closes_at.astimezone(zone) - dt.timedelta(microseconds=1)).date(),
            contact=contact_of(occurrence.participant),
        )
        if occurrence.closes_at <= closing_by:
            result.closing_soon.append(item)
        elif late > 0:
            result.overdue.append(item)
        else:
            result.due_now.append(item)
    result.closing_soon.sort(key=lambda i: (i.occurrence.closes_at, i.participant.study_id))  # type: ignore[union-attr]
    result.overdue.sort(key=lambda i: (-(i.days_overdue or 0), i.participant.study_id))

    lost = list(lost_to_followup_list(user=user, trial=trial, site=site, missed=policy.lost_to_followup_missed))
    last_missed = Occurrence.objects.in_bulk([p.last_missed_id for p in lost if p.last_missed_id])  # type: ignore[attr-defined]
    result.lost_to_followup = [
        WorkItem(
            participant=p,
            occurrence=last_missed.get(p.last_missed_id),  # type: ignore[attr-defined]
            contact=contact_of(p),
            missed_in_a_row=p.missed_in_a_row,  # type: ignore[attr-defined]
        )
        for p in lost
    ]
    result.failed_messages = [
        WorkItem(participant=m.participant, occurrence=m.occurrence, message=m, contact=contact_of(m.participant))
        for m in failed_message_list(user=user, trial=trial, site=site, now=now)
    ]

    calls = last_calls(participant_ids=[item.participant.pk for item in result.rows])
    for item in result.rows:
        item.last_call = calls.get(item.participant.pk)
    return result


# --- Outcomes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeView:
    """One outcome as pages and the API show it: the final value (adjudicated wins) and the derived one."""

    code: str
    label: str
    final: Any  # followup.services.FinalOutcome
    derived_event: bool
    derived_event_date: dt.date | None
    derived_censored_at: dt.date | None
    derived_censor_reason: str
    derived_days: int | None
    adjudicated: bool
    adjudication_reason: str
    adjudicated_by: Any
    adjudicated_at: dt.datetime | None
    source_month: int | None
    censor_label: str


def outcome_panel(*, participant: Participant) -> dict[str, Any]:
    """A participant's outcomes, their summary and the monthly history they come from, in a
    constant number of queries: ``outcomes`` (OutcomeView, primary first), ``outcome_summary``
    (None before randomisation), ``monthly_history`` (one dict per monthly questionnaire, with the
    ``episodes`` it reported, as ``followup.outcomes`` reads them: version 1 as one episode),
    ``followup_ends_on`` (the participant's planned end of follow-up) and ``ignored_episodes``
    (episodes starting after it: reported, never an event)."""
    context: dict[str, Any] = {
        "outcomes": [],
        "outcome_summary": None,
        "monthly_history": [],
        "randomised_on": None,
        "followup_ends_on": None,
        "ignored_episodes": [],
    }
    if participant.randomised_at is None:
        return context
    zone = zoneinfo.ZoneInfo(participant_timezone(participant=participant))
    randomised_on = participant.randomised_at.astimezone(zone).date()
    ends_on = followup_ends_on(participant=participant)
    policy = outcome_policy(trial=participant.site.trial)
    occurrences = list(
        Occurrence.objects.filter(participant=participant, instrument=policy.instrument)
        .select_related("response")
        .order_by("month")
    )
    months = {o.pk: o.month for o in occurrences}
    due_dates = {o.pk: o.due_date for o in occurrences}
    stored = {o.code: o for o in Outcome.objects.filter(participant=participant).select_related("adjudicated_by")}
    censor_labels = dict(CensorReason.choices)
    outcomes = []
    for code, label in OutcomeCode.choices:
        outcome = stored.get(code)
        if outcome is None:
            continue
        final = outcome_final(outcome=outcome, randomised_on=randomised_on)
        outcomes.append(
            OutcomeView(
                code=code,
                label=str(label),
                final=final,
                derived_event=outcome.event,
                derived_event_date=outcome.event_date,
                derived_censored_at=outcome.censored_at,
                derived_censor_reason=outcome.censor_reason,
                derived_days=outcome.days,
                adjudicated=outcome.adjudicated,
                adjudication_reason=outcome.adjudication_reason,
                adjudicated_by=outcome.adjudicated_by,
                adjudicated_at=outcome.adjudicated_at,
                source_month=months.get(outcome.source_occurrence_id) if outcome.source_occurrence_id else None,
                censor_label=censor_labels.get(final.censor_reason, final.censor_reason),
            )
        )
    sources: dict[int, list[str]] = {}
    for view in outcomes:
        source_id = stored[view.code].source_occurrence_id
        if view.derived_event and source_id:
            sources.setdefault(source_id, []).append(view.code)
    answered = []
    history = []
    for occurrence in occurrences:
        response = getattr(occurrence, "response", None) if occurrence.status == OccurrenceStatus.COMPLETED else None
        if response is not None:
            answered.append(
                outcome_rules.MonthlyAnswer(
                    occurrence_id=occurrence.pk,
                    month=occurrence.month,
                    due_date=occurrence.due_date,
                    completed_on=response.submitted_at.astimezone(zone).date(),
                    answers=response.answers,
                )
            )
        history.append(
            {
                "occurrence_id": occurrence.pk,
                "month": occurrence.month,
                "due_date": occurrence.due_date,
                "status": occurrence.status,
                "status_label": occurrence.get_status_display(),
                "completed": response is not None,
                "episodes": outcome_rules.episodes(response.answers) if response is not None else [],
                "event_for": sources.get(occurrence.pk, []),
            }
        )
    ignored = outcome_rules.episodes_after_end(randomised_on=randomised_on, monthly=answered, followup_ends_on=ends_on)
    context.update(
        {
            "outcomes": outcomes,
            "outcome_summary": OutcomeSummary.objects.filter(participant=participant).first(),
            "monthly_history": history,
            "randomised_on": randomised_on,
            "followup_ends_on": ends_on,
            "ignored_episodes": [
                {"month": months[occurrence_id], "start": episode.start or due_dates[occurrence_id]}
                for occurrence_id, episode in ignored
            ],
        }
    )
    return context
