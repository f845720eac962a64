"""The follow-up worklist: due, overdue and closing questionnaires, lost to follow-up, failed
messages, and the data queries each person is to answer."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import render

from closeout.queries.selectors import my_open_queries
from followup import selectors as followup_selectors
from followup.models import CallOutcome
from followup.views import _staff_trial as staff_trial
from trial import access, downloads

QUERY_ROWS = 200


SECTIONS = (
    ("closing_soon", "Closing soon"),
    ("overdue", "Overdue"),
    ("due_now", "Due now"),
    ("lost_to_followup", "Lost to follow-up"),
    ("failed_messages", "Message not sent"),
)


def _worklist_csv(work: followup_selectors.Worklist) -> HttpResponseBase:
    """The worklist as one CSV: a row per item with its section; contact details only for roles
    that see them, as on the page."""

    def rows() -> Any:
        for attribute, section in SECTIONS:
            for item in getattr(work, attribute):
                occurrence, call, message = item.occurrence, item.last_call, item.message
                yield [
                    section,
                    item.participant.study_id,
                    item.participant.site.code,
                    occurrence.label if occurrence else "",
                    occurrence.due_date.isoformat() if occurrence else "",
                    item.last_day.isoformat() if item.last_day else "",
                    item.days_overdue if item.days_overdue is not None else "",
                    item.missed_in_a_row or "",
                    f"{message.get_channel_display()}: {message.step}" if message else "",
                    call.get_outcome_display() if call else "",
                    *([item.contact.email, item.contact.mobile] if work.may_see_contacts and item.contact else []),
                    *(["", ""] if work.may_see_contacts and not item.contact else []),
                ]

    header = ["section", "study_id", "site", "questionnaire", "due_on", "last_day", "days_overdue", "missed_in_a_row"]
    header += ["message", "last_call"] + (["email", "mobile"] if work.may_see_contacts else [])
    return downloads.csv_download(name="worklist", header=header, rows=rows())


@login_required
def worklist(request: HttpRequest) -> HttpResponseBase:
    trial = staff_trial(request)
    sites = list(access.visible_sites(request.user, trial=trial).order_by("code"))
    site = None
    if code := request.GET.get("site", ""):
        site = next((s for s in sites if s.code == code), None)
        if site is None:
            raise Http404("No such site, or not one you work at.")
    work = followup_selectors.worklist_get(user=request.user, trial=trial, site=site)
    if downloads.wants_csv(request):
        return _worklist_csv(work)
    return render(
        request,
        "followup/staff/worklist.html",
        {
            "work": work,
            "csv_url": downloads.csv_url(request),
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
