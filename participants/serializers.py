from __future__ import annotations

from typing import Any

from rest_framework import serializers

from participants import blinding
from participants.models import ConsentMethod, WithdrawalScope


class ScreeningInput(serializers.Serializer):
    site = serializers.CharField()
    screened_on = serializers.DateField(required=False)
    referral = serializers.CharField(required=False, allow_blank=True, default="")
    answers = serializers.DictField(child=serializers.BooleanField())


class ScreeningOutput(serializers.Serializer):
    id = serializers.IntegerField()
    site = serializers.CharField(source="site.code")
    screened_on = serializers.DateField()
    eligible = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField())
    outcome = serializers.CharField()


class ConsentInputSerializer(serializers.Serializer):
    version = serializers.CharField(required=False, allow_blank=True, default="")
    method = serializers.ChoiceField(choices=ConsentMethod.choices)
    signed_name = serializers.CharField(max_length=200)


class ContactInputSerializer(serializers.Serializer):
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    mobile = serializers.CharField(required=False, allow_blank=True, default="", max_length=30)
    timezone = serializers.CharField(required=False, allow_blank=True, default="")
    preferred_channel = serializers.ChoiceField(choices=["email", "sms"], required=False, default="email")
    language = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=15,
        help_text="A language code of the installation (settings.LANGUAGES); blank: the site's language.",
    )


class EnrolInput(serializers.Serializer):
    consent = ConsentInputSerializer()
    strata = serializers.DictField(child=serializers.CharField(), required=False, default=dict)
    contact = ContactInputSerializer()


class WithdrawInput(serializers.Serializer):
    scope = serializers.ChoiceField(choices=WithdrawalScope.choices)
    reason = serializers.CharField(max_length=500)
    withdrawn_on = serializers.DateField(required=False)


class UnblindInput(serializers.Serializer):
    reason = serializers.CharField(max_length=500)
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})


class ParticipantOutput(serializers.Serializer):
    """A participant; ``arm`` is added only for users who may see it (the key is absent otherwise)."""

    id = serializers.IntegerField()
    study_id = serializers.CharField()
    site = serializers.CharField(source="site.code")
    status = serializers.CharField()
    withdrawal_scope = serializers.CharField()
    enrolled_at = serializers.DateTimeField()
    randomised_at = serializers.DateTimeField(allow_null=True)
    strata = serializers.SerializerMethodField()
    consent = serializers.SerializerMethodField()

    def get_strata(self, obj: Any) -> dict[str, str]:
        return {s.factor.code: s.level.code for s in obj.strata.all()}

    def get_consent(self, obj: Any) -> dict[str, Any]:
        return {
            "version": getattr(obj, "consent_version", None),
            "needs_reconsent": getattr(obj, "has_current_consent", True) is False and obj.consent_version is not None,
        }

    def to_representation(self, instance: Any) -> dict[str, Any]:
        visible_arms = self.context.get("arm_visible_for")  # None: every arm; else a set of participant ids
        arm_visible = visible_arms is None or instance.pk in visible_arms
        data = super().to_representation(blinding.as_seen(instance, visible=arm_visible))
        if arm_visible:
            allocation = getattr(instance, "allocation", None) if instance.randomised_at else None
            data["arm"] = allocation.arm.code if allocation else None
        return data


class RandomiseOutput(serializers.Serializer):
    study_id = serializers.CharField()
    randomised_at = serializers.DateTimeField()
    arm = serializers.CharField(required=False)
