"""Thin API views: validate, call a selector or service, serialise."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from trial import access, audit, selectors
from trial.api import serializers
from trial.audit import client_ip
from trial.errors import ApplicationError
from trial.models import SecurityEventKind


class TokenView(APIView):
    """Exchange a username and password for an API token."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"

    @extend_schema(request=serializers.TokenInput, responses=serializers.TokenOutput)
    def post(self, request: Request) -> Response:
        data = serializers.TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request._request, **data.validated_data)
        if user is None or not access.access_for(user, getattr(request, "trial", None)).is_staff_member:
            raise ApplicationError(
                "Unable to log in with those credentials.", errors={"non_field_errors": ["Invalid username or password."]}
            )
        token, _ = Token.objects.get_or_create(user=user)
        audit.security_event_record(kind=SecurityEventKind.TOKEN_ISSUED, user=user, ip_address=client_ip(request._request))
        return Response({"token": token.key})


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
