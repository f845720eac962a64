"""Data-query writes: raise, answer, close, re-open. Each is one audited transaction behind the
write guard (the lock freezes queries with the rest of the clinical data)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils.translation import gettext

from closeout.models import DataQuery, QueryStatus
from participants import blinding, records
from trial import access
from trial.access import Perm
from trial.audit import audit_context
from trial.errors import ApplicationError, Conflict, NotAllowed
from trial.guard import ensure_writable
from trial.models import Trial

MAX_TEXT = 5000


def record_type_of(record: Model) -> str:
    return record._meta.label_lower


def _site_id(record: Model) -> int:
    site_for_access = getattr(record, "site_for_access", None)
    site_id = site_for_access() if site_for_access and records.may_raise_query(record_type_of(record)) else None
    if site_id is None:
        raise ApplicationError(gettext("Queries are raised on clinical records (a record of a participant or a screening)."))
    return int(site_id)


def _check_field(record: Model, field: str) -> str:
    """A model field, or a part of one (``answers.pain_avg``)."""
    field = field.strip()
    if not field:
        return ""
    try:
        record._meta.get_field(field.split(".", 1)[0])
    except FieldDoesNotExist:
        raise ApplicationError(
            gettext("A %(verbose_name)s has no such field.") % {"verbose_name": record._meta.verbose_name},
            errors={"field": [gettext("Not a field of this record.")]},
        ) from None
    return field


def _check_assignee(assignee: Any, *, trial: Trial, site_id: int) -> None:
    acc = access.access_for(assignee, trial)
    if site_id not in acc.site_ids:
        raise ApplicationError(
            gettext("Assign the query to a staff member of the record's site."),
            errors={"assignee": [gettext("Not staff at this site.")]},
        )


ONLY_SITE_STAFF = "Only staff of the record's site answer this query."


def is_site_staff(user: Any, *, query: DataQuery) -> bool:
    """The assignee, or a staff member who works at the query's site."""
    if query.assignee_id is not None and query.assignee_id == user.pk:
        return True
    return query.site_id in access.access_for(user, query.trial).site_ids


def _require_manager(user: Any, *, query: DataQuery, what: str) -> None:
    if not access.has_perm(user, Perm.MANAGE_QUERIES, trial=query.trial):
        raise NotAllowed(gettext("Only a data manager may %(what)s a query.") % {"what": what})
    if not access.may_see_site(user, trial=query.trial, site_id=query.site_id):
        raise NotAllowed(gettext("This query is at a site you do not work at."))


def _locked_row(query: DataQuery) -> DataQuery:
    return DataQuery.objects.select_for_update().select_related("trial").get(pk=query.pk)


@transaction.atomic
def query_raise(
    *,
    trial: Trial,
    record: Model,
    field: str,
    text: str,
    assignee: Any = None,
    by: Any = None,
    check_code: str = "",
    finding_key: str | None = None,
) -> DataQuery | None:
    """Raise a query on one field of a clinical record: by a data manager (``by``), or by a
    data-quality check (``by=None``). A finding already raised (``finding_key``) returns None."""
    ensure_writable(trial=trial)
    site_id = _site_id(record)
    if not trial.sites.filter(pk=site_id).exists():
        raise ApplicationError(gettext("This record is not part of this trial."))
    if by is not None:
        access.require(by, Perm.MANAGE_QUERIES, trial=trial, message="Only a data manager raises data queries.")
        if not blinding.can_view_record(by, record, trial=trial):
            raise NotAllowed(gettext("You cannot see this record."))
    elif not check_code:
        raise ApplicationError(gettext("A query is raised by a data manager or by a data-quality check."))
    text = text.strip()
    errors: dict[str, list[str]] = {}
    if not text:
        errors["text"] = [gettext("Say what needs checking.")]
    elif len(text) > MAX_TEXT:
        errors["text"] = [gettext("At most %(MAX_TEXT)s characters.") % {"MAX_TEXT": MAX_TEXT}]
    if errors:
        raise ApplicationError(gettext("The query needs a question."), errors=errors)
    field = _check_field(record, field)
    if assignee is not None:
        _check_assignee(assignee, trial=trial, site_id=site_id)
    if finding_key and DataQuery.objects.filter(finding_key=finding_key).exists():
        return None
    reason = f"Data query raised by the data-quality check {check_code}" if by is None else "Data query raised"
    try:
        with transaction.atomic(), audit_context(reason=reason):  # a savepoint: a concurrent twin only undoes this insert
            return DataQuery.objects.create(
                trial=trial,
                site_id=site_id,
                record_type=record_type_of(record),
                record_id=record.pk,
                field=field,
                text=text,
                assignee=assignee,
                raised_by=by,
                check_code=check_code,
                finding_key=finding_key or None,
            )
    except IntegrityError:
        if finding_key and DataQuery.objects.filter(finding_key=finding_key).exists():
            return None
        raise


@transaction.atomic
def query_answer(*, query: DataQuery, answer: str, by: Any) -> DataQuery:
    """Site staff answer an open query (what they checked, what they corrected)."""
    query = _locked_row(query)
    ensure_writable(trial=query.trial)
    if not is_site_staff(by, query=query):
        raise NotAllowed(ONLY_SITE_STAFF)
    if query.status != QueryStatus.OPEN:
        raise Conflict(
            gettext("This query is %(lower)s: only an open query is answered.") % {"lower": query.get_status_display().lower()}
        )
    answer = answer.strip()
    if not answer:
        raise ApplicationError(
            gettext("Write an answer: what was checked or corrected."), errors={"answer": [gettext("Required.")]}
        )
    with audit_context(reason="Data query answered"):
        query.answer = answer[:MAX_TEXT]
        query.status = QueryStatus.ANSWERED
        query.save(update_fields=["answer", "status", "updated_at"])
    return query


@transaction.atomic
def query_close(*, query: DataQuery, by: Any, note: str = "") -> DataQuery:
    """A data manager closes a query: answered, or (with a note) raised in error."""
    query = _locked_row(query)
    ensure_writable(trial=query.trial)
    _require_manager(by, query=query, what="close")
    if query.status == QueryStatus.CLOSED:
        raise Conflict(gettext("This query is already closed."))
    note = note.strip()
    if query.status == QueryStatus.OPEN and not note:
        raise ApplicationError(
            gettext("This query has no answer yet: say why it is closed."),
            errors={"note": [gettext("Required to close an unanswered query.")]},
        )
    with audit_context(reason=f"Data query closed: {note}" if note else "Data query closed"):
        query.status = QueryStatus.CLOSED
        query.save(update_fields=["status", "updated_at"])
    return query


@transaction.atomic
def query_reopen(*, query: DataQuery, reason: str, by: Any) -> DataQuery:
    """A data manager re-opens an answered or closed query, saying why; it is open again."""
    query = _locked_row(query)
    ensure_writable(trial=query.trial)
    _require_manager(by, query=query, what="re-open")
    if query.status == QueryStatus.OPEN:
        raise Conflict(gettext("This query is already open."))
    reason = reason.strip()
    if not reason:
        raise ApplicationError(gettext("Say why the query is re-opened."), errors={"reason": [gettext("Required.")]})
    with audit_context(reason=f"Data query re-opened: {reason[:300]}"):
        query.status = QueryStatus.OPEN
        query.save(update_fields=["status", "updated_at"])
    return query
