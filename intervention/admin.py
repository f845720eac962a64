"""Admin for the intervention."""

from __future__ import annotations

from django.contrib import admin

from intervention.models import ExtraSlot, Holiday, InterventionPolicy, Leave, SessionPlan, WorkingHours
from trial.admin import ConfigurationAdmin

# Configuration (policy, session plan, hours, leave, extra time, holidays) is edited here, saved
# through the audited configuration service. Sessions, records, prescriptions and walks are
# clinical records: they change only through the staff pages and are not in admin.


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
