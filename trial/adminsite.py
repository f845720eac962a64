"""Django admin as a configuration tool, gated by ``trial.access``, not by Django's permission tables.

Only ``AccessModelAdmin`` subclasses are registered: what third-party apps register (users and
groups with their password and superuser fields, API tokens, pghistory's raw event browser,
beat's free-form task scheduling) is left out, so nothing reaches admin unless we wrote its rule.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from trial import access
from trial.access import Perm
from trial.audit import client_ip, security_event_record
from trial.models import SecurityEventKind
from trial.selectors import trial_get_current_or_none

# Who may open admin at all: each page then asks its own ModelAdmin.
ADMIN_PERMS = frozenset({Perm.CONFIGURE_TRIAL, Perm.MANAGE_STAFF})


def _holds(request: HttpRequest, perms: frozenset[Perm]) -> bool:
    return bool(perms & access.access_for(request.user, trial_get_current_or_none()).perms)


class TrialAdminSite(admin.AdminSite):
    site_header = "Trial configuration"
    site_title = "Trial configuration"
    index_title = "Configuration"

    def has_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active) and _holds(request, ADMIN_PERMS)

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        if admin_class is None or not issubclass(admin_class, AccessModelAdmin):
            return  # a third-party app's admin: not ours to expose
        super().register(model_or_iterable, admin_class, **options)

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        """Admins sign in through the staff login page: one form, with the second factor and the lockout."""
        return redirect_to_login(request.GET.get("next") or reverse("admin:index"), login_url=reverse("login"))

    def password_change(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:  # type: ignore[override]
        return redirect("password_change")  # ours: checks the old password, audited


class AccessModelAdmin(admin.ModelAdmin):
    """A model in admin for holders of one of ``perms``; what it may do is narrowed by subclasses.

    Changes made by a real superuser (the emergency account) are recorded in the audit trail.
    """

    perms: frozenset[Perm] = frozenset({Perm.CONFIGURE_TRIAL})

    def _allowed(self, request: HttpRequest) -> bool:
        return _holds(request, self.perms)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request)

    def log_addition(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        _audit_superuser(request, action="added", obj=obj)
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        _audit_superuser(request, action="changed", obj=obj)
        return super().log_change(request, obj, message)

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        for obj in queryset:
            _audit_superuser(request, action="deleted", obj=obj)
        return super().log_deletions(request, queryset)


def _audit_superuser(request: HttpRequest, *, action: str, obj: Model) -> None:
    if getattr(request.user, "is_superuser", False):
        security_event_record(
            kind=SecurityEventKind.SUPERUSER,
            user=request.user,
            ip_address=client_ip(request),
            detail={"action": f"admin: {action}", "record": obj._meta.label_lower, "id": obj.pk, "object": str(obj)[:200]},
        )
