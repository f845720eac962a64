"""One error shape for every 4xx: ``{"detail": str, "errors": {field: [messages]}}``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from trial.errors import ApplicationError, lock_refusal

# A safety net under the messages, which never quote what was sent: a key (a field name the client
# chose) or message is cut at these lengths, so no response repeats a long input whole.
MAX_KEY, MAX_MESSAGE = 80, 300


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _flatten(errors: Any) -> dict[str, list[str]]:
    return {_cut(key, MAX_KEY): [_cut(m, MAX_MESSAGE) for m in messages] for key, messages in _flatten_all(errors).items()}


def _flatten_all(errors: Any) -> dict[str, list[str]]:
    if isinstance(errors, dict):
        out: dict[str, list[str]] = {}
        for key, value in errors.items():
            if isinstance(value, dict):
                for sub_key, messages in _flatten_all(value).items():
                    out[f"{key}.{sub_key}"] = messages
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                for index, item in enumerate(value):
                    for sub_key, messages in _flatten_all(item).items():
                        out[f"{key}[{index}].{sub_key}"] = messages
            else:
                out[str(key)] = [str(v) for v in (value if isinstance(value, list) else [value])]
        return out
    return {"non_field_errors": [str(v) for v in (errors if isinstance(errors, list) else [errors])]}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DatabaseError) and (refusal := lock_refusal(exc)) is not None:
        exc = refusal
    if isinstance(exc, ApplicationError):
        set_rollback()
        errors = _flatten(exc.errors) if exc.errors else {}
        return Response({"detail": _cut(exc.message, MAX_MESSAGE), "errors": errors, **exc.extra}, status=exc.status)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(response.data)
        first = next(iter(errors.items()), None)
        detail = "Some of the data sent is not valid"
        if first:
            detail += f": {first[0]}: {first[1][0]}" if first[0] != "non_field_errors" else f": {first[1][0]}"
        response.data = {"detail": detail, "errors": errors}
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
        response.data = {"detail": _cut(str(detail), MAX_MESSAGE), "errors": {}}
    return response
