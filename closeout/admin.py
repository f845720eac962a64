from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from closeout.models import EconomicPolicy
from trial.admin import ConfigurationAdmin


@admin.register(EconomicPolicy)
class EconomicPolicyAdmin(ConfigurationAdmin):
    """One per trial, from its preset: the value set and unit costs of the cost-effectiveness
    analysis in every release built after a change (a release already built keeps its plan)."""

    list_display = ["trial", "currency", "horizon_months", "wtp_threshold"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
