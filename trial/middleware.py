from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.functional import SimpleLazyObject

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
