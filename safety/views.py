"""Safety pages: adverse events (list, record, review, follow up, dismiss) and the safety overview.

Thin views over safety.selectors and services. No page names an arm, except the
events-by-arm table, which only roles that see allocations get. A report made at an education
session reveals the intervention arm, so to anyone else it reads as entered by staff.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from participants import blinding
from participants.models import Participant
from participants.selectors import participant_get
from safety import selectors, services
from safety.forms import AdverseEventForm, AEFilterForm, DismissForm, FollowUpForm
from safety.models import AdverseEvent, AEFollowUp, AESource, AEStatus, SafetyPolicy, SeriousCriterion
from safety.selectors import SaeDeadlines
from trial import access, downloads, sorting
from trial.access import Perm
from trial.errors import ApplicationError, Conflict
from trial.models import Trial

PAGE_SIZE = 50
REVIEWABLE = (AEStatus.OPEN, AEStatus.RESOLVED)


def _trial(request: HttpRequest) -> Trial:
    return access.page_trial(request, Perm.REPORT_ADVERSE_EVENTS, message="Your role does not work with adverse events.")


@dataclass(frozen=True)
class EventRow:
    event: AdverseEvent
    category_label: str
    source_label: str
    recorded_by: str
    arm_visible: bool
    deadlines: SaeDeadlines | None


class _Rows:
    """Turns events into rows: category labels, the source as the user may see it, deadlines."""

    def __init__(self, request: HttpRequest, trial: Trial) -> None:
        self.policy: SafetyPolicy = services.safety_policy(trial=trial)
        self.labels = {code: label for code, label in self.policy.categories}
        self.visible_for = blinding.unblinded_participant_ids(request.user, trial=trial)

    def row(self, event: AdverseEvent) -> EventRow:
        arm_visible = self.visible_for is None or event.participant_id in self.visible_for
        seen = blinding.as_seen(event, visible=arm_visible)
        return EventRow(
            event=event,
            category_label=self.labels.get(event.category, event.category),
            source_label=str(AESource(seen.source).label),
            recorded_by=blinding.staff_label(event.reported_by, visible=arm_visible),
            arm_visible=arm_visible,
            deadlines=selectors.sae_deadlines(
                event=event, policy=self.policy, first_followup_at=getattr(event, "first_followup_at", None)
            ),
        )

    def rows(self, events: Any) -> list[EventRow]:
        return [self.row(e) for e in events]


def _event(request: HttpRequest, trial: Trial, pk: int) -> AdverseEvent:
    event = (
        selectors.adverse_event_list(user=request.user, trial=trial)
        .filter(pk=pk)
        .prefetch_related(
            Prefetch("followups", queryset=AEFollowUp.objects.select_related("recorded_by").order_by("recorded_at", "pk"))
        )
        .first()
    )
    if event is None:
        raise Http404("No such adverse event, or not one you can see.")
    return event


def _participant(request: HttpRequest, trial: Trial, pk: int) -> Participant:
    participant = participant_get(user=request.user, trial=trial, pk=pk)
    if participant is None:
        raise Http404("No such participant, or not one you can see.")
    return participant


# --- The overview and the list ------------------------------------------------------------------


@login_required
def safety_overview(request: HttpRequest) -> HttpResponse:
    trial = _trial(request)
    rows = _Rows(request, trial)
    counts = selectors.adverse_event_counts(user=request.user, trial=trial)
    deadline_counts = selectors.sae_deadline_counts(user=request.user, trial=trial, policy=rows.policy)
    by_arm = selectors.safety_by_arm(user=request.user, trial=trial)
    categories = list(rows.policy.categories)
    arm_rows = (
        None
        if by_arm is None
        else [{"summary": s, "by_category": [s.by_category.get(code, 0) for code, _ in categories]} for s in by_arm]
    )
    # The deadlines are counted in SQL over every serious event; the table shows them a page at a
    # time (500 at 50,000 participants made the page half a megabyte), each row built for its page.
    serious = selectors.adverse_event_list(user=request.user, trial=trial, filters={"serious": "true"})
    page = Paginator(serious, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "safety/overview.html",
        {
            "counts": counts,
            "page": page,
            "serious_rows": rows.rows(page.object_list),
            "deadline_counts": deadline_counts,
            "policy": rows.policy,
            "categories": categories,
            "arm_rows": arm_rows,
            "tz": trial.timezone,
        },
    )


@login_required
def event_list(request: HttpRequest) -> HttpResponseBase:
    trial = _trial(request)
    rows = _Rows(request, trial)
    form = AEFilterForm(request.GET, sites=access.visible_sites(request.user, trial=trial).order_by("code"), policy=rows.policy)
    events = selectors.adverse_event_list(user=request.user, trial=trial, filters=form.filters())
    sort = sorting.sort_parse(request.GET.get("sort"), columns=selectors.EVENT_SORTS)
    events = sorting.sort_apply(events, sort, columns=selectors.EVENT_SORTS)
    if downloads.wants_csv(request):
        zone = zoneinfo.ZoneInfo(trial.timezone)

        def lines(batch: list[AdverseEvent]) -> Any:
            for row in rows.rows(batch):
                e = row.event
                yield [
                    e.pk,
                    e.participant.study_id,
                    e.participant.site.code,
                    e.aware_at.astimezone(zone).date().isoformat(),
                    e.onset_date.isoformat() if e.onset_date else "",
                    row.category_label if e.category else "",
                    e.get_severity_display() if e.severity else "",
                    "yes" if e.serious else "no",
                    e.get_status_display(),
                    row.source_label,
                    row.recorded_by,
                ]

        header = ["event", "study_id", "site", "aware_on", "onset_on", "category", "severity", "serious", "status", "source"]
        return downloads.csv_download(
            name="adverse-events", header=[*header, "recorded_by"], rows=downloads.in_chunks(events, lines)
        )
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "safety/event_list.html",
        {
            "form": form,
            "page": page,
            "rows": rows.rows(page.object_list),
            "pending": rows.rows(selectors.pending_reports(user=request.user, trial=trial)),
            "tz": trial.timezone,
            "csv_url": downloads.csv_url(request),
            "sort": sort,
            "sorts": sorting.sort_headers(request, sort, columns=selectors.EVENT_SORTS),
        },
    )


# --- One event ----------------------------------------------------------------------------------


def _detail_page(
    request: HttpRequest,
    trial: Trial,
    event: AdverseEvent,
    *,
    followup_form: FollowUpForm | None = None,
    dismiss_form: DismissForm | None = None,
    status: int = 200,
) -> HttpResponse:
    row = _Rows(request, trial).row(event)
    if followup_form is None and event.status in REVIEWABLE:
        followup_form = FollowUpForm(action=reverse("adverse-event-followup", args=[event.pk]))
    if dismiss_form is None and event.status == AEStatus.PENDING:
        dismiss_form = DismissForm(action=reverse("adverse-event-dismiss", args=[event.pk]))
    return render(
        request,
        "safety/event_detail.html",
        {
            "row": row,
            "event": event,
            "participant": event.participant,
            "session": event.session if row.arm_visible and event.session_id else None,
            "serious_criteria": [SeriousCriterion(c).label for c in event.serious_criteria if c in SeriousCriterion.values],
            "followups": [(f, blinding.staff_label(f.recorded_by, visible=row.arm_visible)) for f in event.followups.all()],
            "followup_form": followup_form if event.status in REVIEWABLE else None,
            "dismiss_form": dismiss_form if event.status == AEStatus.PENDING else None,
            "history_url": reverse("record-history", args=["safety", "adverseevent", event.pk]),
            "tz": event.participant.site.timezone,
        },
        status=status,
    )


@login_required
def event_detail(request: HttpRequest, pk: int) -> HttpResponse:
    trial = _trial(request)
    return _detail_page(request, trial, _event(request, trial, pk))


@login_required
def event_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Record an adverse event of a participant."""
    trial = _trial(request)
    participant = _participant(request, trial, pk)
    form = AdverseEventForm(
        request.POST if request.method == "POST" else None,
        policy=services.safety_policy(trial=trial),
        action=reverse("adverse-event-new", args=[pk]),
    )
    status = 200
    if form.is_bound:
        status = 400
        if form.is_valid():
            try:
                event = services.adverse_event_record(participant=participant, data=form.data_input(), by=request.user)
            except ApplicationError as exc:
                form.show_error(exc)
                status = exc.status
            else:
                note = " The safety contacts are alerted." if event.serious else ""
                messages.success(
                    request,
                    gettext("Adverse event of %(study_id)s recorded.%(note)s") % {"study_id": participant.study_id, "note": note},
                )
                return redirect("adverse-event-detail", pk=event.pk)
    return render(
        request,
        "safety/event_form.html",
        {"form": form, "participant": participant, "event": None, "title": f"New adverse event of {participant.study_id}"},
        status=status,
    )


@login_required
def event_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change an event, with a reason; for a pending questionnaire report, complete the review."""
    trial = _trial(request)
    event = _event(request, trial, pk)
    if event.status == AEStatus.DISMISSED:
        messages.info(request, gettext("This report was dismissed; record a new event instead."))
        return redirect("adverse-event-detail", pk=pk)
    pending = event.status == AEStatus.PENDING
    form = AdverseEventForm(
        request.POST if request.method == "POST" else None,
        policy=services.safety_policy(trial=trial),
        action=reverse("adverse-event-edit", args=[pk]),
        initial=AdverseEventForm.initial_for(event),
        with_reason="Review note (how the report was checked)" if pending else "Reason for the change",
    )
    form.helper.inputs[0].value = "Complete the report" if pending else "Save the changes"
    status = 200
    if form.is_bound:
        status = 400
        if form.is_valid():
            try:
                services.adverse_event_update(
                    event=event, data=form.data_input(), reason=form.cleaned_data["reason"], by=request.user
                )
            except ApplicationError as exc:
                form.show_error(exc)
                status = exc.status
            else:
                messages.success(request, "Report completed." if pending else "Adverse event updated.")
                return redirect("adverse-event-detail", pk=pk)
    title = f"Review the report of {event.participant.study_id}" if pending else f"Change adverse event {event.pk}"
    return render(
        request,
        "safety/event_form.html",
        {"form": form, "participant": event.participant, "event": event, "title": title},
        status=status,
    )


@login_required
@require_POST
def event_followup(request: HttpRequest, pk: int) -> HttpResponse:
    trial = _trial(request)
    event = _event(request, trial, pk)
    form = FollowUpForm(request.POST, action=reverse("adverse-event-followup", args=[pk]))
    status = 400
    if form.is_valid():
        try:
            services.adverse_event_followup_add(
                event=event,
                note=form.cleaned_data["note"],
                outcome=form.cleaned_data["outcome"],
                resolution_date=form.cleaned_data["resolution_date"],
                by=request.user,
            )
        except Conflict as exc:  # the event is not in a state to follow up: nothing to correct in the form
            messages.error(request, exc.message)
            status = exc.status
        except ApplicationError as exc:
            form.show_error(exc)
            status = exc.status
        else:
            messages.success(request, gettext("Follow-up added."))
            return redirect("adverse-event-detail", pk=pk)
    return _detail_page(request, trial, event, followup_form=form, status=status)


@login_required
@require_POST
def event_dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    trial = _trial(request)
    event = _event(request, trial, pk)
    form = DismissForm(request.POST, action=reverse("adverse-event-dismiss", args=[pk]))
    status = 400
    if form.is_valid():
        try:
            services.adverse_event_dismiss(event=event, reason=form.cleaned_data["reason"], by=request.user)
        except Conflict as exc:
            messages.error(request, exc.message)
            status = exc.status
        except ApplicationError as exc:
            form.show_error(exc)
            status = exc.status
        else:
            messages.success(request, gettext("Report dismissed: not an adverse event."))
            return redirect("adverse-event-detail", pk=pk)
    return _detail_page(request, trial, event, dismiss_form=form, status=status)
