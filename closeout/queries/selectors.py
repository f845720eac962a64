"""Data-query reads, scoped to the sites a user may see; the missing-data report."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet, Sum, Window

from closeout.models import DataQuery, QueryStatus
from followup.models import Occurrence, OccurrenceStatus, OccurrenceTally
from participants import blinding, records
from participants.models import ALLOCATION_MODELS, INTERVENTION_MODELS
from trial import access
from trial.models import RoleCode, Site, Trial

# Records that tell the arm (the allocation; the intervention arm's sessions, prescription and
# walking diary): a query on one, raised by a check, shows blinded roles its status only.
ARM_REVEALING_RECORDS: frozenset[str] = ALLOCATION_MODELS | INTERVENTION_MODELS

# How each kind of clinical record reaches its participant (for labels and links).
PARTICIPANT_PATH: dict[str, str] = {
    "participants.participant": "",
    "participants.participantstratum": "participant__",
    "participants.consent": "participant__",
    "participants.withdrawal": "participant__",
    "intervention.session": "participant__",
    "intervention.sessionrecord": "session__participant__",
    "intervention.prescription": "participant__",
    "intervention.walk": "participant__",
    "safety.adverseevent": "participant__",
    "safety.aefollowup": "event__participant__",
    "followup.occurrence": "participant__",
    "followup.questionnaireresponse": "occurrence__participant__",
    "followup.outcome": "participant__",
    "followup.outcomesummary": "participant__",
    "followup.calllog": "participant__",
}


def hides_arm(user: Any, *, trial: Trial) -> bool:
    return not access.can_see_allocation(user, trial=trial)


def query_hidden(query: DataQuery, *, hide_arm: bool) -> bool:
    """Whether the query's record, field, text and answer are withheld from this reader."""
    return hide_arm and query.record_type in ARM_REVEALING_RECORDS


def parse_record(value: str) -> tuple[str, int] | None:
    """``app_label.model:id`` -> (record type, id), or None when it does not read as one."""
    label, _, pk = value.strip().partition(":")
    if "." not in label or not pk.isdigit() or len(pk) > 18:
        return None
    return label.lower(), int(pk)


def record_get(*, user: Any, trial: Trial, value: str) -> Any:
    """The record ``app_label.model:id`` names, if the user may see it; else None."""
    parsed = parse_record(value)
    if parsed is None:
        return None
    label, pk = parsed
    if not records.may_raise_query(label):  # clinical data only, by its rule: not configuration, accounts or the audit
        return None
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        return None
    record = model._default_manager.filter(pk=pk).first()
    if record is None or not hasattr(record, "site_for_access") or not blinding.can_view_record(user, record, trial=trial):
        return None
    return record


# The columns the query list may be sorted by (trial.sorting): not the record, field or question,
# which a blinded reader does not see on an arm-revealing query.
QUERY_SORTS: dict[str, tuple[str, ...]] = {
    "number": ("pk",),
    "status": ("status",),
    "site": ("site__code",),
    "raised": ("created_at",),
}


def query_list(*, user: Any, trial: Trial, filters: dict[str, Any] | None = None) -> QuerySet[DataQuery]:
    """Queries at the user's sites, newest first. Filters: status, site (code), assignee
    (username), record (``app.model:id``), check (code), mine (open queries for this user)."""
    filters = filters or {}
    queries = (
        DataQuery.objects.filter(trial=trial, site__in=access.visible_sites(user, trial=trial))
        .select_related("site", "assignee", "raised_by")
        .order_by("-created_at", "-pk")
    )
    record = filters.get("record")
    if (record or filters.get("check")) and hides_arm(user, trial=trial):
        # a filter must not tell a blinded reader what a hidden query is about
        queries = queries.exclude(record_type__in=ARM_REVEALING_RECORDS)
    if status := filters.get("status"):
        queries = queries.filter(status=status)
    if site := filters.get("site"):
        queries = queries.filter(site__code=str(site).upper())
    if assignee := filters.get("assignee"):
        queries = queries.filter(assignee__username=assignee)
    if record:
        parsed = parse_record(str(record))
        queries = queries.filter(record_type=parsed[0], record_id=parsed[1]) if parsed else queries.none()
    if check := filters.get("check"):
        queries = queries.filter(check_code=check)
    if filters.get("mine"):
        queries = queries.filter(_mine(user, trial=trial))
    return queries


def _mine(user: Any, *, trial: Trial) -> Q:
    """Assigned to the user, or unassigned at a site the user works at."""
    site_ids = access.access_for(user, trial).site_ids
    return Q(status=QueryStatus.OPEN) & (Q(assignee_id=user.pk) | Q(assignee__isnull=True, site_id__in=site_ids))


def query_get(*, user: Any, trial: Trial, pk: int) -> DataQuery | None:
    return query_list(user=user, trial=trial).filter(pk=pk).first()


def queries_for_record(*, record_type: str, record_id: int) -> QuerySet[DataQuery]:
    """Every query on one record, oldest first (the caller has checked the record is visible)."""
    return (
        DataQuery.objects.filter(record_type=record_type.lower(), record_id=record_id)
        .select_related("assignee", "raised_by", "site")
        .order_by("created_at", "pk")
    )


def my_open_queries(*, user: Any, trial: Trial) -> QuerySet[DataQuery]:
    """The open queries a staff member is to answer: assigned to them, or unassigned at their sites."""
    return query_list(user=user, trial=trial).filter(_mine(user, trial=trial))


def my_newest_open_queries(*, user: Any, trial: Trial, site: Site | None = None, limit: int) -> tuple[list[DataQuery], int]:
    """The newest ``limit`` of ``my_open_queries`` (at one site, or all the user's), and how many
    there are in all, in one query."""
    mine = my_open_queries(user=user, trial=trial)
    if site is not None:
        mine = mine.filter(site=site)
    rows: list[Any] = list(mine.annotate(total=Window(Count("pk")))[:limit])
    return rows, int(rows[0].total) if rows else 0


def assignee_choices(*, trial: Trial, site_id: int) -> QuerySet[Any]:
    """Staff who work at the site (coordinators and physiotherapists): who may answer its queries."""
    return (
        get_user_model()
        .objects.filter(is_active=True, staff__sites__id=site_id, staff__sites__trial=trial)
        .exclude(staff__role__in=[RoleCode.ADMIN])
        .order_by("username")
        .distinct()
    )


@dataclass(frozen=True)
class RecordRef:
    record_type: str
    record_id: int
    label: str  # "questionnaire response 12"
    participant_id: int | None
    study_id: str
    history_url: str


def record_refs(queries: Iterable[DataQuery]) -> dict[tuple[str, int], RecordRef]:
    """Labels and participant of each query's record: one query per kind of record, whatever the rows."""
    from django.urls import reverse

    by_type: dict[str, set[int]] = defaultdict(set)
    for q in queries:
        by_type[q.record_type].add(q.record_id)
    refs: dict[tuple[str, int], RecordRef] = {}
    for record_type, ids in by_type.items():
        participants: dict[int, tuple[int | None, str]] = {}
        try:
            model = apps.get_model(record_type)
        except (LookupError, ValueError):
            model = None
        if model is not None and record_type in PARTICIPANT_PATH:
            path = PARTICIPANT_PATH[record_type]
            rows = model._default_manager.filter(pk__in=ids).values_list("pk", f"{path}id" if path else "pk", f"{path}study_id")
            participants = {pk: (pid, study_id) for pk, pid, study_id in rows}
        name = str(model._meta.verbose_name) if model is not None else record_type
        app_label, _, model_name = record_type.partition(".")
        for pk in ids:
            pid, study_id = participants.get(pk, (None, ""))
            refs[(record_type, pk)] = RecordRef(
                record_type=record_type,
                record_id=pk,
                label=f"{name} {pk}",
                participant_id=pid,
                study_id=study_id,
                history_url=reverse("record-history", args=[app_label, model_name, pk]),
            )
    return refs


# --- The missing-data report ----------------------------------------------------------------


@dataclass(frozen=True)
class MissingCounts:
    due: int
    completed: int
    missed: int
    open: int

    @property
    def percent_missing(self) -> float | None:
        """Of the windows that have closed (completed or missed); None before any has."""
        closed = self.completed + self.missed
        return round(100 * self.missed / closed, 1) if closed else None


@dataclass(frozen=True)
class MissingRow:
    instrument: str
    month: int
    total: MissingCounts
    by_site: list[tuple[str, MissingCounts]]


def missing_data_report(*, user: Any, trial: Trial) -> list[MissingRow]:
    """Per instrument and timepoint (month), by site: questionnaires due (window opened, not
    cancelled), completed, missed, still open. Two queries: the closed ones from the tally the
    questionnaires' triggers keep, the open ones (a few thousand at most) from the questionnaires."""
    S = OccurrenceStatus
    sites = access.visible_sites(user, trial=trial)
    by_key: dict[tuple[str, int, str], dict[str, int]] = {}
    closed = (
        OccurrenceTally.objects.filter(site__in=sites)
        .values_list("instrument", "month", "site__code", "status")
        .annotate(total=Sum("n"))
        .order_by()
    )
    opened = (
        Occurrence.objects.filter(participant__site__in=sites, status=S.OPEN)
        .values_list("instrument", "month", "participant__site__code", "status")
        .annotate(total=Count("pk"))
        .order_by()
    )
    for instrument, month, site, status, total in [*closed, *opened]:
        if total:
            by_key.setdefault((instrument, month, site), dict.fromkeys((S.COMPLETED, S.MISSED, S.OPEN), 0))[status] = total
    rows: list[dict[str, Any]] = [
        {
            "instrument": instrument,
            "month": month,
            "participant__site__code": site,
            "due": sum(by_status.values()),
            "completed": by_status[S.COMPLETED],
            "missed": by_status[S.MISSED],
            "open": by_status[S.OPEN],
        }
        for (instrument, month, site), by_status in sorted(by_key.items())
    ]
    grouped: dict[tuple[str, int], list[tuple[str, MissingCounts]]] = {}
    for row in rows:
        counts = MissingCounts(due=row["due"], completed=row["completed"], missed=row["missed"], open=row["open"])
        grouped.setdefault((row["instrument"], row["month"]), []).append((row["participant__site__code"], counts))
    report = []
    for (instrument, month), by_site in grouped.items():
        total = MissingCounts(
            due=sum(c.due for _, c in by_site),
            completed=sum(c.completed for _, c in by_site),
            missed=sum(c.missed for _, c in by_site),
            open=sum(c.open for _, c in by_site),
        )
        report.append(MissingRow(instrument=instrument, month=month, total=total, by_site=by_site))
    return report
