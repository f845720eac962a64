from __future__ import annotations

from rest_framework import serializers


class ArmOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    ratio = serializers.IntegerField()


class SiteOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class LevelOutput(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]


class FactorOutput(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    levels = LevelOutput(many=True, source="levels.all")


class CriterionOutput(serializers.Serializer):
    code = serializers.CharField()
    text = serializers.CharField()
    kind = serializers.CharField()


class TrialOutput(serializers.Serializer):
    name = serializers.CharField()
    registration = serializers.CharField()
    timezone = serializers.CharField()
    recruitment_target = serializers.IntegerField()
    recruitment_start = serializers.DateField()
    recruitment_end = serializers.DateField()
    followup_end = serializers.DateField()
    arms = ArmOutput(many=True, source="arms.all")
    sites = SiteOutput(many=True, source="sites.all")
    strata = FactorOutput(many=True, source="strata.all")
    eligibility = CriterionOutput(many=True, source="eligibility.all")


class TokenInput(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
    otp = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=40,
        help_text="The current code of the user's authenticator app, or a recovery code: required when they have set one up.",
    )


class TokenOutput(serializers.Serializer):
    token = serializers.CharField()
    expiry = serializers.DateTimeField(allow_null=True, help_text="When the token stops working (UTC).")


class MeOutput(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.CharField(allow_null=True)
    sites = serializers.ListField(child=serializers.CharField())
    trial_wide = serializers.BooleanField()
    sees_allocation = serializers.BooleanField()
    permissions = serializers.ListField(child=serializers.CharField())
