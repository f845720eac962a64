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
from django.utils import formats, timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from rest_framework.throttling import SimpleRateThrottle

from followup import selectors, services
from followup.forms import CallForm
from followup.instruments import (
    Step,
    answers_readable,
    clean_answers,
    localised,
    progress,
    resume_step,
    step_clean,
    steps,
    translation_for,
    visible_items,
    visible_steps,
)
from followup.models import Occurrence, OccurrenceStatus, Outcome, ResponseSource
from followup.outcome_forms import AdjudicateForm
from messaging import services as messaging
from participants import hooks, links
from participants.models import Channel, ContactDetails, Participant
from participants.selectors import participant_get, participant_language
from trial import access
from trial.access import Perm
from trial.errors import ApplicationError, LinkNotValid, StudyClosed
from trial.models import Trial
from trial.selectors import contact_sites


def _participant(token: str) -> Participant:
    """The link's participant; their pages are in their language from here on (the request's)."""
    participant = links.access_link_participant(token=token)
    if participant is None:
        if (former := links.access_link_replaced(token=token)) is not None:
            translation.activate(participant_language(former))
            raise LinkNotValid(
                replaced=True, trial_name=former.site.trial.name, site_name=former.site.name, site=former.site, token=token
            )
        raise LinkNotValid()
    translation.activate(participant_language(participant))
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
            "drafts": selectors.draft_occurrence_ids(participant=participant),
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


def _answerable(request: HttpRequest, token: str, pk: int) -> tuple[Occurrence, Any] | HttpResponse:
    """The participant's occurrence and its questionnaire version, if it can be answered now; else the
    page to show instead (its thanks, closed or not yet open)."""
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
    return occurrence, version


def _saved(occurrence: Occurrence) -> tuple[dict[str, Any], int]:
    draft = selectors.draft_get(occurrence=occurrence)
    return (dict(draft.answers), draft.step) if draft is not None else ({}, 0)


def _step_url(token: str, pk: int, step: Step | None, *, check: bool = False) -> str:
    if step is None:
        return reverse("questionnaire-review", args=[token, pk])
    return reverse("questionnaire-step", args=[token, pk, step.number]) + ("?check=1" if check else "")


def _field_id(item: Any) -> str:
    """The id of the field an error links to: the first option of a group, or the input itself."""
    if item["type"] == "yes_no":
        return f"{item['code']}-yes"
    if item["type"] in ("choice", "multi_choice"):
        return f"{item['code']}-1"
    return str(item["code"])


def _display(version: Any) -> dict[str, Any]:
    """The questionnaire as it reads in the active language (the participant's): its own text where
    it has none in that language. Logic (skip rules, steps) reads ``version.definition``."""
    display = localised(definition=version.definition, language=translation.get_language() or "")
    display["title"] = translation_for(definition=version.definition, language=translation.get_language() or "").get(
        "title", version.title
    )
    return display


def _instructions(version: Any, display: dict[str, Any], step: Step) -> str:
    """The step's shared instructions in the active language: the help of its questions, translated."""
    if not step.instructions:
        return ""
    shown = {item["code"]: item for item in display["items"]}
    for item in version.definition["items"]:
        if item["code"] in step.codes and item.get("help") == step.instructions:
            return str(shown[item["code"]].get("help") or step.instructions)
    return step.instructions


def _step_fields(version: Any, step: Step, answers: dict[str, Any], errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    definition = version.definition
    shown = {item["code"] for item in visible_items(definition=definition, answers=answers)}
    items = {item["code"]: item for item in definition["items"]}
    display = {item["code"]: item for item in _display(version)["items"]}
    fields = []
    for code in step.codes:
        item = display[code]
        value = answers.get(code)
        values = [str(v) for v in value] if isinstance(value, list) else ([] if value is None else [str(v) for v in [value]])
        condition = item.get("show_if")
        fields.append(
            {
                "item": item,
                "id": _field_id(item),
                "value": "" if value is None or isinstance(value, list) else str(value),
                "values": values,
                "errors": errors.get(code, []),
                "shown": code in shown,
                # Shown and hidden in the browser as the participant answers, when its question is on this screen.
                "show_if": condition if condition and condition["item"] in step.codes else None,
                "help": "" if items[code].get("help", "") == step.instructions else item.get("help", ""),
                "choices": [(str(v), label) for v, label in item.get("choices", [])],
            }
        )
    return fields


def _progress(version: Any, answers: dict[str, Any], step: Step | None) -> dict[str, Any]:
    """Where the participant is: "Step 3 of 9", the review being the last step."""
    shown = visible_steps(definition=version.definition, answers=answers)
    total = len(shown) + 1
    position = next((n for n, s in enumerate(shown, start=1) if step is not None and s.number == step.number), total)
    return {
        "position": position,
        "total": total,
        "progress_label": gettext("Step %(position)s of %(total)s") % {"position": position, "total": total},
        "previous": next((s for s in reversed(shown) if step is None or s.number < step.number), None),
    }


def _render_step(
    request: HttpRequest,
    token: str,
    occurrence: Occurrence,
    version: Any,
    step: Step,
    answers: dict[str, Any],
    errors: dict[str, list[str]],
    *,
    message: str = "",
    status: int = 200,
    from_review: bool = False,
) -> HttpResponse:
    fields = _step_fields(version, step, answers, errors)
    display = _display(version)
    context = {
        "title": display["title"],
        "intro": display.get("intro", ""),
        "instructions": _instructions(version, display, step),
        "token": token,
        "participant": occurrence.participant,
        "occurrence": occurrence,
        "version": version,
        "step": step,
        "fields": fields,
        "error_list": [(f, message) for f in fields for message in f["errors"]],
        "message": message,
        "first": step.number == steps(definition=version.definition)[0].number,
        "from_review": from_review,
        **_progress(version, answers, step),
    }
    return render(request, "followup/wizard_step.html", context, status=status)


@never_cache
def questionnaire(request: HttpRequest, token: str, pk: int) -> HttpResponse:
    """The participant's questionnaire: opening it goes on where they stopped (from any device),
    at the first step not yet done, or at the review. A POST of every answer at once (a page from
    before the questionnaire had steps) is still recorded."""
    found = _answerable(request, token, pk)
    if isinstance(found, HttpResponse):
        return found
    occurrence, version = found
    if request.method == "POST":
        raw = _raw_answers(request)
        try:
            services.response_submit(occurrence=occurrence, raw=raw, source=ResponseSource.PARTICIPANT)
        except services.QuestionnaireClosed:
            return render(request, "followup/closed.html", {"token": token}, status=410)
        except ApplicationError as exc:
            # Show the first step with something to correct, with every answer sent kept.
            failing = next(
                (s for s in visible_steps(definition=version.definition, answers=raw) if set(s.codes) & set(exc.errors)),
                steps(definition=version.definition)[0],
            )
            return _render_step(request, token, occurrence, version, failing, raw, exc.errors, message=exc.message, status=400)
        return redirect("questionnaire-thanks", token=token, pk=pk)
    answers, saved_through = _saved(occurrence)
    step = resume_step(definition=version.definition, answers=answers, saved_through=saved_through)
    return redirect(_step_url(token, pk, step))


@never_cache
@require_http_methods(["GET", "POST"])
def questionnaire_step(request: HttpRequest, token: str, pk: int, number: int) -> HttpResponse:
    """One step of the participant's questionnaire. Next saves its answers on the server (checked
    with the questionnaire's rules, restricted to this step) and goes to the next step shown; Back
    saves what is valid and goes back."""
    found = _answerable(request, token, pk)
    if isinstance(found, HttpResponse):
        return found
    occurrence, version = found
    definition = version.definition
    try:
        step = services.draft_step(definition=definition, number=number)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    answers, _saved_through = _saved(occurrence)
    from_review = request.GET.get("from") == "review" or request.POST.get("from") == "review"
    if request.method == "GET":
        if step.number not in {s.number for s in visible_steps(definition=definition, answers=answers)}:
            # Skipped by the answers given: the next step shown after it.
            later = next((s for s in visible_steps(definition=definition, answers=answers) if s.number > step.number), None)
            return redirect(_step_url(token, pk, later))
        errors: dict[str, list[str]] = {}
        if request.GET.get("check"):
            _kept, errors = step_clean(definition=definition, step=step, answers=answers, raw=answers)
        message = gettext("Some answers need your attention.") if errors else ""
        return _render_step(request, token, occurrence, version, step, answers, errors, message=message, from_review=from_review)
    raw = _raw_answers(request)
    going_back = raw.pop("action", "next") == "back"
    raw.pop("from", None)
    try:
        saved = services.draft_save(occurrence=occurrence, step=step.number, raw=raw, partial=going_back)
    except services.QuestionnaireClosed:
        return render(request, "followup/closed.html", {"token": token}, status=410)
    except ApplicationError as exc:
        merged = {code: value for code, value in answers.items() if code not in step.codes} | raw
        status = 400 if exc.errors else exc.status
        return _render_step(
            request,
            token,
            occurrence,
            version,
            step,
            merged,
            exc.errors,
            message=exc.message,
            status=status,
            from_review=from_review,
        )
    answers = saved.draft.answers
    shown = visible_steps(definition=definition, answers=answers)
    if going_back:
        previous = next((s for s in reversed(shown) if s.number < step.number), None)
        return redirect(_step_url(token, pk, previous or step))
    if from_review:
        # Back to the review once every step is done; otherwise on to what is left.
        return redirect(_step_url(token, pk, resume_step(definition=definition, answers=answers, saved_through=saved.draft.step)))
    later = next((s for s in shown if s.number > step.number), None)
    return redirect(_step_url(token, pk, later))


@never_cache
@require_http_methods(["GET", "POST"])
def questionnaire_review(request: HttpRequest, token: str, pk: int) -> HttpResponse:
    """Every answer in words, each step with a link to change it, then Send."""
    found = _answerable(request, token, pk)
    if isinstance(found, HttpResponse):
        return found
    occurrence, version = found
    definition = version.definition
    answers, saved_through = _saved(occurrence)
    pending = resume_step(definition=definition, answers=answers, saved_through=saved_through)
    if pending is not None:  # something is left to answer or correct
        return redirect(_step_url(token, pk, pending, check=pending.number <= saved_through))
    if request.method == "POST":
        try:
            services.draft_submit(occurrence=occurrence)
        except services.QuestionnaireClosed:
            return render(request, "followup/closed.html", {"token": token}, status=410)
        except ApplicationError as exc:
            if exc.errors:  # cannot happen after the check above, unless the rules changed meanwhile
                return redirect(_step_url(token, pk, pending, check=True))
            messages.error(request, exc.message)
            return redirect("questionnaire-review", token=token, pk=pk)
        return redirect("questionnaire-thanks", token=token, pk=pk)
    clean, _errors = clean_answers(definition=definition, raw=answers)
    display = _display(version)
    readable = {row.code: row for row in answers_readable(definition=display, answers=clean, show_identifying=True)}
    shown = {item["code"]: item for item in visible_items(definition=display, answers=clean)}
    sections = [
        {
            "step": step,
            "url": reverse("questionnaire-step", args=[token, pk, step.number]) + "?from=review",
            "rows": [
                {
                    "question": shown[code]["text"],
                    "answer": readable[code].answer if code in readable else gettext("Not answered"),
                    "code": code,
                }
                for code in step.codes
                if code in shown
            ],
        }
        for step in visible_steps(definition=definition, answers=clean)
    ]
    context = {
        "token": token,
        "participant": occurrence.participant,
        "occurrence": occurrence,
        "version": version,
        "sections": sections,
        "title": display["title"],
        **_progress(version, clean, None),
    }
    return render(request, "followup/wizard_review.html", context)


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
        messages.success(
            request,
            gettext("New personal link for %(study_id)s (the old one no longer works): %(url)s")
            % {"study_id": participant.study_id, "url": url},
        )
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
            messages.success(
                request,
                gettext("Call to %(study_id)s recorded: %(get_outcome_display)s.")
                % {"study_id": participant.study_id, "get_outcome_display": call.get_outcome_display()},
            )
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
            return gettext("This questionnaire is already completed."), 409
        who = (
            gettext("entered by %(name)s") % {"name": response.entered_by.get_full_name() or response.entered_by.get_username()}
            if response.source == ResponseSource.STAFF and response.entered_by
            else str(response.get_source_display()).lower()
        )
        when = timezone.localtime(response.submitted_at, zoneinfo.ZoneInfo(occurrence.participant.site.timezone))
        return gettext("This questionnaire was already answered on %(when)s (%(who)s); answers are recorded once.") % {
            "when": formats.date_format(when, "d M Y H:i"),
            "who": who,
        }, 409
    if occurrence.status == OccurrenceStatus.CANCELLED:
        if occurrence.cancelled_reason:
            return gettext("This questionnaire was cancelled: %(reason)s. It cannot be answered.") % {
                "reason": occurrence.cancelled_reason
            }, 410
        return gettext("This questionnaire was cancelled. It cannot be answered."), 410
    if now < occurrence.opens_at:
        opens = timezone.localtime(occurrence.opens_at, zoneinfo.ZoneInfo(occurrence.participant.site.timezone))
        return gettext("This questionnaire is not open yet: it opens on %(date)s.") % {
            "date": formats.date_format(opens, "d M Y")
        }, 409
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
                    request,
                    gettext("%(label)s entered for %(study_id)s, recorded as entered by you on their behalf.")
                    % {"label": label, "study_id": participant.study_id},
                )
            else:
                messages.info(
                    request, gettext("%(label)s was already answered; the answers recorded first are kept.") % {"label": label}
                )
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
            messages.success(
                request,
                gettext("%(label)s of %(study_id)s adjudicated.") % {"label": current.label, "study_id": participant.study_id},
            )
            return redirect("participant-outcomes", pk=pk)
    return render(
        request,
        "followup/staff/outcome_adjudicate.html",
        {**context, "form": form, "outcome": current},
        status=400 if form.is_bound else 200,
    )


# --- "Send me my link": from a link that no longer works ------------------------------------------


class _LinkRequestThrottle(SimpleRateThrottle):
    """Requests per client address (DRF's throttle, on a page): bounds what one device can ask."""

    scope = "link-request"

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


@never_cache
@require_http_methods(["GET", "POST"])
def link_request(request: HttpRequest) -> HttpResponse:
    """Ask for one's personal link again. The answer is the same whether or not the token or the
    address is known, and the link goes only to the contact details on file."""
    context: dict[str, Any] = {"sites": contact_sites()}
    if request.method != "POST":
        return render(request, "followup/link_request.html", context)
    token = request.POST.get("token", "")[:100]
    address = request.POST.get("address", "").strip()[:254]
    participant = links.access_link_replaced(token=token) if token else None
    if participant is None and not address:
        context["address_error"] = gettext("Give the e-mail address or mobile number you gave the study.")
        return render(request, "followup/link_request.html", context, status=400)
    if not _LinkRequestThrottle().allow_request(request, None):  # type: ignore[arg-type]  # reads META only
        return render(request, "followup/link_request.html", {**context, "throttled": True}, status=429)
    trial = participant.site.trial if participant is not None else request.trial  # type: ignore[attr-defined]
    if trial:
        messaging.link_request(trial=trial, participant=participant, address="" if participant else address)
    return render(request, "followup/link_request.html", {**context, "done": True})
