"""Data-query and database-lock API: thin views over closeout.queries and closeout.datalock services."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from closeout.datalock.services import Blockers, database_lock, database_unlock, lock_blockers, lock_current
from closeout.models import DatabaseLock, DataQuery
from closeout.queries import selectors, services
from closeout.queries.serializers import (
    AnswerInput,
    BlockersOutput,
    CloseInput,
    LockInput,
    LockOutput,
    LockStateOutput,
    QueryCreateInput,
    QueryFilterQuery,
    QueryOutput,
    ReopenInput,
    UnlockInput,
)
from trial import access
from trial.access import Perm
from trial.api.pagination import Pagination
from trial.api.permissions import requires
from trial.errors import Conflict, NotAllowed, NotFound
from trial.models import Trial
from trial.selectors import trial_get_current

NO_QUERY = "No such query, or not one you can see."


def _trial(request: Request) -> Trial:
    return getattr(request, "trial", None) or trial_get_current()


def _any_of(*perms: Perm) -> type[BasePermission]:
    class _AnyOf(BasePermission):
        message = f"Your role may not do this ({' or '.join(p.value for p in perms)})."

        def has_permission(self, request: Request, view: Any) -> bool:
            held = access.access_for(request.user, getattr(request, "trial", None)).perms
            return any(p in held for p in perms)

    return _AnyOf


def _context(request: Request, queries: list[DataQuery]) -> dict[str, Any]:
    hide_arm = selectors.hides_arm(request.user, trial=_trial(request))
    visible = [q for q in queries if not selectors.query_hidden(q, hide_arm=hide_arm)]
    return {"hide_arm": hide_arm, "arm_revealing": selectors.ARM_REVEALING_RECORDS, "refs": selectors.record_refs(visible)}


def _output(request: Request, query: DataQuery, code: int = status.HTTP_200_OK) -> Response:
    query = selectors.query_get(user=request.user, trial=_trial(request), pk=query.pk) or query
    return Response(QueryOutput(query, context=_context(request, [query])).data, status=code)


def _query(request: Request, pk: int) -> DataQuery:
    query = selectors.query_get(user=request.user, trial=_trial(request), pk=pk)
    if query is None:
        raise NotFound(NO_QUERY)
    return query


FILTER_PARAMETERS = [
    OpenApiParameter("status", str, enum=["open", "answered", "closed"]),
    OpenApiParameter("site", str, description="A site code."),
    OpenApiParameter("assignee", str, description="A username."),
    OpenApiParameter("record", str, description="app.model:id"),
    OpenApiParameter("check", str, description="The code of the data-quality check that raised it."),
    OpenApiParameter("mine", bool, description="Only the open queries for the caller to answer."),
]


class QueryListCreate(APIView):
    """Data queries at your sites, newest first (GET, filtered, paginated); raise one (POST, data managers)."""

    def get_permissions(self) -> list[BasePermission]:
        # Raising is refused before the body is read: a role that may not raise gets a 403, not a 400.
        return [requires(Perm.MANAGE_QUERIES if self.request.method == "POST" else Perm.VIEW_PARTICIPANTS)()]

    pagination_class = Pagination  # the schema documents the page (count, next, previous, results)

    @extend_schema(parameters=FILTER_PARAMETERS, responses=QueryOutput(many=True))
    def get(self, request: Request) -> Response:
        query = QueryFilterQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters = {k: v for k, v in query.validated_data.items() if v}
        queryset = selectors.query_list(user=request.user, trial=_trial(request), filters=filters)
        paginator = self.pagination_class()
        page = list(paginator.paginate_queryset(queryset, request, view=self) or [])
        return paginator.get_paginated_response(QueryOutput(page, many=True, context=_context(request, page)).data)

    @extend_schema(request=QueryCreateInput, responses={201: QueryOutput})
    def post(self, request: Request) -> Response:
        data = QueryCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        trial = _trial(request)
        values = data.validated_data
        record = selectors.record_get(user=request.user, trial=trial, value=values["record"])
        if record is None:
            raise ValidationError({"record": ["No such record, or not one you can see."]})
        assignee = None
        if username := values.get("assignee"):
            assignee = get_user_model().objects.filter(username=username, is_active=True).first()
            if assignee is None:
                raise ValidationError({"assignee": ["No such staff member."]})
        created = services.query_raise(
            trial=trial, record=record, field=values["field"], text=values["text"], assignee=assignee, by=request.user
        )
        assert created is not None  # no finding key: a query is always raised
        return _output(request, created, status.HTTP_201_CREATED)


class QueryDetail(APIView):
    permission_classes = [requires(Perm.VIEW_PARTICIPANTS)]

    @extend_schema(responses=QueryOutput)
    def get(self, request: Request, pk: int) -> Response:
        return _output(request, _query(request, pk))


class QueryAnswer(APIView):
    """Site staff answer an open query."""

    permission_classes = [requires(Perm.VIEW_PARTICIPANTS)]

    @extend_schema(request=AnswerInput, responses=QueryOutput)
    def post(self, request: Request, pk: int) -> Response:
        query = _query(request, pk)
        if not services.is_site_staff(request.user, query=query):  # refused before the body is read
            raise NotAllowed(services.ONLY_SITE_STAFF)
        data = AnswerInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _output(request, services.query_answer(query=query, answer=data.validated_data["answer"], by=request.user))


class QueryClose(APIView):
    """A data manager closes a query (a note is required when it has no answer)."""

    permission_classes = [requires(Perm.MANAGE_QUERIES)]

    @extend_schema(request=CloseInput, responses=QueryOutput)
    def post(self, request: Request, pk: int) -> Response:
        query = _query(request, pk)
        data = CloseInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _output(request, services.query_close(query=query, note=data.validated_data["note"], by=request.user))


class QueryReopen(APIView):
    """A data manager re-opens an answered or closed query, with a reason."""

    permission_classes = [requires(Perm.MANAGE_QUERIES)]

    @extend_schema(request=ReopenInput, responses=QueryOutput)
    def post(self, request: Request, pk: int) -> Response:
        query = _query(request, pk)
        data = ReopenInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _output(request, services.query_reopen(query=query, reason=data.validated_data["reason"], by=request.user))


# --- The lock -----------------------------------------------------------------------------------


def _blockers(blockers: Blockers) -> dict[str, Any]:
    return dict(BlockersOutput(blockers).data)


def _lock(lock: DatabaseLock, blockers: Blockers) -> dict[str, Any]:
    return {**LockOutput(lock).data, "blockers": _blockers(blockers)}


class LockView(APIView):
    """GET: the current lock (or ``{"locked": false}``) and what stands in the way of one.
    POST: an investigator signs the lock with their password (403 if wrong; 409 with the
    blockers while items are open, unless ``open_items_note`` says why they stay open)."""

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method == "POST":
            return [requires(Perm.LOCK_DATABASE)()]
        return [_any_of(Perm.LOCK_DATABASE, Perm.MANAGE_QUERIES)()]

    @extend_schema(responses=LockStateOutput)
    def get(self, request: Request) -> Response:
        trial = _trial(request)
        current, blockers = lock_current(trial=trial), lock_blockers(trial=trial)
        if current is None:
            return Response({"locked": False, "blockers": _blockers(blockers)})
        return Response(_lock(current, blockers))

    @extend_schema(request=LockInput, responses={201: LockStateOutput})
    def post(self, request: Request) -> Response:
        data = LockInput(data=request.data)
        data.is_valid(raise_exception=True)
        trial = _trial(request)
        try:
            lock = database_lock(trial=trial, user=request.user, **data.validated_data)
        except Conflict as exc:
            raise Conflict(exc.message, errors=exc.errors, extra={"blockers": _blockers(lock_blockers(trial=trial))}) from exc
        return Response(_lock(lock, lock_blockers(trial=trial)), status=status.HTTP_201_CREATED)


class UnlockView(APIView):
    """An investigator unlocks with a reason and their password; the lock record keeps both signatures."""

    permission_classes = [requires(Perm.LOCK_DATABASE)]

    @extend_schema(request=UnlockInput, responses=LockStateOutput)
    def post(self, request: Request) -> Response:
        data = UnlockInput(data=request.data)
        data.is_valid(raise_exception=True)
        trial = _trial(request)
        lock = database_unlock(trial=trial, user=request.user, **data.validated_data)
        return Response(_lock(lock, lock_blockers(trial=trial)))
