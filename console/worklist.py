"""The follow-up worklist: due, overdue and closing questionnaires, lost to follow-up, failed
messages, and the data queries each person is to answer."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from closeout.queries.selectors import my_open_queries
from followup import selectors as followup_selectors
from followup.models import CallOutcome
from followup.views import _staff_trial as staff_trial
from trial import access

QUERY_ROWS = 200


@login_required
def worklist(request: HttpRequest) -> HttpResponse:
    trial = staff_trial(request)
    sites = list(access.visible_sites(request.user, trial=trial).order_by("code"))
    site = None
    if code := request.GET.get("site", ""):
        site = next((s for s in sites if s.code == code), None)
        if site is None:
            raise Http404("No such site, or not one you work at.")
    return render(
        request,
        "followup/staff/worklist.html",
        {
            "work": followup_selectors.worklist_get(user=request.user, trial=trial, site=site),
            # Data queries this person is to answer (assigned to them, or unassigned at their sites).
            "queries": list(
                my_open_queries(user=request.user, trial=trial).filter(**({"site": site} if site else {}))[:QUERY_ROWS]
            ),
            "sites": sites,
            "site": site,
            "outcomes": CallOutcome.choices,
            "failed_days": followup_selectors.FAILED_MESSAGE_DAYS,
            "here": request.get_full_path(),
            "tz": trial.timezone,
        },
    )
