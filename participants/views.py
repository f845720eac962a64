"""Staff pages for the participant journey: thin views over participants.selectors and services.

Every write is one service call; a refusal (``ApplicationError``) is shown on the page and,
the services being atomic, leaves nothing written.
"""

from __future__ import annotations

import zoneinfo
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from participants import blinding, selectors, services
from participants.forms import (
    DeclineForm,
    EnrolForm,
    ParticipantFilterForm,
    ScreeningFilterForm,
    ScreeningForm,
)
from participants.models import ConsentDocument, Participant, Screening, ScreeningOutcome
from trial import access, downloads, sorting
from trial.access import Perm
from trial.errors import ApplicationError
from trial.models import Trial

PAGE_SIZE = 50


def _trial(request: HttpRequest, perm: Perm = Perm.VIEW_PARTICIPANTS) -> Trial:
    return access.page_trial(request, perm)


def _screening(request: HttpRequest, trial: Trial, pk: int) -> Screening:
    screening = selectors.screening_list(user=request.user, trial=trial).filter(pk=pk).first()
    if screening is None:
        raise Http404("No such screening, or not one you can see.")
    return screening


def _participant(request: HttpRequest, trial: Trial, pk: int) -> Participant:
    participant = selectors.participant_get(user=request.user, trial=trial, pk=pk)
    if participant is None:
        raise Http404("No such participant, or not one you can see.")
    return participant


def _participant_of(screening: Screening) -> Participant | None:
    return getattr(screening, "participant", None)  # a missing reverse one-to-one raises AttributeError


# --- Screening ------------------------------------------------------------------------------


@login_required
def screening_log(request: HttpRequest) -> HttpResponseBase:
    trial = _trial(request)
    sites = access.visible_sites(request.user, trial=trial)
    form = ScreeningFilterForm(request.GET, sites=sites)
    screenings = selectors.screening_list(user=request.user, trial=trial, filters=form.filters())
    sort = sorting.sort_parse(request.GET.get("sort"), columns=selectors.SCREENING_SORTS)
    screenings = sorting.sort_apply(screenings, sort, columns=selectors.SCREENING_SORTS)
    if downloads.wants_csv(request):

        def rows(batch: list[Screening]) -> Any:
            for s in batch:
                participant = getattr(s, "participant", None)
                yield [
                    s.screened_on.isoformat(),
                    s.site.code,
                    s.get_outcome_display(),
                    s.referral or "",
                    participant.study_id if participant else "",
                ]

        return downloads.csv_download(
            name="screening-log",
            header=["screened_on", "site", "outcome", "referral", "study_id"],
            rows=downloads.in_chunks(screenings, rows),
        )
    return render(
        request,
        "participants/screening_list.html",
        {
            "form": form,
            "page": Paginator(screenings, PAGE_SIZE).get_page(request.GET.get("page")),
            "may_screen": access.has_perm(request.user, Perm.SCREEN_ENROL, trial=trial),
            "tz": trial.timezone,
            "csv_url": downloads.csv_url(request),
            "sort": sort,
            "sorts": sorting.sort_headers(request, sort, columns=selectors.SCREENING_SORTS),
        },
    )


@login_required
def screening_new(request: HttpRequest) -> HttpResponse:
    trial = _trial(request, Perm.SCREEN_ENROL)
    sites = access.visible_sites(request.user, trial=trial).filter(active=True)
    form = ScreeningForm(request.POST if request.method == "POST" else None, trial=trial, sites=sites)
    if form.is_bound and form.is_valid():
        try:
            screening = services.screening_record(
                site=form.cleaned_data["site"],
                answers=form.answers(),
                by=request.user,
                screened_on=form.cleaned_data["screened_on"],
                referral=form.cleaned_data.get("referral", ""),
            )
        except ApplicationError as exc:
            form.show_error(exc)
        else:
            messages.success(request, gettext("Screening recorded."))
            return redirect("screening-detail", pk=screening.pk)
    return render(request, "participants/screening_form.html", {"form": form})


def _screening_page(
    request: HttpRequest, trial: Trial, screening: Screening, decline_form: DeclineForm | None = None
) -> HttpResponse:
    criteria = {c.code: c for c in trial.eligibility.all()}
    order = list(criteria)
    answers = [
        {"criterion": criteria.get(code), "code": code, "answer": value}
        for code, value in sorted(
            screening.answers.items(), key=lambda kv: order.index(kv[0]) if kv[0] in criteria else len(order)
        )
    ]
    reasons = [criteria[code].text if code in criteria else code for code in screening.reasons]
    may_enrol = access.has_perm(request.user, Perm.SCREEN_ENROL, trial=trial)
    open_for_enrolment = screening.eligible and screening.outcome != ScreeningOutcome.ENROLLED
    if decline_form is None and may_enrol and screening.outcome == ScreeningOutcome.ELIGIBLE:
        decline_form = DeclineForm(action=reverse("screening-decline", args=[screening.pk]))
    return render(
        request,
        "participants/screening_detail.html",
        {
            "screening": screening,
            "participant": _participant_of(screening),
            "answers": answers,
            "reasons": reasons,
            "decline_form": decline_form,
            "may_enrol": may_enrol and open_for_enrolment,
        },
    )


@login_required
def screening_detail(request: HttpRequest, pk: int) -> HttpResponse:
    trial = _trial(request)
    return _screening_page(request, trial, _screening(request, trial, pk))


@login_required
@require_POST
def screening_decline(request: HttpRequest, pk: int) -> HttpResponse:
    trial = _trial(request, Perm.SCREEN_ENROL)
    screening = _screening(request, trial, pk)
    form = DeclineForm(request.POST, action=reverse("screening-decline", args=[pk]))
    if form.is_valid():
        try:
            services.screening_decline(screening=screening, reason=form.cleaned_data["reason"], by=request.user)
        except ApplicationError as exc:
            form.show_error(exc)
        else:
            messages.success(request, gettext("Recorded: eligible, declined to take part."))
            return redirect("screening-detail", pk=pk)
    return _screening_page(request, trial, screening, decline_form=form)


@login_required
def screening_enrol(request: HttpRequest, pk: int) -> HttpResponse:
    trial = _trial(request, Perm.SCREEN_ENROL)
    screening = _screening(request, trial, pk)
    if (enrolled := _participant_of(screening)) is not None:
        messages.info(request, gettext("This person is already enrolled as %(study_id)s.") % {"study_id": enrolled.study_id})
        return redirect("participant-detail", pk=enrolled.pk)
    form = EnrolForm(
        request.POST if request.method == "POST" else None,
        screening=screening,
        documents=ConsentDocument.objects.filter(trial=trial).order_by("-published_at", "-id"),
        current=selectors.consent_document_current(trial=trial),
    )
    if form.is_bound and form.is_valid():
        try:
            participant = services.participant_enrol(
                screening=screening, consent=form.consent(), strata=form.strata(), contact=form.contact(), by=request.user
            )
        except ApplicationError as exc:
            form.show_error(exc)
        else:
            messages.success(request, gettext("Enrolled as %(study_id)s.") % {"study_id": participant.study_id})
            return redirect("participant-detail", pk=participant.pk)
    return render(request, "participants/enrol_form.html", {"form": form, "screening": screening})


# --- Participants ---------------------------------------------------------------------------


@login_required
def participant_list(request: HttpRequest) -> HttpResponseBase:
    trial = _trial(request)
    contacts = access.has_perm(request.user, Perm.VIEW_CONTACTS, trial=trial)
    form = ParticipantFilterForm(request.GET, sites=access.visible_sites(request.user, trial=trial), contacts=contacts)
    chosen = selectors.participant_list(user=request.user, trial=trial, filters=form.filters(), columns=False)
    columns = selectors.participant_sorts(user=request.user, trial=trial)
    sort = sorting.sort_parse(request.GET.get("sort"), columns=columns)
    chosen = sorting.sort_apply(chosen, sort, columns=columns)
    participants = selectors.participant_columns(chosen, trial=trial)
    sees_allocation = access.access_for(request.user, trial).sees_allocation
    if downloads.wants_csv(request):
        zone = zoneinfo.ZoneInfo(trial.timezone)

        def rows(batch: list[Participant]) -> Any:
            for p in blinding.participants_as_seen(batch, user=request.user, trial=trial):
                allocation = getattr(p, "allocation", None) if sees_allocation else None
                yield [
                    p.study_id,
                    p.site.code,
                    p.get_status_display(),
                    p.get_withdrawal_scope_display() if p.withdrawal_scope else "",
                    p.randomised_at.astimezone(zone).date().isoformat() if p.randomised_at else "",
                    getattr(p, "consent_version", "") or "",
                    *([allocation.arm.name if allocation else ""] if sees_allocation else []),
                ]

        header = ["study_id", "site", "status", "withdrawal", "randomised_on", "consent_version"]
        return downloads.csv_download(
            name="participants",
            header=header + (["arm"] if sees_allocation else []),
            rows=downloads.in_chunks(participants, rows),
        )
    # The page's ids first, then its columns for those rows only.
    ids = Paginator(chosen.values_list("pk", flat=True), PAGE_SIZE).get_page(request.GET.get("page"))
    page: Page[Any] = Page(
        blinding.participants_as_seen(selectors.participant_page(trial=trial, ids=ids), user=request.user, trial=trial),
        ids.number,
        ids.paginator,
    )
    return render(
        request,
        "participants/participant_list.html",
        {
            "form": form,
            "page": page,
            "sees_allocation": sees_allocation,
            "tz": trial.timezone,
            "csv_url": downloads.csv_url(request),
            "sort": sort,
            "sorts": sorting.sort_headers(request, sort, columns=columns),
        },
    )
