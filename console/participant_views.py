"""The participant page: the journey, follow-up, sessions, outcomes and adverse events of one
participant, and the actions taken from it (re-consent, randomise, withdraw, unblind)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from followup import instruments
from followup import selectors as followup_selectors
from followup.baseline import BASELINE_INSTRUMENT
from followup.models import OccurrenceStatus
from followup.services import baseline_outstanding, schedule_for
from intervention import staff_views as intervention_pages
from participants import blinding, selectors, services
from participants.forms import ReconsentForm, UnblindForm, WithdrawForm
from participants.models import ContactDetails, Participant, WithdrawalScope
from participants.views import _participant, _trial
from safety import selectors as safety_selectors
from trial import access
from trial.access import Perm
from trial.errors import ApplicationError
from trial.models import Trial


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
    sees_arm = blinding.can_see_arm(request.user, trial=trial, participant_id=participant.pk)
    # A blinded role sees the participant as in any arm: no withdrawal from the intervention only.
    withdrawals = [w for w in participant.withdrawals.select_related("recorded_by") if sees_arm or not blinding.reveals_arm(w)]
    participant = blinding.as_seen(participant, visible=sees_arm)
    current = selectors.consent_document_current(trial=trial)
    needs_reconsent = bool(consents and current and consents[0].document_id != current.pk)
    may_reconsent = Perm.SCREEN_ENROL in acc.perms and needs_reconsent
    if reconsent_form is None and may_reconsent:
        reconsent_form = ReconsentForm(action=reverse("participant-reconsent", args=[participant.pk]))
    occurrences = list(
        schedule_for(participant=participant).select_related("response__entered_by", "response__instrument_version")
    )
    for occurrence in occurrences:
        response = getattr(occurrence, "response", None) if occurrence.status == OccurrenceStatus.COMPLETED else None
        if response is not None:
            # Questions and answer labels, not codes; a date of birth only for roles that see contact details.
            definition = response.instrument_version.definition
            occurrence.readable_answers = instruments.answers_readable(
                definition=definition, answers=response.answers, show_identifying=Perm.VIEW_CONTACTS in acc.perms
            )
            occurrence.readable_scores = instruments.scores_readable(definition=definition, scores=response.scores)
    return render(
        request,
        "participants/participant_detail.html",
        {
            "participant": participant,
            "occurrences": occurrences,
            "baseline": next((o for o in occurrences if o.instrument == BASELINE_INSTRUMENT), None),
            "baseline_required": trial.baseline_before_randomisation,
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
            messages.success(request, gettext("Re-consent recorded under v%(version)s.") % {"version": consent.document.version})
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
            if blinding.can_see_arm(request.user, trial=trial, participant_id=participant.pk):
                messages.success(
                    request,
                    gettext("%(study_id)s is randomised to: %(name)s.")
                    % {"study_id": participant.study_id, "name": allocation.arm.name},
                )
            else:
                messages.success(
                    request,
                    gettext("%(study_id)s is randomised. Your role is blinded to the arm.") % {"study_id": participant.study_id},
                )
        return redirect("participant-detail", pk=pk)
    if participant.is_randomised:
        messages.info(
            request,
            gettext("%(study_id)s is already randomised; an allocation is never repeated.") % {"study_id": participant.study_id},
        )
        return redirect("participant-detail", pk=pk)
    return render(
        request,
        "participants/randomise_confirm.html",
        {
            "participant": participant,
            "missing": selectors.randomisation_missing(participant=participant, trial=trial)
            + ([gettext("the baseline questionnaire is not complete")] if baseline_outstanding(participant=participant) else []),
        },
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
            messages.success(request, gettext("Withdrawal of %(study_id)s recorded.") % {"study_id": participant.study_id})
            return redirect("participant-detail", pk=pk)
    return render(request, "participants/withdraw_form.html", {"form": form, "participant": participant})


@login_required
def participant_unblind(request: HttpRequest, pk: int) -> HttpResponse:
    trial = _trial(request, Perm.EMERGENCY_UNBLIND)
    participant = _participant(request, trial, pk)
    if blinding.can_see_arm(request.user, trial=trial, participant_id=participant.pk):
        messages.info(request, gettext("You can already see the arm of %(study_id)s.") % {"study_id": participant.study_id})
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
                request,
                gettext("%(study_id)s is unblinded for you only; the trial's unblinding contacts have been told.")
                % {"study_id": participant.study_id},
            )
            return redirect("participant-detail", pk=pk)
    return render(request, "participants/unblind_form.html", {"form": form, "participant": participant})
