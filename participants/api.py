"""Participant API: thin views over participants.services and selectors."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from participants import blinding, selectors, services
from participants.models import Participant, ParticipantStatus
from participants.serializers import (
    EnrolInput,
    ParticipantOutput,
    RandomiseOutput,
    ScreeningInput,
    ScreeningOutput,
    UnblindInput,
    WithdrawInput,
)
from trial import sorting
from trial.access import Perm
from trial.api.permissions import requires
from trial.errors import ApplicationError, NotFound
from trial.models import Site, Trial
from trial.selectors import trial_get_current


def _trial(request: Request) -> Trial:
    return getattr(request, "trial", None) or trial_get_current()


def _participant(request: Request, pk: int, *, columns: bool = True) -> Participant:
    """The participant if the caller may see them (404 otherwise). Shared by the follow-up API.
    Without ``columns``, only the row: enough to refuse with 404 before calling a service."""
    participant = selectors.participant_get(user=request.user, trial=_trial(request), pk=pk, columns=columns)
    if participant is None:
        raise NotFound("No such participant, or not one you can see.")
    return participant


def _arm_context(request: Request) -> dict[str, Any]:
    return {"arm_visible_for": blinding.unblinded_participant_ids(request.user, trial=_trial(request))}


class ScreeningListCreate(APIView):
    """Record a person assessed for eligibility; the system decides eligibility from the checklist."""

    permission_classes = [requires(Perm.SCREEN_ENROL)]

    @extend_schema(request=ScreeningInput, responses={201: ScreeningOutput})
    def post(self, request: Request) -> Response:
        data = ScreeningInput(data=request.data)
        data.is_valid(raise_exception=True)
        trial = _trial(request)
        site = Site.objects.filter(trial=trial, code=data.validated_data["site"].upper()).first()
        if site is None:
            raise ApplicationError("Unknown site.", errors={"site": ["Unknown site code."]})
        screening = services.screening_record(
            site=site,
            answers=data.validated_data["answers"],
            by=request.user,
            screened_on=data.validated_data.get("screened_on"),
            referral=data.validated_data.get("referral", ""),
        )
        return Response(ScreeningOutput(screening).data, status=status.HTTP_201_CREATED)


class ScreeningEnrol(APIView):
    """Enrol an eligible, consented person: consent, stratification answers and contact details."""

    permission_classes = [requires(Perm.SCREEN_ENROL)]

    @extend_schema(request=EnrolInput, responses={201: ParticipantOutput})
    def post(self, request: Request, pk: int) -> Response:
        trial = _trial(request)
        screening = selectors.screening_list(user=request.user, trial=trial).filter(pk=pk).first()
        if screening is None:
            raise NotFound("No such screening, or not one you can see.")
        data = EnrolInput(data=request.data)
        data.is_valid(raise_exception=True)
        consent, contact = data.validated_data["consent"], data.validated_data["contact"]
        participant = services.participant_enrol(
            screening=screening,
            consent=services.ConsentInput(
                method=consent["method"], signed_name=consent["signed_name"], version=consent["version"] or None
            ),
            strata=data.validated_data["strata"],
            contact=services.ContactInput(**contact),
            by=request.user,
        )
        participant = _participant(request, participant.pk)
        return Response(ParticipantOutput(participant, context=_arm_context(request)).data, status=status.HTTP_201_CREATED)


@extend_schema(
    parameters=[
        OpenApiParameter("site", str, description="A site code."),
        OpenApiParameter("status", str, enum=ParticipantStatus.values),
        OpenApiParameter("q", str, description="Part of a study id."),
        OpenApiParameter(
            "search",
            str,
            description="A study id or its start; for roles that see contact details also a name, "
            "an e-mail address or a phone number.",
        ),
        OpenApiParameter(
            "sort",
            str,
            description="A column to sort by, descending with a leading '-': study_id, site, status, randomised "
            "(and arm, for roles that see allocations).",
        ),
    ]
)
class ParticipantList(ListAPIView):
    """Participants at your sites. ``arm`` appears only for roles that may see allocations."""

    permission_classes = [requires(Perm.VIEW_PARTICIPANTS)]
    serializer_class = ParticipantOutput

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request, no trial
            return Participant.objects.none()
        params = self.request.query_params
        filters = {k: params.get(k, "") for k in ("site", "status", "q", "search")}
        if "status" in params and filters["status"] not in ParticipantStatus.values:
            # As the schema says: one of the statuses, or no status parameter at all.
            raise ValidationError({"status": [f"Choose one of: {', '.join(ParticipantStatus.values)}."]})
        if len(filters["search"]) > selectors.SEARCH_MAX:
            raise ValidationError({"search": [f"At most {selectors.SEARCH_MAX} characters."]})
        trial = _trial(self.request)
        columns = selectors.participant_sorts(user=self.request.user, trial=trial)
        sort = sorting.sort_parse(params.get("sort"), columns=columns)
        if sort.refused:
            raise ValidationError({"sort": [f"Choose one of: {', '.join(columns)}, each with or without a leading '-'."]})
        participants = selectors.participant_list(user=self.request.user, trial=trial, filters=filters, columns=False)
        return sorting.sort_apply(participants, sort, columns=columns)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The page's ids first, then the columns of those rows only (``selectors.participant_page``)."""
        rows = self.get_queryset()
        ids = self.paginate_queryset(rows.values_list("pk", flat=True))
        if ids is None:  # not paginated
            return Response(self.get_serializer(selectors.participant_columns(rows, trial=_trial(request)), many=True).data)
        page = selectors.participant_page(trial=_trial(request), ids=ids)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), **_arm_context(self.request)}


class ParticipantDetail(APIView):
    permission_classes = [requires(Perm.VIEW_PARTICIPANTS)]

    @extend_schema(responses=ParticipantOutput)
    def get(self, request: Request, pk: int) -> Response:
        return Response(ParticipantOutput(_participant(request, pk), context=_arm_context(request)).data)


class ParticipantRandomise(APIView):
    """Allocate an arm, once. Any later or concurrent call: 409 with the unchanged ``randomised_at``."""

    permission_classes = [requires(Perm.RANDOMISE)]

    @extend_schema(request=None, responses={201: RandomiseOutput})
    def post(self, request: Request, pk: int) -> Response:
        participant = _participant(request, pk, columns=False)  # the service reads (and locks) the rest
        allocation = services.participant_randomise(participant_id=participant.pk, by=request.user)
        body: dict[str, Any] = {"study_id": participant.study_id, "randomised_at": allocation.randomised_at}
        if blinding.can_see_arm(request.user, trial=_trial(request), participant_id=participant.pk):
            body["arm"] = allocation.arm.code
        return Response(RandomiseOutput(body).data, status=status.HTTP_201_CREATED)


class ParticipantWithdraw(APIView):
    permission_classes = [requires(Perm.WITHDRAW)]

    @extend_schema(request=WithdrawInput, responses={201: ParticipantOutput})
    def post(self, request: Request, pk: int) -> Response:
        participant = _participant(request, pk)
        data = WithdrawInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.participant_withdraw(participant=participant, by=request.user, **data.validated_data)
        return Response(
            ParticipantOutput(_participant(request, pk), context=_arm_context(request)).data, status=status.HTTP_201_CREATED
        )


class ParticipantUnblind(APIView):
    """Emergency unblinding of one participant for the caller, with a reason and the caller's password."""

    permission_classes = [requires(Perm.EMERGENCY_UNBLIND)]

    @extend_schema(request=UnblindInput, responses={201: ParticipantOutput})
    def post(self, request: Request, pk: int) -> Response:
        participant = _participant(request, pk)
        data = UnblindInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.participant_unblind(participant=participant, user=request.user, **data.validated_data)
        return Response(
            ParticipantOutput(_participant(request, pk), context=_arm_context(request)).data, status=status.HTTP_201_CREATED
        )
