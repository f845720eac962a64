"""Staff pages: thin views over selectors and services."""

from __future__ import annotations

import base64
import zoneinfo
from typing import Any

import django_otp
import segno
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django_otp import login as otp_login

from trial import access, audit, downloads, selectors, services, signin, sorting
from trial.access import Perm
from trial.audit import client_ip
from trial.errors import ApplicationError
from trial.forms import LoginForm, OtpTokenForm, TwoFactorRemoveForm
from trial.models import SecurityEventKind, Trial


def _trial_or_404(request: HttpRequest) -> Trial:
    return access.page_trial(request)


@login_required
def audit_log(request: HttpRequest) -> HttpResponseBase:
    trial = _trial_or_404(request)
    if not access.has_perm(request.user, Perm.VIEW_AUDIT, trial=trial):
        raise PermissionDenied("Your role may not read the audit trail.")
    filters = {"kind": request.GET.get("kind", ""), "username": request.GET.get("username", "")}
    events = selectors.security_event_list(filters=filters)
    sort = sorting.sort_parse(request.GET.get("sort"), columns=selectors.SECURITY_EVENT_SORTS)
    events = sorting.sort_apply(events, sort, columns=selectors.SECURITY_EVENT_SORTS)
    if downloads.wants_csv(request):
        zone = zoneinfo.ZoneInfo(trial.timezone or "UTC")

        def rows(batch: list[Any]) -> Any:
            for ev in batch:
                detail = "; ".join(f"{k}: {v}" for k, v in ev.detail.items())
                yield [
                    ev.created_at.astimezone(zone).isoformat(),
                    ev.get_kind_display(),
                    ev.username,
                    ev.ip_address or "",
                    detail,
                ]

        header = ["when", "event", "user", "from", "detail"]
        return downloads.csv_download(name="audit-trail", header=header, rows=downloads.in_chunks(events, rows))
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "trial/audit_log.html",
        {
            "page": page,
            "filters": filters,
            "kinds": SecurityEventKind.choices,
            "tz": trial.timezone or "UTC",
            "csv_url": downloads.csv_url(request),
            "sort": sort,
            "sorts": sorting.sort_headers(request, sort, columns=selectors.SECURITY_EVENT_SORTS),
        },
    )


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change, with the change written to the audit trail. The user's API
    tokens end (they are bound to the old password; here their rows go too)."""

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        audit.security_event_record(
            kind=SecurityEventKind.PASSWORD_CHANGED, user=self.request.user, ip_address=client_ip(self.request)
        )
        services.api_tokens_revoke(user=self.request.user, reason="password changed", by=self.request.user)
        return response


class LoginView(auth_views.LoginView):
    """One form: username, password and (for staff with a device) the code; the session is then
    marked as having passed the second factor."""

    authentication_form = LoginForm

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        if form.otp_device is not None:
            otp_login(self.request, form.otp_device)
        return response


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """What a locked-out sign-in gets (django-axes): the one JSON error shape in the API, a page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": signin.LOCKED_OUT, "errors": {"non_field_errors": [signin.LOCKED_OUT]}}, status=429)
    return render(request, "registration/locked_out.html", {"message": signin.LOCKED_OUT}, status=429)


@login_required
def two_factor(request: HttpRequest) -> HttpResponse:
    """The account's two-factor page: set up (QR code, secret, confirm), confirm this session,
    remove. Staff whose role requires a second factor are sent here until it is set up."""
    user: Any = request.user
    trial = getattr(request, "trial", None)
    has_device = signin.has_confirmed_device(user)
    verified = bool(user.is_verified())
    action = request.POST.get("action", "") if request.method == "POST" else ""
    code_form = OtpTokenForm(request.POST if action in ("confirm", "verify") else None)
    remove_form = TwoFactorRemoveForm(request.POST if action == "remove" else None)
    if action == "confirm" and code_form.is_valid():
        try:
            device, codes = services.two_factor_confirm(user=user, token=code_form.cleaned_data["otp_token"])
        except ApplicationError as exc:
            code_form.add_error("otp_token", exc.message)
        else:
            otp_login(request, device)
            # Shown once, in this response only.
            return render(request, "trial/two_factor_codes.html", {"codes": codes, "next": _safe_next(request)})
    elif action == "verify" and code_form.is_valid():
        device = django_otp.match_token(user, "".join(code_form.cleaned_data["otp_token"].split()))
        if device is None:
            code_form.add_error("otp_token", signin.OTP_WRONG)
        else:
            otp_login(request, device)
            messages.success(request, gettext("This session is confirmed."))
            return redirect(_safe_next(request) or "dashboard")
    elif action == "remove" and remove_form.is_valid():
        try:
            services.two_factor_remove(user=user, credential=remove_form.cleaned_data["credential"])
        except ApplicationError as exc:
            remove_form.add_error("credential", exc.message)
        else:
            messages.success(request, gettext("Two-factor authentication is removed; your API tokens have ended."))
            return redirect("two_factor")
    context: dict[str, Any] = {
        "required": signin.two_factor_required(user, trial),
        "has_device": has_device,
        "verified": verified,
        "code_form": code_form,
        "remove_form": remove_form,
        "next": _safe_next(request),
    }
    if not has_device:
        pending = services.two_factor_setup_start(user=user)
        context["otpauth_uri"] = pending.config_url
        context["secret"] = base64.b32encode(pending.bin_key).decode()
        context["qr_svg"] = mark_safe(segno.make(pending.config_url, error="m").svg_inline(scale=4, title="Two-factor QR code"))  # noqa: S308 - made by segno from our own URI
    return render(request, "trial/two_factor.html", context)


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return ""
