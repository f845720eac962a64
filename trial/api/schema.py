"""The API schema documents every error a view can answer, in the one error shape.

drf-spectacular documents what views declare with ``extend_schema`` (their successful answers);
this schema class adds, to every operation, the error answers that follow from what the view is:
signed in or not, with an id in the path, writing or reading with query parameters, throttled.
A code a view declares itself is kept as declared.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import force_instance
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


class ErrorOutput(serializers.Serializer):
    """Every 4xx: a sentence for people, and the message(s) of each field for programs. Some
    refusals add keys (a 409 on a signed lock adds ``blockers``; a repeated randomisation ``randomised_at``)."""

    detail = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))  # type: ignore[assignment]


ERRORS = {
    "400": "The data sent is not valid: `errors` names each field and what is wrong with it.",
    "401": "Not signed in, or the token is not valid (any longer).",
    "403": "Signed in, but the role may not do this, or the record is at a site the caller does not work at.",
    "404": "No such record, or not one the caller can see.",
    "409": "The record's state does not allow this now (e.g. already done, or taken by someone else).",
    "423": "The trial database is locked: nothing can change until it is unlocked.",
    "429": "Too many requests, or too many wrong passwords (throttled per user): wait and try again.",
}


def error_codes(*, method: str, public: bool, path_has_id: bool, query: set[str], throttled: bool) -> list[str]:
    """The error codes an operation can answer, from what it is."""
    codes = set()
    if not public:
        codes |= {"401", "403"}
    if path_has_id or "page" in query:  # an unknown id, or a page past the last
        codes.add("404")
    if method in WRITES:
        codes.add("400")
        if not public:  # services refuse a write the record's state or the database lock forbids
            codes |= {"409", "423"}
    elif query:
        codes.add("400")
    if throttled:
        codes.add("429")
    return sorted(codes)


class AutoSchema(SpectacularAutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> Any:
        responses = super()._get_response_bodies(direction)
        parameters = self._get_parameters()
        codes = error_codes(
            method=self.method,
            public=any(isinstance(p, AllowAny) for p in self.view.get_permissions()),
            path_has_id="{" in self.path,
            query={p["name"] for p in parameters if p.get("in") == "query"},
            throttled=bool(self.view.get_throttles()) or self._checks_a_password(),
        )
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(response=ErrorOutput, description=ERRORS[code]), code, direction=direction
                )
        return responses

    def _checks_a_password(self) -> bool:
        """A write that takes the caller's password (emergency unblinding, lock signing) is throttled
        per user after repeated wrong ones (``trial.signin.password_confirm``)."""
        if self.method not in WRITES:
            return False
        serializer = force_instance(self.get_request_serializer())
        return isinstance(serializer, serializers.Serializer) and "password" in serializer.fields
