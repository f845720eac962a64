"""Intervention API: sessions, physiotherapists' free slots and the walking diary.

Sessions and the diary exist only for the intervention arm, so they reveal the arm: a caller who
may not see a participant's arm gets the same 404 as for a participant with no sessions at all.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from intervention import selectors, services
from intervention.models import Session, SessionRecord, SessionStatus, Walk
from intervention.serializers import (
    BookInput,
    CancelInput,
    DiaryOutput,
    RecordInput,
    RecordOutput,
    SessionOutput,
    SlotOutput,
    SlotQuery,
    WalkInput,
    WalkOutput,
)
from participants import blinding
from participants.api import _participant, _trial
from participants.models import Participant
from trial import access
from trial.access import Perm
from trial.api.permissions import requires
from trial.errors import NotFound
from trial.models import Site

NO_SESSION = "No such session, or not one you can see."
NO_DIARY = "No walking diary for this participant, or not one you can see."


def _visible_sessions(request: Request) -> QuerySet[Session]:
    """Sessions of participants at the caller's sites whose arm the caller may see."""
    trial = _trial(request)
    qs = Session.objects.filter(participant__site__in=access.visible_sites(request.user, trial=trial))
    unblinded = blinding.unblinded_participant_ids(request.user, trial=trial)
    if unblinded is not None:
        qs = qs.filter(participant_id__in=unblinded)
    return qs.select_related("physiotherapist").order_by("participant__study_id", "number")


def _session(request: Request, pk: int) -> Session:
    session = _visible_sessions(request).filter(pk=pk).first()
    if session is None:
        raise NotFound(NO_SESSION)
    return session


def _diary_participant(request: Request, pk: int) -> Participant:
    """The participant if the caller may see them and their arm, and they are in the intervention arm."""
    try:
        participant = _participant(request, pk)
    except NotFound as exc:
        raise NotFound(NO_DIARY) from exc
    if not blinding.can_see_arm(request.user, trial=_trial(request), participant_id=participant.pk):
        raise NotFound(NO_DIARY)
    try:
        services.require_intervention_arm(participant=participant)
    except services.NotInInterventionArm as exc:
        raise NotFound(NO_DIARY) from exc
    return participant


class SessionList(ListAPIView):
    """Planned and booked sessions at your sites; ``?participant={id}`` for one participant."""

    permission_classes = [requires(Perm.VIEW_PARTICIPANTS)]
    serializer_class = SessionOutput

    @extend_schema(parameters=[OpenApiParameter("participant", int, description="A participant's id.")])
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Session.objects.none()
        qs = _visible_sessions(self.request).filter(status__in=[SessionStatus.PLANNED, SessionStatus.BOOKED])
        raw = self.request.query_params.get("participant")
        if raw is not None:
            if not raw.isdigit() or len(raw) > 18:
                raise ValidationError({"participant": ["A participant id is a whole number."]})
            qs = qs.filter(participant_id=int(raw))
        return qs


class PhysiotherapistSlots(APIView):
    """Free slots of a physiotherapist at your sites, between two dates (at most 31 days)."""

    permission_classes = [requires(Perm.BOOK_SESSIONS)]

    @extend_schema(parameters=[SlotQuery], responses=SlotOutput(many=True))
    def get(self, request: Request, pk: int) -> Response:
        trial = _trial(request)
        sites = access.visible_sites(request.user, trial=trial)
        physio = selectors.physiotherapists(trial=trial, site_ids=sites).filter(pk=pk).first()
        if physio is None:
            raise NotFound("No such physiotherapist at your sites.")
        query = SlotQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        slots = selectors.physiotherapist_slots(physiotherapist=physio, trial=trial, **query.validated_data)
        codes = dict(Site.objects.filter(trial=trial).values_list("pk", "code"))
        rows = [
            {"starts_at": s.starts_at, "ends_at": s.ends_at, "modes": sorted(s.modes), "site": codes.get(s.site_id, "")}
            for s in slots
        ]
        return Response(SlotOutput(rows, many=True).data)


class SessionBook(APIView):
    """Book (or move) a session into a free slot. 409 with ``code: slot_taken`` when it was taken meanwhile."""

    permission_classes = [requires(Perm.BOOK_SESSIONS)]

    @extend_schema(request=BookInput, responses={200: SessionOutput})
    def post(self, request: Request, pk: int) -> Response:
        session = _session(request, pk)
        data = BookInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.session_book(session_id=session.pk, by=request.user, **data.validated_data)
        return Response(SessionOutput(_session(request, pk)).data)


class SessionCancel(APIView):
    """Cancel a booking, with a reason: the session waits to be booked again."""

    permission_classes = [requires(Perm.BOOK_SESSIONS)]

    @extend_schema(request=CancelInput, responses={200: SessionOutput})
    def post(self, request: Request, pk: int) -> Response:
        session = _session(request, pk)
        data = CancelInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.session_cancel_booking(session_id=session.pk, reason=data.validated_data["reason"], by=request.user)
        return Response(SessionOutput(_session(request, pk)).data)


class SessionRecordCreate(APIView):
    """Record what happened at a session (and the walking prescription); a correction needs a reason."""

    permission_classes = [requires(Perm.DELIVER_SESSIONS)]

    @extend_schema(request=RecordInput, responses={200: RecordOutput})
    def post(self, request: Request, pk: int) -> Response:
        session = _session(request, pk)
        data = RecordInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        prescription = values.pop("prescription")
        record = services.session_record(
            session_id=session.pk,
            by=request.user,
            prescription=services.PrescriptionInput(**prescription) if prescription else None,
            **values,
        )
        record = SessionRecord.objects.select_related("session__prescription").get(pk=record.pk)
        return Response(RecordOutput(record).data)


class _DiaryPermission(BasePermission):
    message = "Your role may not do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        perm = Perm.DELIVER_SESSIONS if request.method == "POST" else Perm.VIEW_PARTICIPANTS
        self.message = f"Your role may not do this ({perm.value})."
        return access.has_perm(request.user, perm, trial=getattr(request, "trial", None))


class ParticipantDiary(APIView):
    """The walking diary: walks, weekly adherence against the prescription; staff add walks (POST)."""

    permission_classes = [_DiaryPermission]

    @extend_schema(responses=DiaryOutput)
    def get(self, request: Request, pk: int) -> Response:
        participant = _diary_participant(request, pk)
        walks = Walk.objects.filter(participant=participant).order_by("-walked_on", "-created_at")
        body = {"walks": walks, "adherence": selectors.adherence(participant=participant)}
        return Response(DiaryOutput(body).data)

    @extend_schema(request=WalkInput, responses={201: WalkOutput})
    def post(self, request: Request, pk: int) -> Response:
        participant = _diary_participant(request, pk)
        data = WalkInput(data=request.data)
        data.is_valid(raise_exception=True)
        walk = services.walk_log(participant=participant, by=request.user, **data.validated_data)
        return Response(WalkOutput(walk).data, status=status.HTTP_201_CREATED)
