"""Admin for the trial's adverse-event settings. Adverse events themselves are clinical records:
they are entered and read on the staff pages, not here."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from safety.models import SafetyPolicy
from trial.admin import ConfigurationAdmin


@admin.register(SafetyPolicy)
class SafetyPolicyAdmin(ConfigurationAdmin):
    """One per trial, from its preset: categories and reporting deadlines are edited here."""

    list_display = ["trial", "initial_report_hours", "followup_report_days"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
