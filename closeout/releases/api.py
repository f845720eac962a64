"""Dataset releases API: thin views over closeout.releases.services and selectors."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from closeout.models import Release, ReleaseVariant
from closeout.releases import selectors, services
from trial.access import Perm
from trial.api.permissions import requires
from trial.audit import client_ip
from trial.errors import NotFound
from trial.models import Trial
from trial.selectors import trial_get_current


class ReleaseCreateInput(serializers.Serializer):
    variant = serializers.ChoiceField(choices=ReleaseVariant.choices)


class ReleaseCreatedOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()


class ReleaseFileOutput(serializers.Serializer):
    name = serializers.CharField()
    rows = serializers.IntegerField(allow_null=True)
    sha256 = serializers.CharField()


class ReleaseOutput(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    variant = serializers.CharField()
    status = serializers.CharField()
    progress = serializers.IntegerField()
    lock_version = serializers.IntegerField(source="lock.version")
    files = ReleaseFileOutput(many=True)
    zip_name = serializers.CharField()
    zip_sha256 = serializers.CharField()
    zip_bytes = serializers.IntegerField()
    error = serializers.CharField()
    retry_of = serializers.IntegerField(source="retry_of_id", allow_null=True)
    created_by = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_created_by(self, release: Release) -> str:
        return str(release.created_by.get_username())


def _trial(request: Request) -> Trial:
    return getattr(request, "trial", None) or trial_get_current()


def _release(request: Request, pk: int) -> Release:
    release = selectors.release_get(trial=_trial(request), pk=pk)
    if release is None:
        raise NotFound("No such release.")
    return release


class ReleaseListCreate(ListAPIView):
    """The trial's dataset releases, newest first (GET); create one from the current lock (POST:
    202, built in the background; 409 before the database is locked)."""

    permission_classes = [requires(Perm.CREATE_RELEASE)]
    serializer_class = ReleaseOutput

    def get_queryset(self) -> QuerySet[Release]:
        if getattr(self, "swagger_fake_view", False):
            return Release.objects.none()
        return selectors.release_list(trial=_trial(self.request))

    @extend_schema(request=ReleaseCreateInput, responses={202: ReleaseCreatedOutput})
    def post(self, request: Request) -> Response:
        data = ReleaseCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        release = services.release_create(trial=_trial(request), variant=data.validated_data["variant"], by=request.user)
        return Response({"id": release.pk, "status": release.status}, status=status.HTTP_202_ACCEPTED)


class ReleaseDetail(APIView):
    """One release: status, progress while it builds, and its files with rows and SHA-256."""

    permission_classes = [requires(Perm.CREATE_RELEASE)]

    @extend_schema(responses=ReleaseOutput)
    def get(self, request: Request, pk: int) -> Response:
        return Response(ReleaseOutput(_release(request, pk)).data)


class ReleaseRetry(APIView):
    """Build a failed release again (202): a new release of the same lock and variant, byte-identical
    to what the failed build would have made; asking again returns the same retry. 409 unless failed."""

    permission_classes = [requires(Perm.CREATE_RELEASE)]

    @extend_schema(request=None, responses={202: ReleaseCreatedOutput})
    def post(self, request: Request, pk: int) -> Response:
        retry = services.release_retry(release=_release(request, pk), by=request.user)
        return Response({"id": retry.pk, "status": retry.status}, status=status.HTTP_202_ACCEPTED)


class ReleaseDownload(APIView):
    """The release's zip. Every download is recorded in the audit trail."""

    permission_classes = [requires(Perm.CREATE_RELEASE)]

    @extend_schema(responses={(200, "application/zip"): bytes})
    def get(self, request: Request, pk: int) -> Any:
        release = _release(request, pk)
        path = services.release_download(release=release, by=request.user, ip_address=client_ip(request._request))
        response = FileResponse(path.open("rb"), as_attachment=True, filename=release.zip_name, content_type="application/zip")
        response["X-Checksum-Sha256"] = release.zip_sha256
        return response
