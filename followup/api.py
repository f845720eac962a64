"""Follow-up API: thin views over followup.services and participants.selectors."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from followup import services
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
