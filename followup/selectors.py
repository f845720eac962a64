"""Follow-up reads: messages, worklists. Every query is scoped to the sites the user may see."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    DateField,
    DateTimeField,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import Cast, Coalesce, NullIf, RowNumber
from django.db.models.lookups import GreaterThan
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
    ResponseDraft,
)
from followup.services import followup_ends_on, outcome_final, outcome_policy, participant_timezone
from messaging.models import Message, MessagePolicy, MessageStatus, MessageTally
from participants import blinding
from participants.models import FOLLOWUP_ENDING_SCOPES, ContactDetails, Participant
from trial import access
from trial.access import Perm
from trial.models import Site, Trial


def draft_get(*, occurrence: Occurrence) -> ResponseDraft | None:
    """The answers the participant saved step by step and has not sent yet, if any."""
    return ResponseDraft.objects.filter(occurrence=occurrence).first()


def draft_occurrence_ids(*, participant: Participant) -> set[int]:
    """The participant's questionnaires with answers saved and not sent yet (their home page says
    "Continue" instead of "Start")."""
    return set(ResponseDraft.objects.filter(occurrence__participant=participant).values_list("occurrence_id", flat=True))


def message_list(*, user: Any, trial: Trial, participant_id: int | None = None) -> QuerySet[Message]:
    """Messages to participants at the user's sites, newest planned first."""
    qs = Message.objects.filter(participant__site__in=access.visible_sites(user, trial=trial)).select_related(
        "occurrence", "template"
    )
    if participant_id is not None:
        qs = qs.filter(participant_id=participant_id)
    return _session_messages_for_unblinded(qs, user=user, trial=trial).order_by("-planned_at", "-pk")


def message_count(*, user: Any, trial: Trial, participant_id: int | None = None) -> int:
    """How many messages ``message_list`` holds, for its pages: from the kept tally of messages by
    site when it lists every participant (counting 1.5 million messages took 170 ms), by counting
    them for one participant. A blinded role's session messages (only of participants they were
    unblinded to) are counted from the messages themselves: a few at most."""
    if participant_id is not None:
        return message_list(user=user, trial=trial, participant_id=participant_id).count()
    sites = access.visible_sites(user, trial=trial)
    unblinded = blinding.unblinded_participant_ids(user, trial=trial)
    tally = MessageTally.objects.filter(site__in=sites)
    if unblinded is None:
        return tally.aggregate(n=Sum("n"))["n"] or 0
    general = tally.filter(for_session=False).aggregate(n=Sum("n"))["n"] or 0
    sessions = Message.objects.filter(participant__site__in=sites, session__isnull=False, participant_id__in=unblinded)
    return general + (sessions.count() if unblinded else 0)


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
# Rows per section on one worklist page; each section pages on its own. At 50,000 participants a
# section can hold tens of thousands of rows: the page shows this many and a count.
WORKLIST_PAGE_SIZE = 25
# The worklist's sections, in the order the page shows them; the first three are open questionnaires.
SECTION_KINDS = ("closing_soon", "overdue", "due_now", "lost_to_followup", "failed_messages")
OPEN_KINDS = SECTION_KINDS[:3]


@dataclass(frozen=True)
class WorklistFilters:
    """What a worklist shows: one section (``kind``) or all, and a range of due dates (an open
    questionnaire's, a lost participant's last missed one, a failed message's questionnaire)."""

    kind: str = ""
    due_from: dt.date | None = None
    due_to: dt.date | None = None

    def shows(self, kind: str) -> bool:
        return not self.kind or self.kind == kind


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
    filters: WorklistFilters = field(default_factory=WorklistFilters)
    overdue: list[WorkItem] = field(default_factory=list)
    due_now: list[WorkItem] = field(default_factory=list)
    closing_soon: list[WorkItem] = field(default_factory=list)
    lost_to_followup: list[WorkItem] = field(default_factory=list)
    failed_messages: list[WorkItem] = field(default_factory=list)
    # Each section's number of rows (all pages), and, on a paged worklist, its page.
    counts: dict[str, int] = field(default_factory=dict)
    pages: dict[str, Page[WorkItem]] = field(default_factory=dict)

    @property
    def rows(self) -> list[WorkItem]:
        return [*self.closing_soon, *self.overdue, *self.due_now, *self.lost_to_followup, *self.failed_messages]


class _CountedPaginator(Paginator):
    """A paginator given its count (already computed in SQL) instead of counting again; its pages
    get their rows afterwards, fetched for that page only."""

    def __init__(self, count: int, per_page: int) -> None:
        super().__init__((), per_page)
        self.__dict__["count"] = count  # Paginator.count is a cached_property


def message_policy_get(*, trial: Trial) -> MessagePolicy:
    """The trial's message policy, or an unsaved one with the defaults."""
    return MessagePolicy.objects.filter(trial=trial).first() or MessagePolicy(trial=trial)


def _sites(user: Any, trial: Trial, site: Site | None) -> QuerySet[Site]:
    sites = access.visible_sites(user, trial=trial)
    return sites.filter(pk=site.pk) if site is not None else sites


def open_occurrence_list(
    *, user: Any, trial: Trial, site: Site | None = None, now: dt.datetime | None = None
) -> QuerySet[Occurrence]:
    """Unanswered questionnaires whose window is open now (whether or not the sweep has marked them
    open yet), of participants not withdrawn from follow-up, at the user's sites."""
    now = now or timezone.now()
    return (
        Occurrence.objects.filter(
            participant__site__in=_sites(user, trial, site),
            status__in=(OccurrenceStatus.SCHEDULED, OccurrenceStatus.OPEN),
            opens_at__lte=now,
            closes_at__gt=now,
        )
        .exclude(participant__withdrawal_scope__in=WITHDRAWN_FROM_FOLLOWUP)
        .exclude(instrument=BASELINE_INSTRUMENT)  # asked at enrolment, not follow-up work
    )


def _due_date_passed(now: dt.datetime) -> Case:
    """Whether each questionnaire's due date has passed in its participant's time zone (their own,
    else their site's: ``participant_timezone``'s rule, in SQL). Every zone's date is within a day of UTC's, so the zone is read only for
    due dates within a day of today's UTC date: the others have passed, or not, everywhere."""
    zone = Coalesce(
        NullIf(Subquery(ContactDetails.objects.filter(participant=OuterRef("participant")).values("timezone")[:1]), Value("")),
        F("participant__site__timezone"),
    )
    local_today = Cast(
        Func(zone, Value(now, output_field=DateTimeField()), function="timezone", output_field=DateTimeField()), DateField()
    )
    utc_today = now.astimezone(dt.UTC).date()
    return Case(
        When(due_date__lt=utc_today - dt.timedelta(days=1), then=Value(True)),
        When(due_date__gt=utc_today + dt.timedelta(days=1), then=Value(False)),
        default=GreaterThan(local_today, F("due_date")),
        output_field=BooleanField(),
    )


def _open_section_order() -> list[Any]:
    """Each open section's order, the most urgent first, ties by study id: closing soon by the
    end of the window, overdue and due now by due date (the longest overdue first). One ordering
    for a window over all three: within a section the other sections' keys are null, so they tie."""
    return [
        Case(When(kind="closing_soon", then=F("closes_at")), default=None).asc(),
        Case(When(kind__in=("overdue", "due_now"), then=F("due_date")), default=None).asc(),
        F("participant__study_id").asc(),
        F("instrument").asc(),
        F("pk").asc(),
    ]


def open_occurrence_sections(
    *, user: Any, trial: Trial, site: Site | None = None, now: dt.datetime, closing_soon_days: int
) -> QuerySet[Occurrence]:
    """``open_occurrence_list`` with each questionnaire's section as ``kind``, in SQL: closing soon
    if the window closes within ``closing_soon_days``, else overdue if the due date has passed in
    the participant's time zone, else due now."""
    kind = Case(
        When(closes_at__lte=now + dt.timedelta(days=closing_soon_days), then=Value("closing_soon")),
        When(_due_date_passed(now), then=Value("overdue")),
        default=Value("due_now"),
        output_field=CharField(),
    )
    return open_occurrence_list(user=user, trial=trial, site=site, now=now).annotate(kind=kind)


def _work_item(occurrence: Occurrence, *, now: dt.datetime, contact_shown: bool) -> WorkItem:
    """A worklist row for an open questionnaire (its participant, site and contact read with it),
    with its days overdue and last day in the participant's time zone."""
    zone = _zone(participant_timezone(participant=occurrence.participant))
    return WorkItem(
        participant=occurrence.participant,
        occurrence=occurrence,
        days_overdue=max((now.astimezone(zone).date() - occurrence.due_date).days, 0),
        last_day=(occurrence.closes_at.astimezone(zone) - dt.timedelta(microseconds=1)).date(),
        contact=getattr(occurrence.participant, "contact", None) if contact_shown else None,
    )


def _lost(
    *, user: Any, trial: Trial, site: Site | None, missed: int, filters: WorklistFilters | None = None
) -> QuerySet[Participant]:
    """The participants (not withdrawn from follow-up) of the visible sites whose outcome summary
    counts at least ``missed`` monthly questionnaires missed since the latest completed one
    (``outcomes.summarise`` keeps the count whenever a questionnaire is answered or closes missed),
    optionally with the last one missed due within the filters' dates."""
    filters = filters or WorklistFilters()
    qs = Participant.objects.filter(
        site__in=_sites(user, trial, site), outcome_summary__missed_in_a_row__gte=max(missed, 1)
    ).exclude(withdrawal_scope__in=WITHDRAWN_FROM_FOLLOWUP)
    if filters.due_from:
        qs = qs.filter(outcome_summary__last_missed_due__gte=filters.due_from)
    if filters.due_to:
        qs = qs.filter(outcome_summary__last_missed_due__lte=filters.due_to)
    return qs


def lost_to_followup_list(
    *, user: Any, trial: Trial, site: Site | None = None, missed: int | None = None
) -> QuerySet[Participant]:
    """Participants (not withdrawn from follow-up) whose last ``missed`` closed monthly
    questionnaires were all missed (default: the trial's ``lost_to_followup_missed``).

    Closed means completed or missed (cancelled ones do not count). The last N closed are all
    missed exactly when at least N were missed after the latest completed one, which each
    participant's outcome summary keeps (``missed_in_a_row``).
    """
    if missed is None:
        missed = message_policy_get(trial=trial).lost_to_followup_missed
    qs = _lost(user=user, trial=trial, site=site, missed=missed).select_related("site").order_by("study_id")
    if access.has_perm(user, Perm.VIEW_CONTACTS, trial=trial):
        qs = qs.select_related("contact")
    return qs


def _lost_rows(
    *, user: Any, trial: Trial, site: Site | None, missed: int, filters: WorklistFilters, offset: int, limit: int | None
) -> tuple[list[tuple[int, int, int]], int | None]:
    """One page of the lost participants (most missed first, then by study id) as (participant id,
    missed in a row, last missed id), and the count of all pages (None when the page is past the end)."""
    qs = (
        _lost(user=user, trial=trial, site=site, missed=missed, filters=filters)
        .annotate(total=Window(Count("pk")))
        .order_by("-outcome_summary__missed_in_a_row", "study_id")
        .values_list("pk", "outcome_summary__missed_in_a_row", "outcome_summary__last_missed_id", "total")
    )
    found = list(qs[offset : offset + limit] if limit is not None else qs[offset:])
    if not found:
        return [], 0 if offset == 0 else None
    return [(pid, count, last) for pid, count, last, _total in found], found[0][3]


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


def _due_between(qs: QuerySet[Any], filters: WorklistFilters, field_name: str) -> QuerySet[Any]:
    if filters.due_from:
        qs = qs.filter(**{f"{field_name}__gte": filters.due_from})
    if filters.due_to:
        qs = qs.filter(**{f"{field_name}__lte": filters.due_to})
    return qs


def _page_number(pages: Mapping[str, Any] | None, kind: str) -> int:
    """The page asked for: a number from 1, anything else the first page (a page past the end is
    the last one, as ``Paginator.get_page`` does)."""
    try:
        return max(int((pages or {}).get(kind) or 1), 1)
    except (TypeError, ValueError):
        return 1


def worklist_get(
    *,
    user: Any,
    trial: Trial,
    site: Site | None = None,
    filters: WorklistFilters | None = None,
    now: dt.datetime | None = None,
    page_size: int | None = None,
    pages: Mapping[str, Any] | None = None,
) -> Worklist:
    """What follow-up staff should act on now, at one site or all the user's sites.

    Every open, unanswered questionnaire is in exactly one section, the most urgent that applies
    (dates in the participant's time zone):

    - closing soon: its window closes within the policy's ``closing_soon_days``;
    - overdue: its due date has passed (the window is still open);
    - due now: its window is open and the due date is today or still ahead.

    Then participants meeting the lost-to-follow-up rule and failed messages. ``counts`` holds
    each section's size (the open ones from one aggregate query). With ``page_size``, each section
    holds one page of rows (``pages``: the page number asked for, by section) and ``pages`` the
    Page; without, every row (the CSV download). A constant number of queries however many rows.
    """
    now = now or timezone.now()
    filters = filters or WorklistFilters()
    policy = message_policy_get(trial=trial)
    may_see_contacts = access.has_perm(user, Perm.VIEW_CONTACTS, trial=trial)
    result = Worklist(now=now, policy=policy, may_see_contacts=may_see_contacts, filters=filters)

    def contact_of(participant: Participant) -> ContactDetails | None:
        return getattr(participant, "contact", None) if may_see_contacts else None

    def window(kind: str, count: int | None) -> tuple[int, int | None]:
        """The rows a section's page starts at and how many (all of them when not paged)."""
        if page_size is None:
            return 0, None
        paginator = _CountedPaginator(count or 0, page_size)
        result.pages[kind] = paginator.get_page(_page_number(pages, kind))
        return (result.pages[kind].number - 1) * page_size, page_size

    def rows(kind: str, items: list[WorkItem]) -> None:
        setattr(result, kind, items)
        if kind in result.pages:
            result.pages[kind].object_list = items

    open_qs = _due_between(
        open_occurrence_sections(user=user, trial=trial, site=site, now=now, closing_soon_days=policy.closing_soon_days),
        filters,
        "due_date",
    )
    # Every section's size and every shown section's page in one query: each questionnaire
    # numbered within its section, in the section's own order, beside its section's size; only
    # the ids of the pages asked for are read, and the first of each section (for its size). A
    # page number past the end costs a second query, for that section's last page. Then the
    # page's questionnaires with their participants, and nothing for the other rows.
    numbered = open_qs.annotate(
        position=Window(RowNumber(), partition_by=[F("kind")], order_by=_open_section_order()),
        section_size=Window(Count("pk"), partition_by=[F("kind")]),
    )

    def positions(kind: str, start: int, size: int | None) -> Q:
        return Q(kind=kind, position__gt=start, **({"position__lte": start + size} if size else {}))

    def read(wanted: Q) -> list[tuple[int, str, int, int]]:
        return list(numbered.filter(wanted).order_by("kind", "position").values_list("pk", "kind", "position", "section_size"))

    shown = [kind for kind in OPEN_KINDS if filters.shows(kind)]
    asked_start = {kind: (_page_number(pages, kind) - 1) * page_size if page_size else 0 for kind in shown}
    wanted = Q(position=1)
    for kind in shown:
        wanted |= positions(kind, asked_start[kind], page_size)
    found = read(wanted)
    result.counts = dict.fromkeys(OPEN_KINDS, 0)
    for _pk, kind, _position, section_size in found:
        result.counts[kind] = section_size
    page_first: dict[str, int] = {}
    past_the_end = []
    for kind in shown:
        page_first[kind], _size = window(kind, result.counts[kind])
        if page_first[kind] != asked_start[kind] and result.counts[kind]:
            past_the_end.append(kind)
    if past_the_end:
        again = Q()
        for kind in past_the_end:
            again |= positions(kind, page_first[kind], page_size)
        found = [row for row in found if row[1] not in past_the_end] + read(again)
    # A section's first row read only for its size is left out of a later page.
    on_page = [
        (pk, kind)
        for pk, kind, position, _size in found
        if kind in page_first and page_first[kind] < position and (not page_size or position <= page_first[kind] + page_size)
    ]
    occurrences = Occurrence.objects.select_related("participant__site", "participant__contact").in_bulk(
        [pk for pk, _kind in on_page]
    )
    by_kind: dict[str, list[WorkItem]] = {kind: [] for kind in shown}
    for pk, kind in on_page:
        if pk in occurrences:  # not one removed between the two reads
            by_kind[kind].append(_work_item(occurrences[pk], now=now, contact_shown=may_see_contacts))
    for kind in shown:
        rows(kind, by_kind[kind])

    lost_args = {"user": user, "trial": trial, "site": site, "missed": policy.lost_to_followup_missed, "filters": filters}
    if filters.shows("lost_to_followup"):
        # The count comes with the rows of the page (a window count); only a page number past the
        # end costs a second query, and a third for the last page.
        asked = _page_number(pages, "lost_to_followup") if page_size else 1
        start = (asked - 1) * page_size if page_size else 0
        lost, total = _lost_rows(**lost_args, offset=start, limit=page_size)
        if total is None:
            total = _lost_rows(**lost_args, offset=0, limit=1)[1] or 0
        if page_size:
            first, _size = window("lost_to_followup", total)
            if first != start:
                lost, _total = _lost_rows(**lost_args, offset=first, limit=page_size)
        result.counts["lost_to_followup"] = total
        people = Participant.objects.select_related("site", *(["contact"] if may_see_contacts else [])).in_bulk(
            [pid for pid, _n, _last in lost]
        )
        last_missed = Occurrence.objects.in_bulk([last for _pid, _n, last in lost])
        rows(
            "lost_to_followup",
            [
                WorkItem(
                    participant=people[pid],
                    occurrence=last_missed.get(last),
                    contact=contact_of(people[pid]),
                    missed_in_a_row=n,
                )
                for pid, n, last in lost
            ],
        )
    else:
        result.counts["lost_to_followup"] = _lost_rows(**lost_args, offset=0, limit=1)[1] or 0

    failed = _due_between(failed_message_list(user=user, trial=trial, site=site, now=now), filters, "occurrence__due_date")
    result.counts["failed_messages"] = failed.count()
    if filters.shows("failed_messages"):
        start, size = window("failed_messages", result.counts["failed_messages"])
        rows(
            "failed_messages",
            [
                WorkItem(participant=m.participant, occurrence=m.occurrence, message=m, contact=contact_of(m.participant))
                for m in (failed[start : start + size] if size else failed)
            ],
        )

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
                censor_label=str(censor_labels.get(final.censor_reason, final.censor_reason)),
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
