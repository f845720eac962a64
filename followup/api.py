"""Follow-up API: thin views over followup.services and participants.selectors."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from followup import instruments, selectors, services
from followup.models import Outcome, OutcomeCode, QuestionnaireResponse
from messaging.models import Message
from participants import links
from participants.api import _participant, _trial
from trial import access
from trial.access import Perm
from trial.api.pagination import CountedPagination
from trial.api.permissions import requires
from trial.errors import NotFound


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
        token = links.access_link_issue(participant=participant, by=request.user)
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
        rows = list(
            QuestionnaireResponse.objects.filter(occurrence__participant=participant)
            .select_related("occurrence", "instrument_version")
            .order_by("occurrence__due_date", "occurrence__instrument")
        )
        data = ResponseOutput(rows, many=True).data
        if not access.has_perm(request.user, Perm.VIEW_CONTACTS, trial=_trial(request)):
            # A date of birth identifies the participant: "hidden" to roles that do not see contact details.
            for row, response in zip(data, rows, strict=True):
                row["answers"] = instruments.answers_redact(
                    definition=response.instrument_version.definition, answers=response.answers
                )
        return Response(data)


class MessageOutput(serializers.Serializer):
    id = serializers.IntegerField()
    participant = serializers.IntegerField(source="participant_id")
    occurrence = serializers.IntegerField(source="occurrence_id", allow_null=True)
    instrument = serializers.CharField(source="occurrence.instrument", allow_null=True, default=None)
    step = serializers.CharField()
    channel = serializers.CharField()
    status = serializers.CharField()
    planned_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    attempts = serializers.IntegerField()
    template_version = serializers.IntegerField(source="template.version", allow_null=True, default=None)
    subject = serializers.CharField()
    cancelled_reason = serializers.CharField()
    last_error = serializers.CharField()


class MessageList(ListAPIView):
    """Every message planned or sent to participants at your sites; ``?participant={id}`` for one."""

    permission_classes = [requires(Perm.VIEW_PARTICIPANTS)]
    serializer_class = MessageOutput
    pagination_class = CountedPagination

    @extend_schema(parameters=[OpenApiParameter("participant", int, description="A participant's id.")])
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Message.objects.none()
        return selectors.message_list(user=self.request.user, trial=_trial(self.request), participant_id=self._participant_id())

    def row_count(self) -> int:
        return selectors.message_count(user=self.request.user, trial=_trial(self.request), participant_id=self._participant_id())

    def _participant_id(self) -> int | None:
        raw = self.request.query_params.get("participant")
        if not raw:
            return None
        if not raw.isdigit() or len(raw) > 18:
            raise ValidationError({"participant": ["A participant id is a whole number."]})
        return int(raw)


# --- Outcomes -------------------------------------------------------------------------------


class DerivedOutcomeOutput(serializers.Serializer):
    event = serializers.BooleanField(source="derived_event")
    event_date = serializers.DateField(source="derived_event_date", allow_null=True)
    censored_at = serializers.DateField(source="derived_censored_at", allow_null=True)
    censor_reason = serializers.CharField(source="derived_censor_reason")
    days = serializers.IntegerField(source="derived_days", allow_null=True)


class OutcomeOutput(serializers.Serializer):
    """The final value (adjudicated wins; censoring only without an event) and the derived one."""

    code = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    event = serializers.BooleanField(source="final.event")
    event_date = serializers.DateField(source="final.event_date", allow_null=True)
    censored_at = serializers.DateField(source="final.censored_at", allow_null=True)
    censor_reason = serializers.CharField(source="final.censor_reason")
    days = serializers.IntegerField(source="final.days", allow_null=True)
    adjudicated = serializers.BooleanField()
    adjudication_reason = serializers.CharField()
    adjudicated_at = serializers.DateTimeField(allow_null=True)
    derived = serializers.SerializerMethodField()

    @extend_schema_field(DerivedOutcomeOutput)
    def get_derived(self, view: Any) -> dict[str, Any]:
        return dict(DerivedOutcomeOutput(view).data)


class OutcomeSummaryOutput(serializers.Serializer):
    recurrences = serializers.IntegerField()
    care_seeking_recurrences = serializers.IntegerField()
    work_days_missed = serializers.IntegerField()
    work_days_by_month = serializers.DictField(child=serializers.IntegerField())
    monthly_completed = serializers.IntegerField()
    monthly_missed = serializers.IntegerField()


class OutcomesOutput(serializers.Serializer):
    activity_limiting = OutcomeOutput(allow_null=True)
    any = OutcomeOutput(allow_null=True)
    care_seeking = OutcomeOutput(allow_null=True)
    summary = OutcomeSummaryOutput(allow_null=True)


def _outcomes_body(participant: Any) -> dict[str, Any]:
    panel = selectors.outcome_panel(participant=participant)
    body: dict[str, Any] = dict.fromkeys(OutcomeCode.values)
    body.update({view.code: view for view in panel["outcomes"]})
    body["summary"] = panel["outcome_summary"]
    return body


class ParticipantOutcomes(APIView):
    """The participant's recurrence outcomes (null before randomisation) and follow-up summary."""

    permission_classes = [requires(Perm.VIEW_PARTICIPANTS)]

    @extend_schema(responses=OutcomesOutput)
    def get(self, request: Request, pk: int) -> Response:
        return Response(OutcomesOutput(_outcomes_body(_participant(request, pk))).data)


class AdjudicateInput(serializers.Serializer):
    event = serializers.BooleanField()
    event_date = serializers.DateField(required=False, allow_null=True, default=None, input_formats=["iso-8601"])
    reason = serializers.CharField(max_length=300)


class OutcomeAdjudicate(APIView):
    """A data manager overrides an outcome's event or date, with a reason; the derived value is kept."""

    permission_classes = [requires(Perm.MANAGE_QUERIES)]

    @extend_schema(request=AdjudicateInput, responses={200: OutcomeOutput})
    def post(self, request: Request, pk: int, code: str) -> Response:
        participant = _participant(request, pk)
        outcome = Outcome.objects.filter(participant=participant, code=code).first()
        if outcome is None:
            raise NotFound("No such outcome for this participant.")
        data = AdjudicateInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.outcome_adjudicate(outcome=outcome, by=request.user, **data.validated_data)
        return Response(OutcomeOutput(_outcomes_body(participant)[code]).data)
