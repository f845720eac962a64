from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Model
from django.http import HttpRequest

from followup import services
from followup.models import InstrumentVersion, OutcomePolicy, ScheduleRule
from trial.admin import ConfigurationAdmin
from trial.services import configuration_record_save


@admin.register(ScheduleRule)
class ScheduleRuleAdmin(ConfigurationAdmin):
    """Changing a rule re-plans every participant's questionnaires that are not yet open."""

    list_display = ["instrument", "kind", "months", "open_days_before", "close_days_after"]

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        configuration_record_save(
            obj=obj, changed_fields=form.changed_data, structural=False, reason="Schedule rule edited", by=request.user
        )
        result = services.schedule_replan(trial=obj.trial, reason=f"Schedule rule {obj} changed")  # type: ignore[attr-defined]
        self.message_user(
            request,
            f"Re-planned {result.participants} participants: {result.added} added, {result.moved} moved, {result.cancelled} cancelled.",
            level=messages.INFO,
        )


@admin.register(OutcomePolicy)
class OutcomePolicyAdmin(ConfigurationAdmin):
    """One per trial, from its preset. A change derives every participant's outcomes again, in a
    task queued once the change is saved."""

    list_display = ["trial", "instrument", "interference_threshold", "pain_threshold"]

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if form.changed_data:
            services.outcome_policy_changed(policy=obj)  # type: ignore[arg-type]
            self.message_user(
                request, "Every participant's outcomes will be derived again under the new rules.", level=messages.INFO
            )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(InstrumentVersion)
class InstrumentVersionAdmin(ConfigurationAdmin):
    """Published questionnaires, to read: a version never changes, and a new one is published
    from the instrument library (``presets``), where its definition is validated."""

    list_display = ["code", "version", "title", "published_at"]
    list_filter = ["code"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
