"""Follow-up API: thin views over followup.services and participants.selectors."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from followup import services
from followup.models import QuestionnaireResponse
from participants.api import _participant
from trial.access import Perm
from trial.api.permissions import requires


class OccurrenceOutput(serializers.Serializer):
    id = serializers.IntegerField()
    instrument = serializers.CharField()
    month = serializers.IntegerField()
    opens_at = serializers.DateTimeField()
    due_date = serializers.DateField()
    closes_at = serializers.DateTimeField()
    status = serializers.CharField()


class ParticipantSchedule(APIView):
    """The participant's questionnaires: window (opens, due, closes) and status, in due order."""

    permission_classes = [requires(Perm.VIEW_PARTICIPANTS)]

    @extend_schema(responses=OccurrenceOutput(many=True))
    def get(self, request: Request, pk: int) -> Response:
        participant = _participant(request, pk)
        return Response(OccurrenceOutput(services.schedule_for(participant=participant), many=True).data)


class AccessLinkOutput(serializers.Serializer):
    url = serializers.URLField()


class ParticipantAccessLink(APIView):
    """Issue the participant a new personal link; the previous one stops working at once."""

    permission_classes = [requires(Perm.ENTER_FOLLOWUP)]

    @extend_schema(request=None, responses={201: AccessLinkOutput})
    def post(self, request: Request, pk: int) -> Response:
        participant = _participant(request, pk)
        token = services.access_link_issue(participant=participant, by=request.user)
        url = request.build_absolute_uri(reverse("participant-home", args=[token]))
        return Response({"url": url}, status=201)


class ResponseOutput(serializers.Serializer):
    occurrence = serializers.IntegerField(source="occurrence_id")
    instrument = serializers.CharField(source="occurrence.instrument")
    month = serializers.IntegerField(source="occurrence.month")
    version = serializers.CharField(source="instrument_version.version")
    submitted_at = serializers.DateTimeField()
    source = serializers.CharField()  # type: ignore[assignment]
    answers = serializers.DictField()
    scores = serializers.DictField()


class ParticipantResponses(APIView):
    """Completed questionnaires with their answers and computed scores."""

    permission_classes = [requires(Perm.VIEW_PARTICIPANTS)]

    @extend_schema(responses=ResponseOutput(many=True))
    def get(self, request: Request, pk: int) -> Response:
        participant = _participant(request, pk)
        rows = (
            QuestionnaireResponse.objects.filter(occurrence__participant=participant)
            .select_related("occurrence", "instrument_version")
            .order_by("occurrence__due_date", "occurrence__instrument")
        )
        return Response(ResponseOutput(rows, many=True).data)
