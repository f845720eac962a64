"""Thin API views: validate, call a selector or service, serialise."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from trial import access, selectors, services, signin
from trial.api import serializers
from trial.api.authentication import TokenAuthentication
from trial.api.schema import ErrorOutput
from trial.audit import client_ip
from trial.errors import ApplicationError
from trial.models import ApiToken


class TokenView(APIView):
    """POST: exchange a username, password and (when the user has set up two-factor authentication)
    a code for an API token that expires. DELETE: revoke the token presented."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"

    def get_authenticators(self) -> list[BaseAuthentication]:
        # Signing in takes credentials, not a session or token; revoking takes the token itself.
        return [TokenAuthentication()] if self._revoking() else []

    def get_permissions(self) -> list[BasePermission]:
        return [IsAuthenticated()] if self._revoking() else [AllowAny()]

    def _revoking(self) -> bool:
        return getattr(getattr(self, "request", None), "method", None) == "DELETE"

    @extend_schema(
        request=serializers.TokenInput,
        responses={
            200: serializers.TokenOutput,
            400: ErrorOutput,
            401: OpenApiResponse(ErrorOutput, description="A second factor is needed: `errors.otp`."),
            429: OpenApiResponse(ErrorOutput, description="Too many failures: locked out, or throttled."),
        },
    )
    def post(self, request: Request) -> Response:
        data = serializers.TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        result = signin.sign_in_check(
            request=request._request,
            username=data.validated_data["username"],
            password=data.validated_data["password"],
            otp_token=data.validated_data.get("otp", ""),
        )
        if not access.access_for(result.user, getattr(request, "trial", None)).is_staff_member:
            raise ApplicationError(
                "Unable to log in with those credentials.", errors={"non_field_errors": ["Invalid username or password."]}
            )
        token, key = services.api_token_issue(user=result.user, ip_address=client_ip(request._request))
        return Response(serializers.TokenOutput({"token": key, "expiry": token.expiry}).data)

    @extend_schema(request=None, responses={204: None, 401: ErrorOutput})
    def delete(self, request: Request) -> Response:
        token = request.auth
        assert isinstance(token, ApiToken)  # the only authenticator of DELETE
        services.api_token_revoke(token=token, ip_address=client_ip(request._request))
        return Response(status=204)


class TrialView(APIView):
    """The trial's configuration: arms, sites, strata and eligibility checklist."""

    @extend_schema(responses=serializers.TrialOutput)
    def get(self, request: Request) -> Response:
        trial = selectors.trial_configuration(trial=selectors.trial_get_current())
        return Response(serializers.TrialOutput(trial).data)


class MeView(APIView):
    """Who the caller is in this trial: role, sites and what the role may do."""

    @extend_schema(responses=serializers.MeOutput)
    def get(self, request: Request) -> Response:
        trial = getattr(request, "trial", None)
        acc = access.access_for(request.user, trial)
        sites = access.visible_sites(request.user, trial=trial).values_list("code", flat=True) if trial else []
        return Response(
            serializers.MeOutput(
                {
                    "username": request.user.get_username(),
                    "role": acc.role,
                    "sites": list(sites),
                    "trial_wide": acc.trial_wide,
                    "sees_allocation": acc.sees_allocation,
                    "permissions": sorted(p.value for p in acc.perms),
                }
            ).data
        )
