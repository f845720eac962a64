"""Error pages: JSON in the API's one error shape under /api/, HTML elsewhere."""

from __future__ import annotations

import sys

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape
from django.utils.translation import get_language, gettext
from django.views import defaults
from kombu.exceptions import OperationalError as BrokerError


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Bad request.", "errors": {}}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "You do not have permission to do this.", "errors": {}}, status=403)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Not found.", "errors": {}}, status=404)
    return defaults.page_not_found(request, exception)


def _outage(exc: BaseException | None) -> bool:
    """Whether ``exc`` means a service is unavailable (the database or the broker), not a bug."""
    if isinstance(exc, OperationalError | InterfaceError):  # includes statement and lock timeouts
        return True
    return isinstance(exc, BrokerError | ConnectionError)


def service_unavailable(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After and a plain message: the database or the broker did not answer."""
    retry = str(settings.OUTAGE_RETRY_AFTER_SECONDS)
    message = gettext(
        "The trial system cannot reach its database right now. Nothing was half-saved. Please try again in a minute."
    )
    if _is_api(request):
        response: HttpResponse = JsonResponse({"detail": message, "errors": {}}, status=503)
    else:
        # No template and no database: the page must render while both are unavailable.
        title = gettext("Temporarily unavailable")
        response = HttpResponse(
            f'<!doctype html><html lang="{escape(get_language() or "en")}"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{escape(title)}</title></head><body><main>'
            f"<h1>{escape(title)}</h1><p>{escape(message)}</p></main></body></html>",
            status=503,
        )
    response["Retry-After"] = retry
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this while handling the uncaught exception, so it is still the current one.
    if _outage(sys.exc_info()[1]):
        return service_unavailable(request)
    if _is_api(request):
        return JsonResponse({"detail": "Something went wrong on our side; it has been logged.", "errors": {}}, status=500)
    return defaults.server_error(request)
