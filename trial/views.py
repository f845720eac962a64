"""Staff pages: thin views over selectors and services."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from trial import access, audit, selectors, services
from trial.access import Perm
from trial.audit import client_ip
from trial.models import SecurityEventKind, Trial


def _trial_or_404(request: HttpRequest) -> Trial:
    trial = getattr(request, "trial", None)
    if not trial:
        raise Http404("No trial is configured yet.")
    return trial


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    trial = getattr(request, "trial", None)
    if not trial:
        return render(request, "trial/no_trial.html", status=503)
    acc = access.access_for(request.user, trial)
    if Perm.VIEW_DASHBOARD not in acc.perms:
        raise PermissionDenied("Your account has no role on this trial.")
    config = selectors.trial_configuration(trial=trial)
    counts = selectors.site_counts(trial=trial, user=request.user)
    totals = {
        "participants": sum(c.participants for c in counts),
        "randomised": sum(c.randomised for c in counts),
        "withdrawn": sum(c.withdrawn for c in counts),
    }
    return render(
        request,
        "trial/dashboard.html",
        {
            "trial": config,
            "access": acc,
            "counts": counts,
            "totals": totals,
            "sees_allocation": acc.sees_allocation,
            "arm_names": [arm.name for arm in config.arms.all()],
        },
    )


@login_required
def record_history(request: HttpRequest, app_label: str, model_name: str, pk: int) -> HttpResponse:
    trial = _trial_or_404(request)
    try:
        model = apps.get_model(app_label, model_name)
    except LookupError as exc:
        raise Http404("No such kind of record.") from exc
    obj = model._default_manager.filter(pk=pk).first()
    # A record the user may not see is reported as missing, not as forbidden.
    if obj is None or not access.can_view_record(request.user, obj, trial=trial):
        raise Http404("No such record, or not one you can see.")
    entries = audit.record_history(obj=obj, user=request.user, trial=trial)
    from closeout.queries.selectors import queries_for_record

    record_type = f"{app_label}.{model_name}".lower()
    clinical = hasattr(obj, "site_for_access")
    return render(
        request,
        "trial/history.html",
        {
            "object": obj,
            "verbose_name": model._meta.verbose_name,
            "entries": entries,
            "queries": list(queries_for_record(record_type=record_type, record_id=pk)) if clinical else [],
            "raise_query_url": f"{reverse('query-new')}?record={record_type}:{pk}"
            if clinical and access.has_perm(request.user, Perm.MANAGE_QUERIES, trial=trial)
            else "",
        },
    )


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
        services.security_event_record(
            kind=SecurityEventKind.PASSWORD_CHANGED, user=self.request.user, ip_address=client_ip(self.request)
        )
        return response
