"""Adverse-event API shapes. They parse and present; safety.services decides.

No output carries an arm. A report made at an education session reveals the intervention arm, so
for a caller who may not see the participant's arm it reads as entered by staff, without the session
or who reported it (``participants.blinding.as_seen``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from participants import blinding
from safety.models import AEStatus
from safety.selectors import sae_deadlines


class AEFields(serializers.Serializer):
    """The fields of ``AEInput``: only their types here; the service checks them all together."""

    onset_date = serializers.DateField(required=False, allow_null=True, default=None, input_formats=["iso-8601"])
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    category = serializers.CharField(required=False, allow_blank=True, default="", max_length=40)
    severity = serializers.CharField(required=False, allow_blank=True, default="", max_length=10)
    serious = serializers.BooleanField(required=False, default=False)
    serious_criteria = serializers.ListField(
        child=serializers.CharField(max_length=40), required=False, default=list, max_length=10
    )
    relatedness = serializers.CharField(required=False, allow_blank=True, default="", max_length=12)
    expected = serializers.BooleanField(required=False, allow_null=True, default=None)
    action_taken = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)
    outcome = serializers.CharField(required=False, allow_blank=True, default="", max_length=16)
    resolution_date = serializers.DateField(required=False, allow_null=True, default=None, input_formats=["iso-8601"])


class AECreateInput(AEFields):
    participant = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    session = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1, max_value=2**63 - 1)


class AEUpdateInput(AEFields):
    """Any of the event's fields (the others keep their values) and, always, why it changes."""

    reason = serializers.CharField(max_length=300)


class ReasonInput(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


class FollowUpInput(serializers.Serializer):
    note = serializers.CharField(max_length=5000)
    outcome = serializers.CharField(required=False, allow_blank=True, default="", max_length=16)
    resolution_date = serializers.DateField(required=False, allow_null=True, default=None, input_formats=["iso-8601"])


class AEFilterQuery(serializers.Serializer):
    participant = serializers.CharField(required=False, allow_blank=True, max_length=30)
    site = serializers.CharField(required=False, allow_blank=True, max_length=20)
    serious = serializers.ChoiceField(required=False, allow_blank=True, choices=["true", "false", "yes", "no", "1", "0"])
    category = serializers.CharField(required=False, allow_blank=True, max_length=40)
    # The schema lists the statuses: a blank one is refused like any other value not listed.
    status = serializers.ChoiceField(required=False, choices=AEStatus.choices)

    def validate_participant(self, value: str) -> str:
        if value.isdigit() and len(value) > 18:
            raise serializers.ValidationError("A participant id or a study id.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # DRF reads a blank query parameter of an optional field as absent; the schema lists the
        # statuses, so a blank status is refused like any other value not listed.
        if "status" in self.initial_data and self.initial_data.get("status") not in AEStatus.values:
            raise serializers.ValidationError({"status": [f"Choose one of: {', '.join(AEStatus.values)}."]})
        return attrs

    def filters(self) -> dict[str, str]:
        return {key: value for key, value in self.validated_data.items() if value}


class DeadlinesOutput(serializers.Serializer):
    initial_due = serializers.DateTimeField(source="initial.due")
    initial_met = serializers.BooleanField(source="initial.met", allow_null=True)
    followup_due = serializers.DateTimeField(source="followup.due")
    followup_met = serializers.BooleanField(source="followup.met", allow_null=True)


class FollowUpOutput(serializers.Serializer):
    id = serializers.IntegerField()
    event = serializers.IntegerField(source="event_id")
    reported_on = serializers.DateField()
    note = serializers.CharField()
    outcome = serializers.CharField()
    recorded_by = serializers.IntegerField(source="recorded_by_id", allow_null=True)
    recorded_at = serializers.DateTimeField()

    def to_representation(self, instance: Any) -> dict[str, Any]:
        visible = _arm_visible(self.context, instance.event.participant_id)
        return super().to_representation(blinding.as_seen(instance, visible=visible))


def _arm_visible(context: dict[str, Any], participant_id: int) -> bool:
    visible_for = context.get("arm_visible_for")
    return visible_for is None or participant_id in visible_for


class AEOutput(serializers.Serializer):
    """An adverse event. Context: ``policy`` (the trial's SafetyPolicy) and ``arm_visible_for``."""

    id = serializers.IntegerField()
    participant = serializers.IntegerField(source="participant_id")
    study_id = serializers.CharField(source="participant.study_id")
    site = serializers.CharField(source="participant.site.code")
    source = serializers.SerializerMethodField()  # type: ignore[assignment]
    session = serializers.SerializerMethodField()
    status = serializers.CharField()
    reported_text = serializers.CharField()
    onset_date = serializers.DateField(allow_null=True)
    description = serializers.CharField()
    category = serializers.CharField()
    severity = serializers.CharField()
    serious = serializers.BooleanField()
    serious_criteria = serializers.ListField(child=serializers.CharField())
    relatedness = serializers.CharField()
    expected = serializers.BooleanField(allow_null=True)
    action_taken = serializers.CharField()
    outcome = serializers.CharField()
    resolution_date = serializers.DateField(allow_null=True)
    dismissed_reason = serializers.CharField()
    aware_at = serializers.DateTimeField()
    serious_since = serializers.DateTimeField(allow_null=True)
    reported_by = serializers.IntegerField(source="reported_by_id", allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    deadlines = serializers.SerializerMethodField()

    def to_representation(self, instance: Any) -> dict[str, Any]:
        # Source, session and reporter as a blinded role sees them (participants.blinding).
        return super().to_representation(blinding.as_seen(instance, visible=_arm_visible(self.context, instance.participant_id)))

    def get_source(self, event: Any) -> str:
        return str(event.source)

    def get_session(self, event: Any) -> int | None:
        return event.session_id

    @extend_schema_field(DeadlinesOutput(allow_null=True))
    def get_deadlines(self, event: Any) -> dict[str, Any] | None:
        """Serious events only: the initial report and the first follow-up, each due and met (null: still open)."""
        deadlines = sae_deadlines(
            event=event, policy=self.context["policy"], first_followup_at=getattr(event, "first_followup_at", None)
        )
        return dict(DeadlinesOutput(deadlines).data) if deadlines is not None else None


class AEDetailOutput(AEOutput):
    followups = FollowUpOutput(many=True, source="followups.all")
