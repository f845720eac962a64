"""Staff pages: thin views over selectors and services."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from trial import access, audit, selectors
from trial.access import Perm
from trial.audit import client_ip
from trial.models import SecurityEventKind, Trial


def _trial_or_404(request: HttpRequest) -> Trial:
    return access.page_trial(request)


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    trial = _trial_or_404(request)
    if not access.has_perm(request.user, Perm.VIEW_AUDIT, trial=trial):
        raise PermissionDenied("Your role may not read the audit trail.")
    filters = {"kind": request.GET.get("kind", ""), "username": request.GET.get("username", "")}
    page = Paginator(selectors.security_event_list(filters=filters), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "trial/audit_log.html",
        {"page": page, "filters": filters, "kinds": SecurityEventKind.choices},
    )


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change, with the change written to the audit trail."""

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        audit.security_event_record(
            kind=SecurityEventKind.PASSWORD_CHANGED, user=self.request.user, ip_address=client_ip(self.request)
        )
        return response
