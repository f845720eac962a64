"""The follow-up worklist: due, overdue and closing questionnaires, lost to follow-up, failed
messages, and the data queries each person is to answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Page
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse

from closeout.queries.selectors import my_newest_open_queries
from followup import selectors as followup_selectors
from followup.forms import WORKLIST_KINDS, WorklistFilterForm
from followup.views import _staff_trial as staff_trial
from trial import access, downloads

# Rows per worklist section on one page (each section pages on its own): the most urgent
# OVERVIEW_PAGE_SIZE of each when every section is shown, PAGE_SIZE when one section is chosen.
PAGE_SIZE = followup_selectors.WORKLIST_PAGE_SIZE
OVERVIEW_PAGE_SIZE = 10
# The data queries listed (newest first), with a link to all of them on the queries page.
QUERY_ROWS = 10


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


@dataclass(frozen=True)
class PageLink:
    number: int | None  # None: the gap between distant page numbers
    url: str = ""
    current: bool = False


def _page_param(kind: str) -> str:
    return f"page_{kind}"


def _page_links(request: HttpRequest, kind: str, page: Page[Any]) -> list[PageLink]:
    """Links to the first and last pages and those near this one, each keeping the filters and the
    other sections' pages."""
    last = page.paginator.num_pages
    near = {1, last, *range(max(page.number - 2, 1), min(page.number + 2, last) + 1)}
    links: list[PageLink] = []
    for number in sorted(near):
        if links and links[-1].number is not None and number - links[-1].number > 1:
            links.append(PageLink(None))
        query = request.GET.copy()
        query[_page_param(kind)] = str(number)
        links.append(PageLink(number, f"?{query.urlencode()}", number == page.number))
    return links


@login_required
def worklist(request: HttpRequest) -> HttpResponseBase:
    trial = staff_trial(request)
    sites = list(access.visible_sites(request.user, trial=trial).order_by("code"))
    site = None
    if code := request.GET.get("site", ""):
        site = next((s for s in sites if s.code == code), None)
        if site is None:
            raise Http404("No such site, or not one you work at.")
    form = WorklistFilterForm(request.GET, sites=sites)
    filters = form.filters()
    if downloads.wants_csv(request):
        return _worklist_csv(followup_selectors.worklist_get(user=request.user, trial=trial, site=site, filters=filters))
    work = followup_selectors.worklist_get(
        user=request.user,
        trial=trial,
        site=site,
        filters=filters,
        page_size=PAGE_SIZE if filters.kind else OVERVIEW_PAGE_SIZE,
        pages={kind: request.GET.get(_page_param(kind)) for kind in followup_selectors.SECTION_KINDS},
    )
    counts_query = request.GET.copy()
    for kind in followup_selectors.SECTION_KINDS:
        counts_query.pop(_page_param(kind), None)
    counts = []
    for kind, label in WORKLIST_KINDS:
        counts_query["kind"] = kind
        counts.append({"kind": kind, "label": label, "count": work.counts[kind], "url": f"?{counts_query.urlencode()}"})
    queries, queries_total = (
        ([], 0) if filters.kind else my_newest_open_queries(user=request.user, trial=trial, site=site, limit=QUERY_ROWS)
    )
    return render(
        request,
        "followup/staff/worklist.html",
        {
            "work": work,
            "form": form,
            "filtered": any((filters.kind, filters.due_from, filters.due_to, site)),
            "counts": counts,
            "page_links": {kind: _page_links(request, kind, page) for kind, page in work.pages.items()},
            "csv_url": downloads.csv_url(request),
            "section_urls": {c["kind"]: c["url"] for c in counts},
            "queries": queries,
            "queries_total": queries_total,
            "queries_url": f"{reverse('query-list')}?{urlencode({'mine': 'on', **({'site': site.code} if site else {})})}",
            "sites": sites,
            "site": site,
            "failed_days": followup_selectors.FAILED_MESSAGE_DAYS,
            "here_quoted": quote(request.get_full_path(), safe=""),  # each row's call link comes back here
            "tz": trial.timezone,
        },
    )
