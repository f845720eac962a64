"""Participant-facing pages, reached by the personal link: no password, phone first."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from followup import services
from followup.instruments import progress, visible_items
from followup.models import Occurrence, OccurrenceStatus, ResponseSource
from participants.models import Channel, Participant
from participants.selectors import participant_get
from trial import access
from trial.access import Perm
from trial.errors import ApplicationError


def _participant(token: str) -> Participant:
    participant = services.access_link_participant(token=token)
    if participant is None:
        raise Http404("This link is not valid. Ask the study team for a new one.")
    return participant


@never_cache
def home(request: HttpRequest, token: str) -> HttpResponse:
    participant = _participant(token)
    return render(
        request,
        "followup/home.html",
        {"token": token, "participant": participant, "occurrences": list(services.open_occurrences(participant=participant))},
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
        raw = {
            key: (request.POST.getlist(key) if len(request.POST.getlist(key)) > 1 else request.POST.get(key))
            for key in request.POST
        }
        raw.pop("csrfmiddlewaretoken", None)
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
@require_POST
def staff_issue_link(request: HttpRequest, pk: int) -> HttpResponse:
    """Staff issue a participant a new personal link (shown once); the old link stops working."""
    trial = getattr(request, "trial", None)
    if not trial or not access.has_perm(request.user, Perm.ENTER_FOLLOWUP, trial=trial):
        raise PermissionDenied("Your role may not issue questionnaire links.")
    participant = participant_get(user=request.user, trial=trial, pk=pk)
    if participant is None:
        raise Http404("No such participant, or not one you can see.")
    try:
        token = services.access_link_issue(participant=participant, by=request.user)
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
            services.message_opt_out(participant=participant, channel=channel)
        except ApplicationError as exc:
            return render(
                request, "followup/opt_out.html", {"token": token, "label": label, "error": exc.message}, status=exc.status
            )
        done = True
    return render(request, "followup/opt_out.html", {"token": token, "channel": channel, "label": label, "done": done})
