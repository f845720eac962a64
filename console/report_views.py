"""Reports on the trial's progress: the CONSORT flow as a page (SVG diagram and table), as CSV and
in the API. Thin: the counts come from ``console.reports``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console import charts, progress, reports
from console import selectors as console_selectors
from followup.models import OccurrenceStatus
from intervention.models import SessionStatus
from trial import access, downloads
from trial.access import Perm
from trial.api.permissions import requires
from trial.models import Trial
from trial.selectors import trial_get_current


def _trial(request: HttpRequest) -> Trial:
    trial = getattr(request, "trial", None)
    if trial is None:
        raise PermissionDenied("No trial is configured.")
    if not access.has_perm(request.user, Perm.VIEW_DASHBOARD, trial=trial):
        raise PermissionDenied("Your account has no role on this trial.")
    return trial


@login_required
def consort(request: HttpRequest) -> HttpResponse:
    trial = _trial(request)
    counts = reports.consort_counts(trial=trial, user=request.user)
    return render(
        request,
        "console/consort.html",
        {
            "trial": trial,
            "consort": counts,
            "diagram": reports.consort_diagram(counts),
            "excluded_rows": [(reports.EXCLUSION_LABELS[reason], n) for reason, n in counts.excluded.items()],
            "criterion_rows": [
                (counts.criterion_labels.get(code, code), n) for code, n in counts.ineligible_by_criterion.items() if n
            ],
            "as_of": timezone.now(),
            "trial_wide": access.access_for(request.user, trial).trial_wide,
        },
    )


@login_required
def consort_csv(request: HttpRequest) -> HttpResponse:
    trial = _trial(request)
    body = reports.consort_csv(reports.consort_counts(trial=trial, user=request.user))
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="consort-{timezone.localdate().isoformat()}.csv"'
    return response


_ARM = inline_serializer(
    "ConsortArm",
    {
        "code": serializers.CharField(),
        "name": serializers.CharField(),
        "allocated": serializers.IntegerField(),
        "received_intervention": serializers.IntegerField(),
        "discontinued_intervention": serializers.IntegerField(),
        "withdrawn": serializers.IntegerField(),
        "withdrawn_by_reason": serializers.DictField(child=serializers.IntegerField()),
        "lost_to_follow_up": serializers.IntegerField(),
        "analysed": serializers.IntegerField(),
        "excluded_from_analysis": serializers.IntegerField(),
    },
)
_COUNTS = serializers.DictField(child=serializers.IntegerField())


class ConsortReport(APIView):
    """The CONSORT flow over the sites the caller may see. ``arms`` (one entry per arm) only for
    roles that see allocations; blinded roles get the pooled counts and no per-arm key at all."""

    permission_classes = [requires(Perm.VIEW_DASHBOARD)]

    @extend_schema(
        responses=inline_serializer(
            "Consort",
            {
                "assessed": serializers.IntegerField(),
                "excluded": _COUNTS,
                "excluded_total": serializers.IntegerField(),
                "ineligible_by_criterion": _COUNTS,
                "randomised": serializers.IntegerField(),
                "withdrawn": serializers.IntegerField(),
                "withdrawn_by_reason": _COUNTS,
                "lost_to_follow_up": serializers.IntegerField(),
                "analysed": serializers.IntegerField(),
                "excluded_from_analysis": serializers.IntegerField(),
                "arms": serializers.ListField(child=_ARM, required=False),
            },
        )
    )
    def get(self, request: Request) -> Response:
        trial = getattr(request, "trial", None) or trial_get_current()
        return Response(reports.consort_counts(trial=trial, user=request.user).as_api())


@dataclass(frozen=True)
class _Grid:
    trial: Trial
    site: str
    status: str
    columns: list[reports.GridColumn]
    participants: Any


def _grid(request: HttpRequest) -> _Grid:
    """The grid asked for: the site code and status filters (anything unknown is ignored, never
    an error page), its columns and its participants."""
    trial = _trial(request)
    site = request.GET.get("site", "")
    status = request.GET.get("status", "")
    if site and not access.visible_sites(request.user, trial=trial).filter(code=site).exists():
        site = ""
    if status not in OccurrenceStatus.values:
        status = ""
    columns = reports.status_grid_columns(trial=trial, user=request.user)
    participants = reports.status_grid_participants(trial=trial, user=request.user, site=site, status=status)
    return _Grid(trial, site, status, columns, participants)


@login_required
def status_grid(request: HttpRequest) -> HttpResponseBase:
    if downloads.wants_csv(request):  # the same download as report-status-grid-csv
        return status_grid_csv(request)
    grid = _grid(request)
    trial, site, status, columns = grid.trial, grid.site, grid.status, grid.columns
    page = Paginator(grid.participants, reports.GRID_PAGE_SIZE).get_page(request.GET.get("page"))
    groups: list[tuple[str, int]] = []
    for column in columns:
        if groups and groups[-1][0] == column.group:
            groups[-1] = (column.group, groups[-1][1] + 1)
        else:
            groups.append((column.group, 1))
    return render(
        request,
        "console/status_grid.html",
        {
            "columns": columns,
            "groups": groups,
            "page": page,
            "rows": reports.status_grid_rows(participants=list(page.object_list), columns=columns),
            "sites": access.visible_sites(request.user, trial=trial).order_by("code"),
            "statuses": OccurrenceStatus.choices,
            "site": site,
            "status": status,
            "legend": _legend(columns),
            "query": urlencode({k: v for k, v in (("site", site), ("status", status)) if v}),
        },
    )


@login_required
def status_grid_csv(request: HttpRequest) -> StreamingHttpResponse:
    grid = _grid(request)
    response = StreamingHttpResponse(
        reports.status_grid_csv(participants=grid.participants, columns=grid.columns), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="status-grid-{timezone.localdate().isoformat()}.csv"'
    return response


def _legend(columns: list[reports.GridColumn]) -> list[tuple[str, str]]:
    statuses = dict(OccurrenceStatus.choices)
    if any(c.kind == "session" for c in columns):
        statuses |= {k: v for k, v in SessionStatus.choices if k not in statuses}
    seen: dict[str, str] = {}
    for code, label in statuses.items():
        letter = reports.CELL_LETTERS.get(code, "")
        seen[letter] = f"{seen[letter]} / {label}" if letter in seen else str(label)
    return list(seen.items())


@login_required
def dmc_report(request: HttpRequest) -> HttpResponseBase:
    """The open report for the data monitoring committee: pooled across arms for every role; as
    CSV with ``?format=csv`` (the same numbers, one per line)."""
    trial = _trial(request)
    user = request.user
    consort = reports.consort_counts(trial=trial, user=user, pooled=True)
    months = progress.recruitment_by_month(trial=trial, user=user)
    completion = progress.followup_completion(trial=trial, user=user)
    sites = console_selectors.site_counts(trial=trial, user=user)
    timepoints = progress.questionnaire_completeness(trial=trial, user=user)
    safety = progress.safety_summary(trial=trial, user=user)
    withdrawn_rows = [(reports.WITHDRAWAL_LABELS[k], n) for k, n in consort.withdrawn_by_reason.items()]
    if downloads.wants_csv(request):
        rows = _dmc_rows(trial, consort, withdrawn_rows, sites, months, completion, timepoints, safety)
        return downloads.csv_download(name="dmc-report", header=["section", "row", "measure", "value"], rows=rows)
    return render(
        request,
        "console/dmc_report.html",
        {
            "trial": trial,
            "as_of": timezone.now(),
            "consort": consort,
            "withdrawn_rows": withdrawn_rows,
            "sites": sites,
            "recruitment": months,
            "recruitment_chart": charts.recruitment_chart(months, target=trial.recruitment_target),
            "completion": completion,
            "completion_chart": charts.completion_chart(completion),
            "completed_total": sum(c.completed for c in completion),
            "closed_total": sum(c.closed for c in completion),
            "timepoints": timepoints,
            "safety": safety,
            "csv_url": downloads.csv_url(request),
        },
    )


def _dmc_rows(
    trial: Trial,
    consort: reports.Consort,
    withdrawn_rows: list[tuple[str, int]],
    sites: list[console_selectors.SiteCounts],
    months: list[progress.MonthCount],
    completion: list[progress.Completion],
    timepoints: list[progress.QuestionnaireCompleteness],
    safety: list[progress.SafetyRow],
) -> list[tuple[Any, ...]]:
    """The report's numbers in long form (section, row, measure, value), pooled: never by arm."""
    rows: list[tuple[Any, ...]] = [
        ("recruitment", "trial", "target", trial.recruitment_target),
        ("recruitment", "trial", "screened", consort.assessed),
        ("recruitment", "trial", "not_randomised", consort.excluded_total),
        ("recruitment", "trial", "randomised", consort.randomised),
    ]
    for row in sites:
        rows += [
            ("sites", row.site.code, "enrolled", row.participants),
            ("sites", row.site.code, "randomised", row.randomised),
            ("sites", row.site.code, "withdrawn", row.withdrawn),
        ]
    for month in months:
        label = month.month.strftime("%Y-%m")
        rows += [
            ("recruitment_by_month", label, "randomised", month.randomised),
            ("recruitment_by_month", label, "cumulative", month.cumulative),
            ("recruitment_by_month", label, "target", month.target),
        ]
    rows += [
        ("retention", "trial", "randomised", consort.randomised),
        ("retention", "trial", "withdrew_from_followup", consort.withdrawn),
        *(("retention", str(label), "withdrew_from_followup", n) for label, n in withdrawn_rows),
        ("retention", "trial", "lost_to_follow_up", consort.lost_to_follow_up),
        ("retention", "trial", "primary_outcome_available", consort.analysed),
    ]
    for point in completion:
        rows += [
            ("monthly_completion", point.month, "completed", point.completed),
            ("monthly_completion", point.month, "closed", point.closed),
        ]
    for t in timepoints:
        rows += [
            ("timepoints", f"{t.instrument} month {t.month}", "completed", t.completed),
            ("timepoints", f"{t.instrument} month {t.month}", "closed", t.closed),
        ]
    for r in safety:
        rows += [
            ("adverse_events", r.category, "events", r.events),
            ("adverse_events", r.category, "serious", r.serious),
            ("adverse_events", r.category, "participants", r.participants),
        ]
    return rows
