"""Django admin for trial configuration. Saves go through services, access through ``trial.access``.

Only configuration is here: clinical records, the audit trail, accounts' passwords and API tokens
are not (see ``trial.adminsite``).
"""

from __future__ import annotations

from typing import Any

from axes.models import AccessAttempt
from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.shortcuts import redirect
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from trial import hooks, services
from trial.access import Perm
from trial.adminsite import AccessModelAdmin
from trial.audit import client_ip
from trial.errors import ApplicationError
from trial.models import (
    ApiToken,
    Arm,
    EligibilityCriterion,
    Role,
    Site,
    StaffProfile,
    StratificationFactor,
    StratumLevel,
    Trial,
    TrialContact,
)
from trial.selectors import trial_get_current


class ConfigurationAdmin(AccessModelAdmin):
    """Only roles that may configure the trial see or change it; structural edits freeze at randomisation."""

    perms = frozenset({Perm.CONFIGURE_TRIAL})
    structural_fields: frozenset[str] = frozenset()

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        # Adding an arm or factor is structural; adding a site or criterion is not.
        structural = bool(self.structural_fields) and (not change or bool(self.structural_fields & set(form.changed_data)))
        services.configuration_record_save(obj=obj, changed_fields=form.changed_data, structural=structural, by=request.user)

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        services.configuration_record_delete(obj=obj, structural=bool(self.structural_fields), by=request.user)

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().changeform_view(request, *args, **kwargs)
        except ApplicationError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return redirect(request.path)

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().delete_view(request, *args, **kwargs)
        except ApplicationError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return redirect(request.path)


@admin.register(Trial)
class TrialAdmin(ConfigurationAdmin):
    list_display = ["name", "code", "registration", "timezone", "recruitment_target", "followup_end"]
    readonly_fields = ["data_locked_at", "created_at", "updated_at"]
    structural_fields = frozenset({"randomisation_method"})

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if {"followup_end", "max_followup_months"} & set(form.changed_data):
            for line in hooks.run_followup_end_changed(obj):  # type: ignore[arg-type]
                self.message_user(request, line)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Site)
class SiteAdmin(ConfigurationAdmin):
    list_display = ["code", "name", "timezone", "active"]
    list_filter = ["active"]


@admin.register(Arm)
class ArmAdmin(ConfigurationAdmin):
    list_display = ["code", "name", "ratio", "order"]
    structural_fields = frozenset({"code", "ratio", "trial"})


class StratumLevelInline(admin.TabularInline):
    model = StratumLevel
    extra = 0


@admin.register(StratificationFactor)
class StratificationFactorAdmin(ConfigurationAdmin):
    list_display = ["code", "label", "order"]
    structural_fields = frozenset({"code", "trial"})
    inlines = [StratumLevelInline]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.has_changed():
            services.configuration_ensure_mutable(trial=form.instance.trial, what="Stratum levels")
        super().save_formset(request, form, formset, change)


@admin.register(EligibilityCriterion)
class EligibilityCriterionAdmin(ConfigurationAdmin):
    list_display = ["code", "kind", "text", "active", "order"]
    list_filter = ["kind", "active"]


@admin.register(Role)
class RoleAdmin(ConfigurationAdmin):
    list_display = ["code", "sees_allocation", "sees_allocation_after_lock", "trial_wide"]


class StaffProfileForm(forms.ModelForm):
    reason = forms.CharField(max_length=300, help_text="Why the role or sites change (kept in the audit trail).")

    class Meta:
        model = StaffProfile
        fields = ["role", "sites", "timezone"]


@admin.register(StaffProfile)
class StaffProfileAdmin(ConfigurationAdmin):
    """Role and site changes go through ``staff_change_role``; new staff come from ``create_staff``.

    One's own profile is read-only here: another administrator changes it.
    """

    perms = frozenset({Perm.MANAGE_STAFF})
    form = StaffProfileForm
    list_display = ["user", "role"]
    list_filter = ["role", "sites"]
    filter_horizontal = ["sites"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.user_id == request.user.pk:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        pass  # saved with its sites in save_related, by the service

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        data = form.cleaned_data
        services.staff_change_role(
            trial=trial_get_current(),
            profile=form.instance,
            role=data["role"],
            site_codes=[site.code for site in data["sites"]],
            reason=data["reason"],
            by=request.user,  # type: ignore[arg-type]
            time_zone=str(data["timezone"] or ""),
        )


@admin.register(TrialContact)
class TrialContactAdmin(ConfigurationAdmin):
    list_display = ["kind", "name", "email"]
    list_filter = ["kind"]


class PeriodicTaskForm(forms.ModelForm):
    class Meta:
        model = PeriodicTask
        fields = ["enabled", "interval", "crontab"]


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(AccessModelAdmin):
    """Beat's schedule rows (``trial.schedules``): paused or re-timed here, never created or deleted,
    and what a row runs (task, arguments) is fixed: no arbitrary task can be scheduled from admin."""

    form = PeriodicTaskForm
    list_display = ["name", "task", "enabled", "interval", "crontab", "last_run_at"]
    list_filter = ["enabled"]
    fields = ["name", "task", "args", "kwargs", "enabled", "interval", "crontab", "last_run_at", "total_run_count"]
    readonly_fields = ["name", "task", "args", "kwargs", "last_run_at", "total_run_count"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        data = form.cleaned_data
        services.periodic_task_update(
            task_id=obj.pk,
            enabled=data["enabled"],
            interval=data["interval"],
            crontab=data["crontab"],
            by=request.user,  # type: ignore[arg-type]
        )


class ScheduleAdmin(AccessModelAdmin):
    """Schedules a periodic task can be moved to; rows are shared, so they are added, never edited."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


admin.site.register(IntervalSchedule, ScheduleAdmin)
admin.site.register(CrontabSchedule, ScheduleAdmin)


class _StaffManagementAdmin(AccessModelAdmin):
    """Read-only lists for roles that manage staff."""

    perms = frozenset({Perm.MANAGE_STAFF})

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(_StaffManagementAdmin):
    """Who holds API tokens and until when; never a key or its hash."""

    # The primary key is the token's hash: no links, detail pages or actions, which would show it.
    list_display = ["user", "created", "expiry"]
    list_display_links = None
    list_select_related = ["user"]
    search_fields = ["user__username"]
    actions = None

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and self._allowed(request)


@admin.register(AccessAttempt)
class LoginLockoutAdmin(_StaffManagementAdmin):
    """Failed sign-ins counted by the lockout; an administrator unlocks them (audited)."""

    list_display = ["username", "ip_address", "failures_since_start", "attempt_time"]
    fields = ["username", "ip_address", "failures_since_start", "attempt_time", "path_info"]
    readonly_fields = ["username", "ip_address", "failures_since_start", "attempt_time", "path_info"]
    search_fields = ["username", "ip_address"]
    actions = ["unlock"]

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Unlock sign-in for the selected usernames and addresses")
    def unlock(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        count = services.login_lockouts_clear(attempts=list(queryset), by=request.user, ip_address=client_ip(request))
        self.message_user(request, f"{count} lockout record(s) cleared.")
