from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.http import urlencode

from trial import signin
from trial.errors import StudyClosed, lock_refusal
from trial.selectors import trial_get_current_or_none


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
        refusal = lock_refusal(exception)
        if refusal is None:
            return None
        return render(request, "locked.html", {"message": refusal.message}, status=refusal.status)


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
