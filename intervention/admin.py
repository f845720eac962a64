"""Admin for the intervention."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from intervention.models import (
    ExtraSlot,
    Holiday,
    InterventionPolicy,
    Leave,
    Prescription,
    Session,
    SessionPlan,
    SessionRecord,
    Walk,
    WorkingHours,
)
from trial import access
from trial.access import Perm
from trial.admin import ConfigurationAdmin
from trial.selectors import trial_get_current_or_none

# Configuration (policy, session plan, hours, leave, extra time, holidays) is edited here, saved
# through the audited configuration service. Sessions, records, prescriptions and walks change
# only through the staff pages; they are shown read-only, and only to a role that may see arms
# (every one of them reveals that its participant is in the intervention arm).


@admin.register(InterventionPolicy)
class InterventionPolicyAdmin(ConfigurationAdmin):
    list_display = ["trial", "arm", "slot_minutes", "diary_weeks", "target_walks_per_week", "target_minutes_per_walk"]


@admin.register(SessionPlan)
class SessionPlanAdmin(ConfigurationAdmin):
    list_display = ["number", "name", "target_day", "window_before_days", "window_after_days", "modes", "sets_prescription"]
    list_filter = ["sets_prescription"]
    ordering = ["trial", "number"]


@admin.register(WorkingHours)
class WorkingHoursAdmin(ConfigurationAdmin):
    list_display = ["site", "physiotherapist", "weekday", "start", "end", "modes"]
    list_filter = ["site", "weekday"]
    list_select_related = ["site", "physiotherapist"]


@admin.register(ExtraSlot)
class ExtraSlotAdmin(ConfigurationAdmin):
    list_display = ["physiotherapist", "site", "starts_at", "ends_at", "modes"]
    list_filter = ["site"]
    list_select_related = ["site", "physiotherapist"]
    date_hierarchy = "starts_at"


@admin.register(Leave)
class LeaveAdmin(ConfigurationAdmin):
    list_display = ["physiotherapist", "starts_at", "ends_at", "reason"]
    list_select_related = ["physiotherapist"]
    date_hierarchy = "starts_at"


@admin.register(Holiday)
class HolidayAdmin(ConfigurationAdmin):
    list_display = ["date", "name"]
    list_filter = ["sites"]
    filter_horizontal = ["sites"]
    date_hierarchy = "date"


class InterventionRecordAdmin(admin.ModelAdmin):
    """Read-only, for a configuring or auditing role that may see arms (per the trial's role settings)."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        trial = trial_get_current_or_none()
        user = request.user
        return (
            access.has_perm(user, Perm.CONFIGURE_TRIAL, trial=trial) or access.has_perm(user, Perm.VIEW_AUDIT, trial=trial)
        ) and access.can_see_allocation(user, trial=trial)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Session)
class SessionAdmin(InterventionRecordAdmin):
    list_display = ["participant", "number", "name", "status", "starts_at", "mode", "physiotherapist"]
    list_filter = ["status", "mode", "number"]
    list_select_related = ["participant", "physiotherapist"]
    search_fields = ["participant__study_id"]
    date_hierarchy = "starts_at"


@admin.register(SessionRecord)
class SessionRecordAdmin(InterventionRecordAdmin):
    list_display = ["session", "attendance", "duration_minutes", "recorded_by", "recorded_at"]
    list_filter = ["attendance"]
    list_select_related = ["session", "recorded_by"]
    search_fields = ["session__participant__study_id"]


@admin.register(Prescription)
class PrescriptionAdmin(InterventionRecordAdmin):
    list_display = ["participant", "session", "walks_per_week", "minutes_per_walk", "starts_on"]
    list_select_related = ["participant", "session"]
    search_fields = ["participant__study_id"]


@admin.register(Walk)
class WalkAdmin(InterventionRecordAdmin):
    list_display = ["participant", "walked_on", "minutes", "steps", "entered_by"]
    list_select_related = ["participant", "entered_by"]
    search_fields = ["participant__study_id"]
    date_hierarchy = "walked_on"
