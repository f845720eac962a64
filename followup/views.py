"""Participant-facing pages, reached by the personal link: no password, phone first; then the staff's
follow-up pages (worklist, calls, answers entered on a participant's behalf)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from followup import selectors, services
from followup.forms import CallForm
from followup.instruments import progress, visible_items
from followup.models import Occurrence, OccurrenceStatus, Outcome, ResponseSource
from followup.outcome_forms import AdjudicateForm
from messaging import services as messaging
from participants import hooks, links
from participants.models import Channel, ContactDetails, Participant
from participants.selectors import participant_get
from trial import access
from trial.access import Perm
from trial.errors import ApplicationError, LinkNotValid, StudyClosed
from trial.models import Trial


def _participant(token: str) -> Participant:
    participant = links.access_link_participant(token=token)
    if participant is None:
        if (former := links.access_link_replaced(token=token)) is not None:
            raise LinkNotValid(replaced=True, trial_name=former.site.trial.name, site_name=former.site.name)
        raise LinkNotValid()
    if participant.site.trial.data_locked_at is not None:
        raise StudyClosed
    return participant


@never_cache
def home(request: HttpRequest, token: str) -> HttpResponse:
    participant = _participant(token)
    return render(
        request,
        "followup/home.html",
        {
            "token": token,
            "participant": participant,
            "occurrences": list(services.open_occurrences(participant=participant)),
            "sections": hooks.home_sections(participant),
        },
    )


def _form_context(version: Any, answers: dict[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
    definition = version.definition
    shown = {item["code"] for item in visible_items(definition=definition, answers=answers)}
    done, total = progress(definition=definition, answers=answers)
    fields = []
    for item in definition["items"]:
        value = answers.get(item["code"])
        values = [str(v) for v in value] if isinstance(value, list) else ([] if value is None else [str(value)])
        fields.append(
            {
                "item": item,
                "value": "" if value is None or isinstance(value, list) else str(value),
                "values": values,
                "errors": errors.get(item["code"], []),
                "shown": item["code"] in shown,
                "show_if": item.get("show_if"),
                "choices": [(str(v), label) for v, label in item.get("choices", [])],
            }
        )
    return {"fields": fields, "done": done, "total": total, "percent": int(100 * done / total) if total else 0}


def _raw_answers(request: HttpRequest) -> dict[str, Any]:
    """The posted answers: one value per item, a list for items answered with several."""
    raw = {
        key: (request.POST.getlist(key) if len(request.POST.getlist(key)) > 1 else request.POST.get(key)) for key in request.POST
    }
    raw.pop("csrfmiddlewaretoken", None)
    return raw


@never_cache
def questionnaire(request: HttpRequest, token: str, pk: int) -> HttpResponse:
    participant = _participant(token)
    # Another participant's occurrence is simply not found: nothing about it is revealed.
    occurrence = Occurrence.objects.filter(pk=pk, participant=participant).select_related("participant__site__trial").first()
    if occurrence is None:
        raise Http404("No such questionnaire.")
    if occurrence.status == OccurrenceStatus.COMPLETED:
        return redirect("questionnaire-thanks", token=token, pk=pk)
    now = timezone.now()
    if occurrence.status in (OccurrenceStatus.CANCELLED, OccurrenceStatus.MISSED) or now >= occurrence.closes_at:
        return render(request, "followup/closed.html", {"token": token}, status=410)
    if now < occurrence.opens_at:
        return render(request, "followup/not_yet.html", {"token": token, "occurrence": occurrence}, status=404)
    try:
        version = services.instrument_for(occurrence=occurrence)
    except ApplicationError as exc:  # no questionnaire published under this code: a setup problem
        raise Http404(exc.message) from exc
    answers: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    message = ""
    if request.method == "POST":
        raw = _raw_answers(request)
        try:
            services.response_submit(occurrence=occurrence, raw=raw, source=ResponseSource.PARTICIPANT)
        except services.QuestionnaireClosed:
            return render(request, "followup/closed.html", {"token": token}, status=410)
        except ApplicationError as exc:
            answers, errors, message = raw, exc.errors, exc.message
        else:
            return redirect("questionnaire-thanks", token=token, pk=pk)
    context = {"token": token, "occurrence": occurrence, "version": version, "message": message}
    context.update(_form_context(version, answers, errors))
    return render(request, "followup/questionnaire.html", context, status=400 if errors else 200)


@never_cache
def thanks(request: HttpRequest, token: str, pk: int) -> HttpResponse:
    participant = _participant(token)
    occurrence = Occurrence.objects.filter(pk=pk, participant=participant, status=OccurrenceStatus.COMPLETED).first()
    if occurrence is None:
        raise Http404("No such questionnaire.")
    return render(request, "followup/thanks.html", {"token": token, "occurrence": occurrence})


@login_required
@require_http_methods(["GET", "POST"])
def staff_issue_link(request: HttpRequest, pk: int) -> HttpResponse:
    """Staff issue a participant a new personal link (shown once); the old link stops working. A GET
    asks first: every message already sent carries the old link."""
    trial = getattr(request, "trial", None)
    if not trial or not access.has_perm(request.user, Perm.ENTER_FOLLOWUP, trial=trial):
        raise PermissionDenied("Your role may not issue questionnaire links.")
    participant = participant_get(user=request.user, trial=trial, pk=pk)
    if participant is None:
        raise Http404("No such participant, or not one you can see.")
    if request.method == "GET":
        return render(request, "followup/staff/issue_link.html", {"participant": participant})
    try:
        token = links.access_link_issue(participant=participant, by=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        url = request.build_absolute_uri(reverse("participant-home", args=[token]))
        messages.success(request, f"New personal link for {participant.study_id} (the old one no longer works): {url}")
    return redirect("participant-detail", pk=pk)


@never_cache
def opt_out(request: HttpRequest, token: str, channel: str) -> HttpResponse:
    """Stop messages on one channel. A GET only asks (mail scanners open links); a POST does it."""
    participant = _participant(token)
    if channel not in Channel.values:
        raise Http404("No such kind of message.")
    label = Channel(channel).label
    done = False
    if request.method == "POST":
        try:
            messaging.message_opt_out(participant=participant, channel=channel)
        except ApplicationError as exc:
            return render(
                request, "followup/opt_out.html", {"token": token, "label": label, "error": exc.message}, status=exc.status
            )
        done = True
    return render(request, "followup/opt_out.html", {"token": token, "channel": channel, "label": label, "done": done})


# --- Staff pages: the follow-up worklist, calls, answers entered on a participant's behalf --------


def _staff_trial(request: HttpRequest) -> Trial:
    return access.page_trial(request, Perm.ENTER_FOLLOWUP, message="Your role may not do follow-up work.")


def _staff_participant(request: HttpRequest, trial: Trial, pk: int) -> Participant:
    participant = participant_get(user=request.user, trial=trial, pk=pk)
    if participant is None:
        raise Http404("No such participant, or not one you can see.")
    return participant


def _safe_next(request: HttpRequest, url: str | None) -> str | None:
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return url
    return None


@login_required
def call_record(request: HttpRequest, pk: int) -> HttpResponse:
    """Record a follow-up call (a page of its own, and the target of the worklist's row forms)."""
    trial = _staff_trial(request)
    participant = _staff_participant(request, trial, pk)
    form = CallForm(
        request.POST if request.method == "POST" else None,
        occurrences=selectors.call_occurrences(participant=participant),
        action=reverse("followup-call-record", args=[pk]),
        initial={"occurrence": request.GET.get("occurrence"), "next": request.GET.get("next", "")},
    )
    if form.is_bound and form.is_valid():
        try:
            call = services.call_log_record(
                participant=participant,
                occurrence=form.cleaned_data["occurrence"],
                outcome=form.cleaned_data["outcome"],
                note=form.cleaned_data["note"],
                by=request.user,
            )
        except ApplicationError as exc:
            form.show_error(exc)
        else:
            messages.success(request, f"Call to {participant.study_id} recorded: {call.get_outcome_display()}.")
            return redirect(_safe_next(request, form.cleaned_data["next"]) or reverse("participant-detail", args=[pk]))
    may_see_contacts = access.has_perm(request.user, Perm.VIEW_CONTACTS, trial=trial)
    return render(
        request,
        "followup/staff/call_form.html",
        {
            "form": form,
            "participant": participant,
            "calls": list(selectors.call_list(user=request.user, trial=trial, participant_id=participant.pk)),
            "may_see_contacts": may_see_contacts,
            "contact": ContactDetails.objects.filter(participant=participant).first() if may_see_contacts else None,
            "tz": participant.site.timezone,
        },
    )


def _entry_refusal(occurrence: Occurrence, now: Any) -> tuple[str, int] | None:
    """Why answers cannot be entered for this occurrence, with the page's status; None if they can."""
    if occurrence.status == OccurrenceStatus.COMPLETED:
        response = getattr(occurrence, "response", None)
        if response is None:
            return "This questionnaire is already completed.", 409
        who = (
            f"entered by {response.entered_by.get_full_name() or response.entered_by.get_username()}"
            if response.source == ResponseSource.STAFF and response.entered_by
            else response.get_source_display().lower()
        )
        when = timezone.localtime(response.submitted_at, zoneinfo.ZoneInfo(occurrence.participant.site.timezone))
        return f"This questionnaire was already answered on {when:%d %b %Y %H:%M} ({who}); answers are recorded once.", 409
    if occurrence.status == OccurrenceStatus.CANCELLED:
        reason = f": {occurrence.cancelled_reason}" if occurrence.cancelled_reason else ""
        return f"This questionnaire was cancelled{reason}. It cannot be answered.", 410
    if now < occurrence.opens_at:
        opens = timezone.localtime(occurrence.opens_at, zoneinfo.ZoneInfo(occurrence.participant.site.timezone))
        return f"This questionnaire is not open yet: it opens on {opens:%d %b %Y}.", 409
    return None


@login_required
@never_cache
def staff_entry(request: HttpRequest, pk: int, occurrence_pk: int) -> HttpResponse:
    """Staff enter a participant's answers on their behalf (phone follow-up): while the window is
    open or after it was missed. The response is recorded as staff entry, naming the staff member."""
    trial = _staff_trial(request)
    participant = _staff_participant(request, trial, pk)
    occurrence = (
        Occurrence.objects.filter(pk=occurrence_pk, participant=participant)
        .select_related("participant__site__trial", "response__entered_by")
        .first()
    )
    if occurrence is None:
        raise Http404("No such questionnaire for this participant.")
    context: dict[str, Any] = {"participant": participant, "occurrence": occurrence}
    refusal = _entry_refusal(occurrence, timezone.now())
    if refusal is not None:
        message, status = refusal
        return render(request, "followup/staff/entry_unavailable.html", {**context, "message": message}, status=status)
    try:
        version = services.instrument_for(occurrence=occurrence)
    except ApplicationError as exc:  # no questionnaire published under this code: a setup problem
        raise Http404(exc.message) from exc
    answers: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    message, status = "", 200
    if request.method == "POST":
        raw = _raw_answers(request)
        try:
            result = services.response_submit(occurrence=occurrence, raw=raw, source=ResponseSource.STAFF, by=request.user)
        except services.QuestionnaireClosed as exc:
            return render(request, "followup/staff/entry_unavailable.html", {**context, "message": exc.message}, status=410)
        except ApplicationError as exc:  # answers to correct, or a refusal such as a locked database
            answers, errors, message, status = raw, exc.errors, exc.message, exc.status
        else:
            label = f"{version.title} (month {occurrence.month})" if occurrence.month else version.title
            if result.created:
                messages.success(
                    request, f"{label} entered for {participant.study_id}, recorded as entered by you on their behalf."
                )
            else:
                messages.info(request, f"{label} was already answered; the answers recorded first are kept.")
            return redirect("participant-detail", pk=participant.pk)
    context.update(
        {
            "version": version,
            "message": message,
            "late": occurrence.status == OccurrenceStatus.MISSED or timezone.now() >= occurrence.closes_at,
            # The window closes at local midnight: its last day is the one before.
            "last_day": timezone.localtime(occurrence.closes_at, zoneinfo.ZoneInfo(participant.site.timezone)).date()
            - dt.timedelta(days=1),
            "tz": participant.site.timezone,
        }
    )
    context.update(_form_context(version, answers, errors))
    return render(request, "followup/staff/entry.html", context, status=status)


# --- Outcomes: derived, adjudicated, and the monthly answers they come from ---------------------


def _viewer(request: HttpRequest, perm: Perm) -> Trial:
    return access.page_trial(request, perm)


def _outcomes_context(request: HttpRequest, trial: Trial, participant: Participant) -> dict[str, Any]:
    return {
        "participant": participant,
        "may_adjudicate": access.has_perm(request.user, Perm.MANAGE_QUERIES, trial=trial),
        **selectors.outcome_panel(participant=participant),
    }


@login_required
def participant_outcomes(request: HttpRequest, pk: int) -> HttpResponse:
    """A participant's outcomes panel on a page of its own."""
    trial = _viewer(request, Perm.VIEW_PARTICIPANTS)
    participant = _staff_participant(request, trial, pk)
    return render(request, "followup/staff/outcomes.html", _outcomes_context(request, trial, participant))


@login_required
def outcome_adjudicate(request: HttpRequest, pk: int, code: str) -> HttpResponse:
    """A data manager overrides an outcome's event or date, with a reason (the derived value stays)."""
    trial = _viewer(request, Perm.MANAGE_QUERIES)
    participant = _staff_participant(request, trial, pk)
    outcome = Outcome.objects.filter(participant=participant, code=code).first()
    if outcome is None:
        raise Http404("No such outcome for this participant.")
    context = _outcomes_context(request, trial, participant)
    current = next(view for view in context["outcomes"] if view.code == code)
    form = AdjudicateForm(
        request.POST if request.method == "POST" else None,
        action=reverse("participant-outcome-adjudicate", args=[pk, code]),
        initial={"event": "yes" if current.final.event else "no", "event_date": current.final.event_date},
    )
    if form.is_bound and form.is_valid():
        try:
            services.outcome_adjudicate(outcome=outcome, by=request.user, **form.values())
        except ApplicationError as exc:
            form.show_error(exc)
        else:
            messages.success(request, f"{current.label} of {participant.study_id} adjudicated.")
            return redirect("participant-outcomes", pk=pk)
    return render(
        request,
        "followup/staff/outcome_adjudicate.html",
        {**context, "form": form, "outcome": current},
        status=400 if form.is_bound else 200,
    )
