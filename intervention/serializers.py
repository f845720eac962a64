from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from intervention.models import Attendance, DeliveryMode

MAX_SLOT_RANGE_DAYS = 31


class AwareDateTimeField(serializers.DateTimeField):
    """A date and time that must carry its UTC offset: a naive time is ambiguous across time zones."""

    def enforce_timezone(self, value: dt.datetime) -> dt.datetime:
        if timezone.is_naive(value):
            raise serializers.ValidationError("Give the time with its UTC offset, e.g. 2026-03-03T09:00:00+11:00.")
        return super().enforce_timezone(value)


class SessionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    participant = serializers.IntegerField(source="participant_id")
    number = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    window_start = serializers.DateField()
    window_end = serializers.DateField()
    target_date = serializers.DateField()
    starts_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)
    mode = serializers.CharField()
    allowed_modes = serializers.ListField(child=serializers.CharField())
    physiotherapist = serializers.IntegerField(source="physiotherapist_id", allow_null=True)
    physiotherapist_name = serializers.SerializerMethodField()
    meeting_link = serializers.CharField()
    outside_window_reason = serializers.CharField()

    def get_physiotherapist_name(self, session: Any) -> str:
        physio = session.physiotherapist
        if physio is None:
            return ""
        return str(physio.get_full_name() or physio.username)


class SlotQuery(serializers.Serializer):
    date_from = serializers.DateField(input_formats=["iso-8601"])
    date_to = serializers.DateField(input_formats=["iso-8601"])

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["date_to"] < attrs["date_from"]:
            raise serializers.ValidationError({"date_to": ["Must be on or after date_from."]})
        if (attrs["date_to"] - attrs["date_from"]).days + 1 > MAX_SLOT_RANGE_DAYS:
            raise serializers.ValidationError({"date_to": [f"At most {MAX_SLOT_RANGE_DAYS} days from date_from."]})
        return attrs


class SlotOutput(serializers.Serializer):
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    modes = serializers.ListField(child=serializers.CharField())
    site = serializers.CharField()


class BookInput(serializers.Serializer):
    starts_at = AwareDateTimeField()
    mode = serializers.ChoiceField(choices=DeliveryMode.choices)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)


class CancelInput(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


class PrescriptionInputSerializer(serializers.Serializer):
    walks_per_week = serializers.IntegerField()
    minutes_per_walk = serializers.IntegerField()
    progression = serializers.CharField(required=False, allow_blank=True, default="")


class RecordInput(serializers.Serializer):
    attendance = serializers.ChoiceField(choices=Attendance.choices)
    duration_minutes = serializers.IntegerField(required=False, allow_null=True, default=None)
    topics = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    notes = serializers.CharField(required=False, allow_blank=True, default="")
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)
    prescription = PrescriptionInputSerializer(required=False, allow_null=True, default=None)


class PrescriptionOutput(serializers.Serializer):
    walks_per_week = serializers.IntegerField()
    minutes_per_walk = serializers.IntegerField()
    progression = serializers.CharField()
    starts_on = serializers.DateField()


class RecordOutput(serializers.Serializer):
    session = serializers.IntegerField(source="session_id")
    status = serializers.CharField(source="session.status")
    attendance = serializers.CharField()
    duration_minutes = serializers.IntegerField(allow_null=True)
    topics = serializers.ListField(child=serializers.CharField())
    notes = serializers.CharField()
    recorded_by = serializers.IntegerField(source="recorded_by_id")
    recorded_at = serializers.DateTimeField()
    prescription = serializers.SerializerMethodField()

    @extend_schema_field(PrescriptionOutput(allow_null=True))
    def get_prescription(self, record: Any) -> dict[str, Any] | None:
        prescription = getattr(record.session, "prescription", None)
        return PrescriptionOutput(prescription).data if prescription is not None else None


class WalkInput(serializers.Serializer):
    walked_on = serializers.DateField(input_formats=["iso-8601"])
    minutes = serializers.IntegerField()
    steps = serializers.IntegerField(required=False, allow_null=True, default=None)


class WalkOutput(serializers.Serializer):
    id = serializers.IntegerField()
    walked_on = serializers.DateField()
    minutes = serializers.IntegerField()
    steps = serializers.IntegerField(allow_null=True)
    entered_by_staff = serializers.SerializerMethodField()

    def get_entered_by_staff(self, walk: Any) -> bool:
        return walk.entered_by_id is not None


class WeekOutput(serializers.Serializer):
    starts_on = serializers.DateField()
    minutes = serializers.IntegerField()
    walks = serializers.IntegerField()
    target_minutes = serializers.IntegerField(allow_null=True)
    target_walks = serializers.IntegerField(allow_null=True)
    met = serializers.BooleanField(allow_null=True)


class AdherenceOutput(serializers.Serializer):
    weeks = WeekOutput(many=True)
    last_walk_on = serializers.DateField(allow_null=True)
    inactive = serializers.BooleanField()
    inactive_days = serializers.IntegerField()


class DiaryOutput(serializers.Serializer):
    walks = WalkOutput(many=True)
    adherence = AdherenceOutput()
