from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

from trial.selectors import trial_get_current_or_none


class TrialMiddleware:
    """``request.trial``: the trial this installation runs (None until it is configured)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.trial = SimpleLazyObject(trial_get_current_or_none)  # type: ignore[attr-defined]
        return self.get_response(request)
