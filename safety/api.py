"""Adverse-event API: thin views over safety.services and selectors. No response
carries an arm (see the serializers for reports made at education sessions)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from participants import blinding
from participants.api import _trial
from participants.selectors import participant_get
from safety import selectors, services
from safety.models import AdverseEvent, AEFollowUp
from safety.serializers import (
    AECreateInput,
    AEDetailOutput,
    AEFields,
    AEFilterQuery,
    AEOutput,
    AEUpdateInput,
    FollowUpInput,
    FollowUpOutput,
    ReasonInput,
)
from trial.access import Perm
from trial.api.permissions import requires
from trial.errors import ApplicationError, NotFound

NO_EVENT = "No such adverse event, or not one you can see."


def _context(request: Request) -> dict[str, Any]:
    trial = _trial(request)
    return {
        "policy": services.safety_policy(trial=trial),
        "arm_visible_for": blinding.unblinded_participant_ids(request.user, trial=trial),
    }


def _event(request: Request, pk: int) -> AdverseEvent:
    event = (
        selectors.adverse_event_list(user=request.user, trial=_trial(request))
        .filter(pk=pk)
        .prefetch_related(Prefetch("followups", queryset=AEFollowUp.objects.order_by("recorded_at", "pk")))
        .first()
    )
    if event is None:
        raise NotFound(NO_EVENT)
    return event


def _detail(request: Request, pk: int, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(AEDetailOutput(_event(request, pk), context=_context(request)).data, status=status_code)


def _valid(*serializers: Any) -> None:
    """Validate every serializer and report all their errors at once."""
    errors: dict[str, Any] = {}
    for serializer in serializers:
        if not serializer.is_valid():
            errors.update(serializer.errors)
    if errors:
        raise ValidationError(errors)


FILTER_PARAMETERS = [
    OpenApiParameter("participant", str, description="A participant's id or study id."),
    OpenApiParameter("site", str, description="A site code."),
    OpenApiParameter("serious", bool),
    OpenApiParameter("category", str, description="A category code of the trial's safety policy."),
    OpenApiParameter("status", str, enum=["pending", "open", "resolved", "dismissed"]),
]


class AdverseEventListCreate(ListAPIView):
    """Adverse events at your sites, newest first (GET, filtered); record one (POST)."""

    permission_classes = [requires(Perm.REPORT_ADVERSE_EVENTS)]
    serializer_class = AEOutput

    @extend_schema(parameters=FILTER_PARAMETERS)
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[AdverseEvent]:
        if getattr(self, "swagger_fake_view", False):
            return AdverseEvent.objects.none()
        query = AEFilterQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.adverse_event_list(user=self.request.user, trial=_trial(self.request), filters=query.filters())

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context.update(_context(self.request))
        return context

    @extend_schema(request=AECreateInput, responses={201: AEDetailOutput})
    def post(self, request: Request) -> Response:
        data = AECreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        trial = _trial(request)
        participant = participant_get(user=request.user, trial=trial, pk=values.pop("participant"))
        if participant is None:
            raise ValidationError({"participant": ["No such participant, or not one you can see."]})
        session_id = values.pop("session")
        # Sessions reveal the arm: only someone who may see it may name one, and to anyone else
        # every session is "no such session".
        if session_id is not None and not blinding.can_see_arm(request.user, trial=trial, participant_id=participant.pk):
            raise ValidationError({"session": ["No such session of this participant."]})
        try:
            event = services.adverse_event_record(
                participant=participant, data=services.AEInput(**values), by=request.user, session_id=session_id
            )
        except ApplicationError as exc:
            if "session" in (exc.errors or {}):
                raise ValidationError({"session": ["No such session of this participant."]}) from exc
            raise
        return _detail(request, event.pk, status.HTTP_201_CREATED)


class AdverseEventDetail(APIView):
    """One adverse event with its follow-ups; PATCH changes it (with a reason) or completes a pending report."""

    permission_classes = [requires(Perm.REPORT_ADVERSE_EVENTS)]

    @extend_schema(responses=AEDetailOutput)
    def get(self, request: Request, pk: int) -> Response:
        return _detail(request, pk)

    @extend_schema(request=AEUpdateInput, responses={200: AEDetailOutput})
    def patch(self, request: Request, pk: int) -> Response:
        event = _event(request, pk)
        changes, reason = AEFields(data=request.data, partial=True), ReasonInput(data=request.data)
        _valid(changes, reason)
        current = {f.name: getattr(event, f.name) for f in fields(services.AEInput)}
        current["serious_criteria"] = list(current["serious_criteria"] or [])
        services.adverse_event_update(
            event=event,
            data=services.AEInput(**{**current, **changes.validated_data}),
            reason=reason.validated_data["reason"],
            by=request.user,
        )
        return _detail(request, pk)


class AdverseEventDismiss(APIView):
    """Dismiss a pending questionnaire report that is not an adverse event, with a reason."""

    permission_classes = [requires(Perm.REPORT_ADVERSE_EVENTS)]

    @extend_schema(request=ReasonInput, responses={200: AEDetailOutput})
    def post(self, request: Request, pk: int) -> Response:
        event = _event(request, pk)
        data = ReasonInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.adverse_event_dismiss(event=event, reason=data.validated_data["reason"], by=request.user)
        return _detail(request, pk)


class AdverseEventFollowUpCreate(APIView):
    """A follow-up report; an outcome of recovered (with its date), with sequelae or fatal resolves the event."""

    permission_classes = [requires(Perm.REPORT_ADVERSE_EVENTS)]

    @extend_schema(request=FollowUpInput, responses={201: FollowUpOutput})
    def post(self, request: Request, pk: int) -> Response:
        event = _event(request, pk)
        data = FollowUpInput(data=request.data)
        data.is_valid(raise_exception=True)
        followup = services.adverse_event_followup_add(event=event, by=request.user, **data.validated_data)
        return Response(FollowUpOutput(followup).data, status=status.HTTP_201_CREATED)
