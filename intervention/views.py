"""Participant-facing intervention pages, reached by the personal link (no password, phone first):
their sessions with the physiotherapist, choosing a time, and the walking diary. Participants
outside the intervention arm get 404, as for any page that does not exist."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from itertools import groupby
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import formats, timezone, translation
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache

from intervention import selectors, services
from intervention.models import DeliveryMode, Session, SessionStatus, Walk
from participants.links import access_link_participant
from participants.models import Participant
from participants.selectors import participant_language
from trial.errors import ApplicationError

RECENT_WALKS = 14


def in_intervention_arm(participant: Participant) -> bool:
    try:
        services.require_intervention_arm(participant=participant)
    except services.NotInInterventionArm:
        return False
    return True


def home_section(participant: Participant) -> str | None:
    """The walking programme's links on the participant's home page, in the intervention arm."""
    return "intervention/_home_section.html" if in_intervention_arm(participant) else None


def _participant(token: str) -> Participant:
    participant = access_link_participant(token=token)
    if participant is None:
        raise Http404("This link is not valid. Ask the study team for a new one.")
    translation.activate(participant_language(participant))
    if not in_intervention_arm(participant):
        raise Http404("There is nothing here.")
    return participant


def _today(participant: Participant) -> dt.date:
    return timezone.now().astimezone(zoneinfo.ZoneInfo(services.participant_zone(participant))).date()


def _day(day: dt.date) -> str:
    return formats.date_format(day, "l j F")


def _bookable(session: Session, today: dt.date) -> bool:
    return session.status == SessionStatus.PLANNED and session.window_start <= today <= session.window_end


@never_cache
def sessions(request: HttpRequest, token: str) -> HttpResponse:
    participant = _participant(token)
    today = _today(participant)
    rows = [
        {
            "session": s,
            "bookable": _bookable(s, today),
            "opens_later": s.status == SessionStatus.PLANNED and today < s.window_start,
        }
        for s in selectors.sessions_for(participant=participant).select_related("participant__site")
    ]
    context = {"token": token, "zone": services.participant_zone(participant), "rows": rows}
    return render(request, "intervention/participant_sessions.html", context)


def _day_groups(participant: Participant, session: Session, mode: str, today: dt.date) -> list[dict[str, Any]]:
    """Free times of the participant's physiotherapist in the session's window (their local days)
    that offer ``mode``, grouped by local day."""
    physio = session.physiotherapist
    if physio is None:
        return []
    zone = zoneinfo.ZoneInfo(services.participant_zone(participant))
    first = max(today, session.window_start)
    slots = selectors.physiotherapist_slots(
        physiotherapist=physio,
        trial=participant.site.trial,
        date_from=first - dt.timedelta(days=1),
        date_to=session.window_end + dt.timedelta(days=1),
    )
    shown = sorted(
        (
            s
            for s in slots
            if mode in s.modes
            # In person means at their own clinic: the physiotherapist's hours elsewhere are not offered.
            and (mode != DeliveryMode.IN_PERSON or s.site_id == participant.site_id)
            and first <= s.starts_at.astimezone(zone).date() <= session.window_end
        ),
        key=lambda s: s.starts_at,
    )
    return [
        {"day": day, "slots": [{"value": s.starts_at.isoformat(), "starts_at": s.starts_at} for s in day_slots]}
        for day, day_slots in groupby(shown, key=lambda s: s.starts_at.astimezone(zone).date())
    ]


@never_cache
def session_book(request: HttpRequest, token: str, pk: int) -> HttpResponse:
    participant = _participant(token)
    # Another participant's session is simply not found: nothing about it is revealed.
    session = Session.objects.filter(pk=pk, participant=participant).select_related("physiotherapist").first()
    if session is None:
        raise Http404("No such session.")
    today = _today(participant)
    if not _bookable(session, today):
        if session.status == SessionStatus.PLANNED and today < session.window_start:
            messages.info(
                request,
                gettext("You can choose a time for %(session)s from %(day)s.")
                % {"session": session.name, "day": _day(session.window_start)},
            )
        return redirect("participant-sessions", token=token)
    modes = [m for m in DeliveryMode.values if m in (session.allowed_modes or DeliveryMode.values)]
    wanted = (request.POST.get("mode") if request.method == "POST" else request.GET.get("mode")) or ""
    mode = wanted if wanted in modes else modes[0]
    message, status = "", 200
    if request.method == "POST":
        starts_at = _parse_instant(request.POST.get("starts_at", ""))
        if starts_at is None:
            message, status = gettext("Please choose one of the times below."), 400
        else:
            try:
                # The mode as sent: the service refuses one the session does not allow.
                services.session_book(session_id=session.pk, starts_at=starts_at, mode=wanted, participant_token=True)
            except ApplicationError as exc:
                if exc.extra.get("code") == "slot_taken":
                    message = gettext("Sorry, someone has just taken that time. Please choose another time below.")
                else:
                    message = exc.message
                status = exc.status
            else:
                messages.success(
                    request,
                    gettext("Booked: %(session)s. We will send you a confirmation and a reminder.") % {"session": session.name},
                )
                return redirect("participant-sessions", token=token)
    context = {
        "token": token,
        "zone": services.participant_zone(participant),
        "session": session,
        "clinic": participant.site.name,
        "modes": [(m, DeliveryMode(m).label) for m in modes],
        "mode": mode,
        "days": _day_groups(participant, session, mode, today),
        "message": message,
    }
    return render(request, "intervention/participant_book.html", context, status=status)


def _parse_instant(raw: str) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def _parse_int(raw: str) -> int | None:
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > 9:
        return None
    return int(raw)


@never_cache
def diary(request: HttpRequest, token: str) -> HttpResponse:
    participant = _participant(token)
    today = _today(participant)
    values = {"walked_on": today.isoformat(), "minutes": "", "steps": ""}
    errors: dict[str, list[str]] = {}
    message, status = "", 200
    if request.method == "POST":
        values = {name: request.POST.get(name, "").strip() for name in values}
        walked_on: dt.date | None = None
        try:
            walked_on = dt.date.fromisoformat(values["walked_on"])
        except ValueError:
            errors["walked_on"] = [gettext("Choose the day you walked.")]
        minutes = _parse_int(values["minutes"])
        if minutes is None:
            errors["minutes"] = [gettext("How many minutes did you walk? Enter a number, e.g. 30.")]
        steps = _parse_int(values["steps"]) if values["steps"] else None
        if values["steps"] and steps is None:
            errors["steps"] = [gettext("Steps as a whole number, or leave this empty.")]
        if not errors:
            assert walked_on is not None and minutes is not None
            try:
                services.walk_log(participant=participant, walked_on=walked_on, minutes=minutes, steps=steps)
            except ApplicationError as exc:
                errors, message, status = exc.errors, exc.message, exc.status
            else:
                messages.success(
                    request,
                    gettext("Saved: %(minutes)s minutes on %(day)s. Well done!") % {"minutes": minutes, "day": _day(walked_on)},
                )
                return redirect("participant-diary", token=token)
        else:
            message, status = gettext("Please check the walk."), 400
    report = selectors.adherence(participant=participant, today=today)
    week = report.weeks[-1] if report.weeks else None
    goal = week.target_minutes * week.target_walks if week and week.target_minutes and week.target_walks else None
    assert participant.randomised_at is not None
    context = {
        "token": token,
        "values": values,
        "errors": errors,
        "message": message,
        "today": today,
        "first_day": participant.randomised_at.astimezone(zoneinfo.ZoneInfo(services.participant_zone(participant))).date(),
        "week": week,
        "goal": goal,
        "percent": min(100, int(100 * week.minutes / goal)) if week and goal else 0,
        "walks": Walk.objects.filter(participant=participant).order_by("-walked_on", "-created_at")[:RECENT_WALKS],
    }
    return render(request, "intervention/participant_diary.html", context, status=status)
