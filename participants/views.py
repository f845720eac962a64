"""Staff pages for the participant journey: thin views over participants.selectors and services.

Every write is one service call; a refusal (``ApplicationError``) is shown on the page and,
the services being atomic, leaves nothing written.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from followup import selectors as followup_selectors
from followup.services import schedule_for
from intervention import staff_views as intervention_pages
from participants import selectors, services
from participants.forms import (
    DeclineForm,
    EnrolForm,
    ParticipantFilterForm,
    ReconsentForm,
    ScreeningFilterForm,
    ScreeningForm,
    UnblindForm,
    WithdrawForm,
)
from participants.models import ConsentDocument, ContactDetails, Participant, Screening, ScreeningOutcome, WithdrawalScope
from safety import selectors as safety_selectors
from trial import access
from trial.access import Perm
from trial.errors import ApplicationError
from trial.models import Trial

PAGE_SIZE = 50


def _trial(request: HttpRequest, perm: Perm = Perm.VIEW_PARTICIPANTS) -> Trial:
    trial = getattr(request, "trial", None)
    if not trial:
        raise Http404("No trial is configured yet.")
    if not access.has_perm(request.user, perm, trial=trial):
        raise PermissionDenied("Your role may not do this.")
    return trial


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
def screening_log(request: HttpRequest) -> HttpResponse:
    trial = _trial(request)
    sites = access.visible_sites(request.user, trial=trial)
    form = ScreeningFilterForm(request.GET, sites=sites)
    screenings = selectors.screening_list(user=request.user, trial=trial, filters=form.filters())
    return render(
        request,
        "participants/screening_list.html",
        {
            "form": form,
            "page": Paginator(screenings, PAGE_SIZE).get_page(request.GET.get("page")),
            "may_screen": access.has_perm(request.user, Perm.SCREEN_ENROL, trial=trial),
            "tz": trial.timezone,
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
            messages.success(request, "Screening recorded.")
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
            messages.success(request, "Recorded: eligible, declined to take part.")
            return redirect("screening-detail", pk=pk)
    return _screening_page(request, trial, screening, decline_form=form)


@login_required
def screening_enrol(request: HttpRequest, pk: int) -> HttpResponse:
    trial = _trial(request, Perm.SCREEN_ENROL)
    screening = _screening(request, trial, pk)
    if (enrolled := _participant_of(screening)) is not None:
        messages.info(request, f"This person is already enrolled as {enrolled.study_id}.")
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
            messages.success(request, f"Enrolled as {participant.study_id}.")
            return redirect("participant-detail", pk=participant.pk)
    return render(request, "participants/enrol_form.html", {"form": form, "screening": screening})


# --- Participants ---------------------------------------------------------------------------


@login_required
def participant_list(request: HttpRequest) -> HttpResponse:
    trial = _trial(request)
    form = ParticipantFilterForm(request.GET, sites=access.visible_sites(request.user, trial=trial))
    participants = selectors.participant_list(user=request.user, trial=trial, filters=form.filters())
    return render(
        request,
        "participants/participant_list.html",
        {
            "form": form,
            "page": Paginator(participants, PAGE_SIZE).get_page(request.GET.get("page")),
            "sees_allocation": access.access_for(request.user, trial).sees_allocation,
            "tz": trial.timezone,
        },
    )


def _timeline(participant: Participant, consents: list[Any], withdrawals: list[Any]) -> list[tuple[str, Any]]:
    """The journey's steps with their dates; ``consents`` and ``withdrawals`` newest first."""
    oldest_first = list(reversed(consents))
    events: list[tuple[str, Any]] = []
    if participant.screening is not None:
        events.append(("Screened", participant.screening.screened_on))
    if oldest_first:
        events.append((f"Consented (v{oldest_first[0].document.version})", oldest_first[0].consented_at))
    events.append(("Enrolled", participant.enrolled_at))
    if participant.randomised_at:
        events.append(("Randomised", participant.randomised_at))
    events += [(f"Re-consented (v{c.document.version})", c.consented_at) for c in oldest_first[1:]]
    events += [(f"Withdrawn: {w.get_scope_display().lower()}", w.withdrawn_on) for w in reversed(withdrawals)]
    return events


def _participant_page(
    request: HttpRequest, trial: Trial, participant: Participant, reconsent_form: ReconsentForm | None = None
) -> HttpResponse:
    acc = access.access_for(request.user, trial)
    consents = list(participant.consents.select_related("document", "taken_by").order_by("-consented_at", "-id"))
    withdrawals = list(participant.withdrawals.select_related("recorded_by"))
    current = selectors.consent_document_current(trial=trial)
    needs_reconsent = bool(consents and current and consents[0].document_id != current.pk)
    sees_arm = access.can_see_arm(request.user, trial=trial, participant_id=participant.pk)
    may_reconsent = Perm.SCREEN_ENROL in acc.perms and needs_reconsent
    if reconsent_form is None and may_reconsent:
        reconsent_form = ReconsentForm(action=reverse("participant-reconsent", args=[participant.pk]))
    return render(
        request,
        "participants/participant_detail.html",
        {
            "participant": participant,
            "occurrences": list(schedule_for(participant=participant).select_related("response__entered_by")),
            "may_issue_link": Perm.ENTER_FOLLOWUP in acc.perms,
            "may_enter_followup": Perm.ENTER_FOLLOWUP in acc.perms,
            # Session messages exist only in the intervention arm: hidden from whoever may not see it.
            "participant_messages": list(
                followup_selectors.message_list(user=request.user, trial=trial, participant_id=participant.pk).filter(
                    **({} if sees_arm else {"session__isnull": True})
                )
            ),
            "calls": list(followup_selectors.call_list(user=request.user, trial=trial, participant_id=participant.pk)),
            "strata": participant.strata.all(),
            "consents": consents,
            "current_document": current,
            "needs_reconsent": needs_reconsent,
            "reconsent_form": reconsent_form if may_reconsent else None,
            "contact": ContactDetails.objects.filter(participant=participant).first()
            if Perm.VIEW_CONTACTS in acc.perms
            else None,
            "may_see_contacts": Perm.VIEW_CONTACTS in acc.perms,
            "sees_arm": sees_arm,
            "sessions_section": intervention_pages.participant_sessions(
                user=request.user, trial=trial, participant=participant, sees_arm=sees_arm
            ),
            "allocation": getattr(participant, "allocation", None) if sees_arm else None,
            "withdrawals": withdrawals,
            "timeline": _timeline(participant, consents, withdrawals),
            "may_randomise": Perm.RANDOMISE in acc.perms and not participant.is_randomised,
            "may_withdraw": Perm.WITHDRAW in acc.perms and participant.withdrawal_scope != WithdrawalScope.CONSENT,
            "may_unblind": Perm.EMERGENCY_UNBLIND in acc.perms and not sees_arm and participant.is_randomised,
            "tz": participant.site.timezone,
            **followup_selectors.outcome_panel(participant=participant),
            "may_adjudicate": Perm.MANAGE_QUERIES in acc.perms,
            "may_report_ae": Perm.REPORT_ADVERSE_EVENTS in acc.perms,
            "adverse_events": list(
                safety_selectors.adverse_event_list(user=request.user, trial=trial, filters={"participant": str(participant.pk)})
            ),
        },
    )


@login_required
def participant_detail(request: HttpRequest, pk: int) -> HttpResponse:
    trial = _trial(request)
    return _participant_page(request, trial, _participant(request, trial, pk))


@login_required
@require_POST
def participant_reconsent(request: HttpRequest, pk: int) -> HttpResponse:
    trial = _trial(request, Perm.SCREEN_ENROL)
    participant = _participant(request, trial, pk)
    form = ReconsentForm(request.POST, action=reverse("participant-reconsent", args=[pk]))
    if form.is_valid():
        try:
            consent = services.participant_reconsent(participant=participant, consent=form.consent(), by=request.user)
        except ApplicationError as exc:
            form.show_error(exc)
        else:
            messages.success(request, f"Re-consent recorded under v{consent.document.version}.")
            return redirect("participant-detail", pk=pk)
    return _participant_page(request, trial, participant, reconsent_form=form)


@login_required
def participant_randomise(request: HttpRequest, pk: int) -> HttpResponse:
    trial = _trial(request, Perm.RANDOMISE)
    participant = _participant(request, trial, pk)
    if request.method == "POST":
        try:
            allocation = services.participant_randomise(participant_id=participant.pk, by=request.user)
        except services.AlreadyRandomised as exc:
            messages.info(request, exc.message)
        except ApplicationError as exc:  # NotReady, ListExhausted, a locked trial, ...
            messages.error(request, exc.message)
        else:
            if access.can_see_arm(request.user, trial=trial, participant_id=participant.pk):
                messages.success(request, f"{participant.study_id} is randomised to: {allocation.arm.name}.")
            else:
                messages.success(request, f"{participant.study_id} is randomised. Your role is blinded to the arm.")
        return redirect("participant-detail", pk=pk)
    if participant.is_randomised:
        messages.info(request, f"{participant.study_id} is already randomised; an allocation is never repeated.")
        return redirect("participant-detail", pk=pk)
    return render(
        request,
        "participants/randomise_confirm.html",
        {"participant": participant, "missing": selectors.randomisation_missing(participant=participant, trial=trial)},
    )


@login_required
def participant_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    trial = _trial(request, Perm.WITHDRAW)
    participant = _participant(request, trial, pk)
    form = WithdrawForm(request.POST if request.method == "POST" else None, zone=participant.site.timezone)
    if form.is_bound and form.is_valid():
        try:
            services.participant_withdraw(
                participant=participant,
                scope=form.cleaned_data["scope"],
                reason=form.cleaned_data["reason"],
                by=request.user,
                withdrawn_on=form.cleaned_data["withdrawn_on"],
            )
        except ApplicationError as exc:
            form.show_error(exc)
        else:
            messages.success(request, f"Withdrawal of {participant.study_id} recorded.")
            return redirect("participant-detail", pk=pk)
    return render(request, "participants/withdraw_form.html", {"form": form, "participant": participant})


@login_required
def participant_unblind(request: HttpRequest, pk: int) -> HttpResponse:
    trial = _trial(request, Perm.EMERGENCY_UNBLIND)
    participant = _participant(request, trial, pk)
    if access.can_see_arm(request.user, trial=trial, participant_id=participant.pk):
        messages.info(request, f"You can already see the arm of {participant.study_id}.")
        return redirect("participant-detail", pk=pk)
    form = UnblindForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            services.participant_unblind(
                participant=participant,
                user=request.user,
                reason=form.cleaned_data["reason"],
                password=form.cleaned_data["password"],
            )
        except ApplicationError as exc:
            form.show_error(exc)
        else:
            messages.warning(
                request, f"{participant.study_id} is unblinded for you only; the trial's unblinding contacts have been told."
            )
            return redirect("participant-detail", pk=pk)
    return render(request, "participants/unblind_form.html", {"form": form, "participant": participant})
