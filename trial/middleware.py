from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.functional import SimpleLazyObject
from django.utils.http import urlencode

from trial import signin
from trial.errors import LinkNotValid, StudyClosed, lock_refusal
from trial.selectors import contact_sites, trial_get_current_or_none


class TrialMiddleware:
    """``request.trial``: the trial this installation runs (None until it is configured)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.trial = SimpleLazyObject(trial_get_current_or_none)  # type: ignore[attr-defined]
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A write refused by the database's lock guard (a path that skipped the services, e.g.
        admin): a clear page, not a 500."""
        if isinstance(exception, StudyClosed):
            token = request.resolver_match.kwargs.get("token", "") if request.resolver_match else ""
            return render(request, "followup/study_closed.html", {"token": token}, status=200)
        if isinstance(exception, LinkNotValid):
            # 410 Gone for a link that was replaced, 404 for one that never was.
            return render(
                request,
                "followup/link_not_valid.html",
                {"problem": exception, "sites": [] if exception.site else contact_sites()},
                status=410 if exception.replaced else 404,
            )
        refusal = lock_refusal(exception)
        if refusal is None:
            return None
        return render(request, "locked.html", {"message": refusal.message}, status=refusal.status)


# Browser features no page of ours uses: refused to every page and anything it embeds.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "picture-in-picture",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
)


class SecurityHeadersMiddleware:
    """A Permissions-Policy on every response, and ``Cache-Control: no-store`` on every API response
    and every page a signed-in user gets: they carry health data, which no browser or proxy may keep.
    (The Content-Security-Policy comes from django-csp's middleware, configured in settings.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        user = getattr(request, "user", None)
        if request.path.startswith("/api/") or (user is not None and user.is_authenticated):
            add_never_cache_headers(response)
        return response


class TwoFactorMiddleware:
    """Staff whose role requires a second factor use nothing but the two-factor page and logout
    until they have set it up and used it in this session: pages redirect there, the API answers
    403 in its one error shape. (Token requests are checked by ``trial.api.authentication``.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or self._exempt(request.path):
            return self.get_response(request)
        verified = bool(getattr(user, "is_verified", lambda: False)())
        refusal = signin.second_factor_refusal(user, getattr(request, "trial", None), verified=verified)
        if refusal is None:
            return self.get_response(request)
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": refusal, "errors": {}}, status=403)
        return redirect(f"{reverse('two_factor')}?{urlencode({'next': request.get_full_path()})}")

    @staticmethod
    def _exempt(path: str) -> bool:
        allowed = (reverse("two_factor"), reverse("logout"), reverse("login"), reverse("api-token"))
        return path in allowed or path.startswith(("/static/", "/health/"))
