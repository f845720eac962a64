"""``Authorization: Token <token>``: django-rest-knox tokens (hashed at rest, expiring), bound to the
password they were issued under, and refused (403) to a role that needs a second factor the user
has not set up."""

from __future__ import annotations

from typing import Any

from django.utils.crypto import constant_time_compare
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework import exceptions
from rest_framework.request import Request

from trial import signin


class TokenAuthentication(KnoxTokenAuthentication):
    def validate_user(self, auth_token: Any) -> tuple[Any, Any]:
        user, token = super().validate_user(auth_token)  # refuses inactive users
        if not constant_time_compare(auth_token.auth_hash, user.get_session_auth_hash()):
            raise exceptions.AuthenticationFailed("Invalid token.")  # the password changed since
        return user, token

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        # A token of a user with a device was issued after its second factor was checked
        # (setting a device up revokes the older ones).
        refusal = signin.second_factor_refusal(result[0], getattr(request, "trial", None), verified=True)
        if refusal:
            raise exceptions.PermissionDenied(refusal)
        return result


class TokenScheme(OpenApiAuthenticationExtension):
    """The API schema's description of ``Authorization: Token <token>``."""

    target_class = "trial.api.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")
