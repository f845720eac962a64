"""Data-query pages, the missing-data report and the lock page: thin views over
closeout.queries.selectors/services and closeout.datalock.services."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from closeout.datalock.services import database_lock, database_unlock, lock_blockers, lock_current, lock_signature_check
from closeout.models import DatabaseLock, DataQuery, QueryStatus
from closeout.queries import selectors, services
from closeout.queries.checks import CHECK_LABELS
from closeout.queries.forms import (
    AnswerForm,
    CloseForm,
    LockForm,
    QueryFilterForm,
    QueryRaiseForm,
    ReopenForm,
    UnlockForm,
    field_choices,
)
from closeout.queries.selectors import RecordRef
from trial import access, downloads, sorting
from trial.access import Perm
from trial.errors import ApplicationError, Conflict
from trial.models import Trial
from trial.tasking import queue_on_commit

PAGE_SIZE = 50
MINE_LIMIT = 50


def _trial(request: HttpRequest, *perms: Perm) -> Trial:
    """The trial, if the user holds any of ``perms``."""
    return access.page_trial(request, *perms, message="Your role does not work with data queries.")


@dataclass(frozen=True)
class QueryRow:
    query: DataQuery
    hidden: bool  # record, field, text and answer withheld: the record would tell a blinded reader the arm
    ref: RecordRef | None
    check_label: str


def _rows(request: HttpRequest, trial: Trial, *querysets: Any) -> list[list[QueryRow]]:
    hide_arm = selectors.hides_arm(request.user, trial=trial)
    lists = [list(qs) for qs in querysets]
    visible = [q for rows in lists for q in rows if not selectors.query_hidden(q, hide_arm=hide_arm)]
    refs = selectors.record_refs(visible)
    return [
        [
            QueryRow(
                query=q,
                hidden=(hidden := selectors.query_hidden(q, hide_arm=hide_arm)),
                ref=None if hidden else refs.get((q.record_type, q.record_id)),
                check_label="" if hidden else CHECK_LABELS.get(q.check_code, q.check_code),
            )
            for q in rows
        ]
        for rows in lists
    ]


def _query(request: HttpRequest, trial: Trial, pk: int) -> DataQuery:
    query = selectors.query_get(user=request.user, trial=trial, pk=pk)
    if query is None:
        raise Http404("No such query, or not one you can see.")
    return query


# --- The list, the checks and the missing-data report ---------------------------------------------


@login_required
def query_list(request: HttpRequest) -> HttpResponseBase:
    trial = _trial(request, Perm.VIEW_PARTICIPANTS)
    acc = access.access_for(request.user, trial)
    form = QueryFilterForm(request.GET, sites=access.visible_sites(request.user, trial=trial).order_by("code"))
    queries = selectors.query_list(user=request.user, trial=trial, filters=form.filters())
    sort = sorting.sort_parse(request.GET.get("sort"), columns=selectors.QUERY_SORTS)
    queries = sorting.sort_apply(queries, sort, columns=selectors.QUERY_SORTS)
    if downloads.wants_csv(request):
        zone = zoneinfo.ZoneInfo(trial.timezone)

        def lines(batch: list[DataQuery]) -> Any:
            (rows,) = _rows(request, trial, batch)
            for row in rows:
                q, ref = row.query, row.ref
                who = q.assignee.get_full_name() or q.assignee.get_username() if q.assignee else "Site staff"
                yield [
                    q.pk,
                    q.get_status_display(),
                    q.site.code,
                    "" if row.hidden or ref is None else ref.study_id,
                    "" if row.hidden or ref is None else ref.label,
                    "" if row.hidden else q.field,
                    "Only unblinded staff see what this query is about." if row.hidden else q.text,
                    who,
                    q.created_at.astimezone(zone).date().isoformat(),
                    q.raised_by.get_username() if q.raised_by else row.check_label or "Check",
                ]

        header = ["query", "status", "site", "study_id", "record", "field", "question", "assigned_to", "raised_on", "raised_by"]
        return downloads.csv_download(name="data-queries", header=header, rows=downloads.in_chunks(queries, lines))
    page = Paginator(queries, PAGE_SIZE).get_page(request.GET.get("page"))
    mine_qs = selectors.my_open_queries(user=request.user, trial=trial)[:MINE_LIMIT] if acc.site_ids else []
    rows, mine = _rows(request, trial, page.object_list, mine_qs)
    return render(
        request,
        "closeout/query_list.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "mine": mine,
            "site_staff": bool(acc.site_ids),
            "manages": Perm.MANAGE_QUERIES in acc.perms,
            "tz": trial.timezone,
            "csv_url": downloads.csv_url(request),
            "sort": sort,
            "sorts": sorting.sort_headers(request, sort, columns=selectors.QUERY_SORTS),
        },
    )


@login_required
@require_POST
def checks_run_now(request: HttpRequest) -> HttpResponse:
    """Queue the data-quality checks for this trial (the nightly task, now)."""
    trial = _trial(request, Perm.MANAGE_QUERIES)
    queue_on_commit("trial.run_quality_checks", trial_id=trial.pk)
    messages.success(request, gettext("The data-quality checks are running: new findings appear here as open queries."))
    return redirect("query-list")


@login_required
def missing_data(request: HttpRequest) -> HttpResponse:
    trial = _trial(request, Perm.MANAGE_QUERIES, Perm.LOCK_DATABASE)
    return render(
        request,
        "closeout/missing_data.html",
        {"report": selectors.missing_data_report(user=request.user, trial=trial)},
    )


# --- One query ---------------------------------------------------------------------------------


def _detail(
    request: HttpRequest, trial: Trial, query: DataQuery, *, forms: dict[str, Any] | None = None, status: int = 200
) -> HttpResponse:
    acc = access.access_for(request.user, trial)
    [row] = _rows(request, trial, [query])[0]
    forms = dict(forms or {})
    can_answer = query.status == QueryStatus.OPEN and services.is_site_staff(request.user, query=query)
    manages = Perm.MANAGE_QUERIES in acc.perms
    if can_answer:
        forms.setdefault("answer", AnswerForm(action=reverse("query-answer", args=[query.pk])))
    if manages and query.status != QueryStatus.CLOSED:
        forms.setdefault("close", CloseForm(action=reverse("query-close", args=[query.pk])))
    if manages and query.status != QueryStatus.OPEN:
        forms.setdefault("reopen", ReopenForm(action=reverse("query-reopen", args=[query.pk])))
    others: list[QueryRow] = []
    if not row.hidden:
        siblings = selectors.queries_for_record(record_type=query.record_type, record_id=query.record_id).exclude(pk=query.pk)
        [others] = _rows(request, trial, siblings)
    return render(
        request,
        "closeout/query_detail.html",
        {
            "row": row,
            "query": query,
            "others": others,
            "answer_form": forms.get("answer") if can_answer else None,
            "close_form": forms.get("close") if manages and query.status != QueryStatus.CLOSED else None,
            "reopen_form": forms.get("reopen") if manages and query.status != QueryStatus.OPEN else None,
            "history_url": reverse("record-history", args=["closeout", "dataquery", query.pk]),
            "tz": trial.timezone,
        },
        status=status,
    )


@login_required
def query_detail(request: HttpRequest, pk: int) -> HttpResponse:
    trial = _trial(request, Perm.VIEW_PARTICIPANTS)
    return _detail(request, trial, _query(request, trial, pk))


def _act(request: HttpRequest, pk: int, name: str, form_class: Any, call: Any, done: str) -> HttpResponse:
    trial = _trial(request, Perm.VIEW_PARTICIPANTS)
    query = _query(request, trial, pk)
    form = form_class(request.POST, action=reverse(f"query-{name}", args=[pk]))
    status = 400
    if form.is_valid():
        try:
            call(query, form.cleaned_data)
        except Conflict as exc:  # the query moved on: nothing to correct in the form
            messages.error(request, exc.message)
            status = exc.status
        except ApplicationError as exc:
            form.show_error(exc)
            status = exc.status
        else:
            messages.success(request, done)
            return redirect("query-detail", pk=pk)
        query.refresh_from_db()
    return _detail(request, trial, query, forms={name: form}, status=status)


@login_required
@require_POST
def query_answer(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        "answer",
        AnswerForm,
        lambda q, data: services.query_answer(query=q, answer=data["answer"], by=request.user),
        "Answer sent to the data manager.",
    )


@login_required
@require_POST
def query_close(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        "close",
        CloseForm,
        lambda q, data: services.query_close(query=q, note=data["note"], by=request.user),
        "Query closed.",
    )


@login_required
@require_POST
def query_reopen(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        "reopen",
        ReopenForm,
        lambda q, data: services.query_reopen(query=q, reason=data["reason"], by=request.user),
        "Query re-opened.",
    )


@login_required
def query_new(request: HttpRequest) -> HttpResponse:
    """Raise a query on a field of a record: ``?record=app.model:id&field=...`` (e.g. from its history)."""
    trial = _trial(request, Perm.MANAGE_QUERIES)
    record = selectors.record_get(user=request.user, trial=trial, value=request.GET.get("record", ""))
    if record is None:
        raise Http404("No such record, or not one you can see.")
    record_type = record._meta.label_lower
    definition = None
    if record_type == "followup.questionnaireresponse":
        definition = record.instrument_version.definition
    site_id = int(record.site_for_access())
    form = QueryRaiseForm(
        request.POST if request.method == "POST" else None,
        initial={"field": request.GET.get("field", "")},
        fields=field_choices(record, definition),
        assignees=selectors.assignee_choices(trial=trial, site_id=site_id),
        action=f"{reverse('query-new')}?record={record_type}:{record.pk}",
    )
    status = 200
    if form.is_bound:
        status = 400
        if form.is_valid():
            try:
                query = services.query_raise(
                    trial=trial,
                    record=record,
                    field=form.cleaned_data["field"],
                    text=form.cleaned_data["text"],
                    assignee=form.cleaned_data["assignee"],
                    by=request.user,
                )
            except ApplicationError as exc:
                form.show_error(exc)
                status = exc.status
            else:
                assert query is not None
                messages.success(request, gettext("Query %(pk)s raised.") % {"pk": query.pk})
                return redirect("query-detail", pk=query.pk)
    [existing] = _rows(request, trial, selectors.queries_for_record(record_type=record_type, record_id=record.pk))
    ref = selectors.record_refs([DataQuery(record_type=record_type, record_id=record.pk)])[(record_type, record.pk)]
    return render(
        request,
        "closeout/query_form.html",
        {"form": form, "ref": ref, "existing": existing, "record_value": f"{record_type}:{record.pk}", "tz": trial.timezone},
        status=status,
    )


# --- The lock -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockRow:
    lock: DatabaseLock
    signature_valid: bool
    signature_problem: str = ""

    @classmethod
    def of(cls, lock: DatabaseLock) -> LockRow:
        verdict = lock_signature_check(lock=lock)
        return cls(lock, verdict.valid, verdict.problem)


def _lock_page(
    request: HttpRequest,
    trial: Trial,
    *,
    lock_form: LockForm | None = None,
    unlock_form: UnlockForm | None = None,
    status: int = 200,
) -> HttpResponse:
    acc = access.access_for(request.user, trial)
    current = lock_current(trial=trial)
    blockers = lock_blockers(trial=trial)
    signs = Perm.LOCK_DATABASE in acc.perms
    if signs and current is None and lock_form is None:
        lock_form = LockForm(action=reverse("lock-sign"), trial_name=trial.name, with_note=blockers.any)
    if signs and current is not None and unlock_form is None:
        unlock_form = UnlockForm(action=reverse("lock-unlock"))
    past = DatabaseLock.objects.filter(trial=trial, unlocked_at__isnull=False).order_by("-version")
    return render(
        request,
        "closeout/lock.html",
        {
            "current": LockRow.of(current) if current else None,
            "past": [LockRow.of(lock) for lock in past],
            "blockers": blockers,
            "lock_form": lock_form if signs and current is None else None,
            "unlock_form": unlock_form if signs and current is not None else None,
            "signer_name": getattr(request.user, "get_full_name", str)() or request.user.get_username(),
            "manages": Perm.MANAGE_QUERIES in acc.perms,
            "sees_events": Perm.REPORT_ADVERSE_EVENTS in acc.perms,
            "tz": "UTC",
        },
        status=status,
    )


@login_required
def lock_page(request: HttpRequest) -> HttpResponse:
    return _lock_page(request, _trial(request, Perm.LOCK_DATABASE, Perm.MANAGE_QUERIES))


@login_required
@require_POST
def lock_sign(request: HttpRequest) -> HttpResponse:
    trial = _trial(request, Perm.LOCK_DATABASE)
    form = LockForm(request.POST, action=reverse("lock-sign"), trial_name=trial.name, with_note=lock_blockers(trial=trial).any)
    status = 400
    if form.is_valid():
        try:
            lock = database_lock(
                trial=trial,
                user=request.user,
                password=form.cleaned_data["password"],
                meaning=form.cleaned_data["meaning"],
                open_items_note=form.cleaned_data.get("open_items_note", ""),
            )
        except ApplicationError as exc:
            form.show_error(exc)
            status = exc.status
        else:
            messages.success(
                request,
                gettext("The %(name)s database is locked (version %(version)s), signed by %(signer_name)s.")
                % {"name": trial.name, "version": lock.version, "signer_name": lock.signer_name},
            )
            return redirect("lock")
    return _lock_page(request, trial, lock_form=form, status=status)


@login_required
@require_POST
def lock_unlock(request: HttpRequest) -> HttpResponse:
    trial = _trial(request, Perm.LOCK_DATABASE)
    form = UnlockForm(request.POST, action=reverse("lock-unlock"))
    status = 400
    if form.is_valid():
        try:
            lock = database_unlock(
                trial=trial, user=request.user, password=form.cleaned_data["password"], reason=form.cleaned_data["reason"]
            )
        except ApplicationError as exc:
            form.show_error(exc)
            status = exc.status
        else:
            messages.success(
                request,
                gettext("The %(name)s database is unlocked; lock version %(version)s is closed.")
                % {"name": trial.name, "version": lock.version},
            )
            return redirect("lock")
    return _lock_page(request, trial, unlock_form=form, status=status)
