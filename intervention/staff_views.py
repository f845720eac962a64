"""Staff pages of the intervention: a physiotherapist's agenda, booking and recording sessions, their
availability, and the sessions section of the participant page. Thin: selectors read, services write.

Sessions exist only in the intervention arm, so each one reveals an arm. A session page answers 404
to anyone who may not see its participant's arm, before any permission check: to a blinded role a
session is indistinguishable from one that does not exist.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from intervention import selectors, services
from intervention.forms import (
    DAY,
    WEEK,
    AgendaForm,
    BookForm,
    CancelForm,
    ExtraSlotForm,
    LeaveForm,
    RangeForm,
    RecordForm,
    parse_instant,
)
from intervention.models import OCCUPYING, DeliveryMode, ExtraSlot, Leave, Session, SessionStatus, WorkingHours
from participants import blinding
from participants.models import Participant
from trial import access, downloads
from trial.access import Perm
from trial.errors import ApplicationError
from trial.models import RoleCode, Site, StaffProfile, Trial

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
RECORDABLE = (SessionStatus.BOOKED, SessionStatus.ATTENDED, SessionStatus.NO_SHOW, SessionStatus.CANCELLED_LATE)


def _trial(request: HttpRequest) -> Trial:
    return access.page_trial(request)


def _require(request: HttpRequest, trial: Trial, *perms: Perm) -> None:
    access.page_trial(request, *perms)


def _session(request: HttpRequest, trial: Trial, pk: int) -> Session:
    session = (
        Session.objects.filter(pk=pk, participant__site__trial=trial)
        .select_related("participant__site", "participant__contact", "physiotherapist__staff", "record", "prescription")
        .first()
    )
    if (
        session is None
        or not access.may_see_site(request.user, trial=trial, site_id=session.participant.site_id)
        or not blinding.can_see_arm(request.user, trial=trial, participant_id=session.participant_id)
    ):
        raise Http404("No such session, or not one you can see.")
    return session


def _name(user: Any) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else ""


def _zone_name(zone: str) -> str:
    return zone.rsplit("/", 1)[-1].replace("_", " ")


def _times(starts_at: dt.datetime, ends_at: dt.datetime, viewer: zoneinfo.ZoneInfo, clinic_zone: str) -> tuple[str, str]:
    """The time in the viewer's zone, and the clinic's wall-clock time when its clock differs."""
    local = starts_at.astimezone(viewer)
    text = f"{local:%H:%M}-{ends_at.astimezone(viewer):%H:%M}"
    clinic = starts_at.astimezone(zoneinfo.ZoneInfo(clinic_zone))
    other = f"{clinic:%H:%M} {_zone_name(clinic_zone)} time" if clinic.utcoffset() != local.utcoffset() else ""
    return text, other


def _modes(modes: Any) -> list[str]:
    return [str(DeliveryMode(m).label) for m in DeliveryMode.values if m in modes]


# --- Agenda ---------------------------------------------------------------------------------


@dataclass
class Entry:
    """One line of the agenda: a session, or a free slot."""

    starts_at: dt.datetime
    time: str
    clinic_time: str
    site: Site | None
    modes: list[str] = field(default_factory=list)
    session: Session | None = None
    shown: bool = True  # False: a session at a site or of a participant the viewer may not see
    record_url: str = ""
    record_label: str = ""
    book_url: str = ""


@login_required
def agenda(request: HttpRequest) -> HttpResponseBase:
    trial = _trial(request)
    _require(request, trial, Perm.BOOK_SESSIONS, Perm.DELIVER_SESSIONS)
    user: Any = request.user
    acc = access.access_for(user, trial)
    zone = services.staff_timezone(user=user, trial=trial)
    viewer = zoneinfo.ZoneInfo(zone)
    now = timezone.now()
    today = now.astimezone(viewer).date()
    visible = {s.pk for s in access.visible_sites(user, trial=trial)}
    physios = list(selectors.physiotherapists(trial=trial, site_ids=visible))
    is_physio = acc.role == RoleCode.PHYSIOTHERAPIST
    if is_physio and all(p.pk != user.pk for p in physios):
        physios.insert(0, user)
    form = AgendaForm(request.GET, physiotherapists=physios)
    chosen = form.value("physiotherapist")
    physio = next((p for p in physios if str(p.pk) == chosen), None)
    if physio is None:
        physio = user if is_physio else (physios[0] if physios else None)
    day: dt.date = form.value("date") or today
    view = form.value("view") or DAY
    first = day - dt.timedelta(days=day.weekday()) if view == WEEK else day
    last = first + dt.timedelta(days=6 if view == WEEK else 0)
    step = dt.timedelta(days=7 if view == WEEK else 1)

    by_day: dict[dt.date, list[Entry]] = defaultdict(list)
    if physio is not None:
        sites = {s.pk: s for s in Site.objects.filter(trial=trial)}
        unblinded = blinding.unblinded_participant_ids(user, trial=trial)
        may_deliver, may_book = Perm.DELIVER_SESSIONS in acc.perms, Perm.BOOK_SESSIONS in acc.perms
        for s in selectors.agenda(physiotherapist=physio, date_from=first, date_to=last, zone=zone):
            assert s.starts_at is not None and s.ends_at is not None
            site = s.participant.site
            time, clinic_time = _times(s.starts_at, s.ends_at, viewer, site.timezone)
            entry = Entry(s.starts_at, time, clinic_time, site, _modes([s.mode]), session=s)
            entry.shown = s.participant.site_id in visible and (unblinded is None or s.participant_id in unblinded)
            if entry.shown and may_deliver and s.starts_at <= now and s.status in RECORDABLE:
                entry.record_url = reverse("intervention-record", args=[s.pk])
                entry.record_label = "Correct record" if getattr(s, "record", None) else "Record"
            if entry.shown and may_book and s.status == SessionStatus.BOOKED and s.starts_at > now:
                entry.book_url = reverse("intervention-book", args=[s.pk])
            by_day[s.starts_at.astimezone(viewer).date()].append(entry)
        for slot in selectors.physiotherapist_slots(
            physiotherapist=physio,
            trial=trial,
            date_from=first - dt.timedelta(days=1),
            date_to=last + dt.timedelta(days=1),
            now=now,
        ):
            local_day = slot.starts_at.astimezone(viewer).date()
            if first <= local_day <= last:
                slot_site = sites.get(slot.site_id)
                time, clinic_time = _times(slot.starts_at, slot.ends_at, viewer, slot_site.timezone if slot_site else zone)
                by_day[local_day].append(Entry(slot.starts_at, time, clinic_time, slot_site, _modes(slot.modes)))

    def link(on: dt.date, as_view: str = view) -> str:
        params = {"date": on.isoformat(), "view": as_view}
        if physio is not None:
            params["physiotherapist"] = str(physio.pk)
        return f"{reverse('intervention-agenda')}?{urlencode(params)}"

    days = []
    on = first
    while on <= last:
        days.append((on, sorted(by_day.get(on, []), key=lambda e: (e.starts_at, e.session is None))))
        on += dt.timedelta(days=1)
    if downloads.wants_csv(request):
        return downloads.csv_download(name="agenda", header=AGENDA_CSV_HEADER, rows=_agenda_rows(days))
    return render(
        request,
        "intervention/staff/agenda.html",
        {
            "form": form,
            "physios": physios,
            "physio": physio,
            "may_choose": len(physios) > 1 or not is_physio,
            "view": view,
            "day": day,
            "first": first,
            "last": last,
            "today": today,
            "days": days,
            "prev_url": link(first - step),
            "next_url": link(first + step),
            "today_url": link(today),
            "day_url": link(day, DAY),
            "week_url": link(day, WEEK),
            "zone": zone,
            "zone_name": _zone_name(zone),
            "may_edit_availability": is_physio and physio is not None and physio.pk == user.pk,
            "csv_url": downloads.csv_url(request),
        },
    )


AGENDA_CSV_HEADER = ["date", "time", "clinic_time", "site", "entry", "study_id", "session", "session_name", "mode", "status"]


def _agenda_rows(days: list[tuple[dt.date, list[Entry]]]) -> list[list[Any]]:
    """The agenda's lines as the page shows them: a session the viewer may not see is only 'booked'."""
    rows: list[list[Any]] = []
    for day, entries in days:
        for e in entries:
            start = [day.isoformat(), e.time, e.clinic_time, e.site.code if e.site else ""]
            if e.session is None:
                rows.append([*start, "free", "", "", "", ", ".join(e.modes), ""])
            elif not e.shown:
                rows.append([*start, "booked", "", "", "", "", ""])
            else:
                s = e.session
                rows.append(
                    [*start, "session", s.participant.study_id, s.number, s.name, s.get_mode_display(), s.get_status_display()]
                )
    return rows


# --- Booking --------------------------------------------------------------------------------


@dataclass
class SlotChoice:
    value: str
    time: str
    clinic_time: str
    site: Site | None
    modes: list[str]
    outside: bool


@dataclass(frozen=True)
class ModeChoice:
    value: str
    label: str
    url: str
    chosen: bool


@dataclass(frozen=True)
class DayChoice:
    day: dt.date
    count: int
    outside: bool
    url: str
    chosen: bool


def _step_url(request: HttpRequest, **changes: str) -> str:
    """This booking page with its range kept and ``changes`` made (a mode, a day)."""
    keep = {k: request.GET[k] for k in ("from", "to", "mode", "day") if request.GET.get(k)}
    if "day" not in changes:
        keep.pop("day", None)  # another mode has other days
    keep.update(changes)
    return f"{request.path}?{urlencode(keep)}" if keep else request.path


def _chosen_mode(request: HttpRequest, form: BookForm | None, allowed: list[str], session: Session) -> str:
    """The posted mode, else ?mode=, else the booked one (rescheduling), else the only one allowed."""
    posted = form.data.get("mode", "") if form is not None and form.is_bound else ""
    booked = session.mode if session.status == SessionStatus.BOOKED else ""
    for candidate in (posted, request.GET.get("mode", ""), booked):
        if candidate in allowed:
            return str(candidate)
    return allowed[0] if len(allowed) == 1 else ""


def _chosen_day(request: HttpRequest, form: BookForm | None, days: list[dt.date], viewer: zoneinfo.ZoneInfo) -> dt.date | None:
    """The day whose times are shown: the posted slot's, else ?day=, else the first with free times."""
    if form is not None and form.is_bound:
        moment = parse_instant(str(form.data.get("slot", "")))
        if moment is not None and moment.astimezone(viewer).date() in days:
            return moment.astimezone(viewer).date()
    try:
        asked = dt.date.fromisoformat(request.GET.get("day", ""))
    except ValueError:
        asked = None
    if asked in days:
        return asked
    return days[0] if days else None


def _book_page(
    request: HttpRequest,
    trial: Trial,
    session: Session,
    *,
    form: BookForm | None = None,
    cancel_form: CancelForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """Booking in steps, each a plain link or form (no script needed): how the session is held,
    then a day with free times (with how many), then a time of that day, then book."""
    participant = session.participant
    zone = services.staff_timezone(user=request.user, trial=trial)
    viewer = zoneinfo.ZoneInfo(zone)
    participant_tz = zoneinfo.ZoneInfo(services.participant_zone(participant))
    now = timezone.now()
    today = now.astimezone(viewer).date()
    allowed = [m for m in DeliveryMode.values if m in (session.allowed_modes or DeliveryMode.values)]
    rescheduling = session.status == SessionStatus.BOOKED
    refusal = ""
    if participant.withdrawal_scope:
        refusal = f"{participant.study_id} has withdrawn ({participant.get_withdrawal_scope_display().lower()}): no sessions are booked."
    elif session.status not in (SessionStatus.PLANNED, SessionStatus.BOOKED):
        refusal = f"Session {session.number} is {session.get_status_display().lower()}: it cannot be booked."
    elif session.physiotherapist is None:
        refusal = "No physiotherapist is assigned to this participant: assign one before booking."
    if form is None and not refusal:
        form = BookForm(modes=allowed, rescheduling=rescheduling)
    if cancel_form is None and rescheduling:
        cancel_form = CancelForm(action=reverse("intervention-cancel", args=[session.pk]), auto_id="cancel_%s")

    wants_range = "from" in request.GET or "to" in request.GET
    range_form = RangeForm(request.GET if wants_range else None)
    overridden = wants_range and range_form.is_valid()
    if overridden:
        first, last = range_form.cleaned_data["date_from"], range_form.cleaned_data["date_to"]
    else:
        first, last = max(session.window_start, today), session.window_end
        range_form = range_form if wants_range else RangeForm(initial={"date_from": first, "date_to": last})

    mode = _chosen_mode(request, form, allowed, session)
    by_day: dict[dt.date, list[SlotChoice]] = defaultdict(list)
    if not refusal and mode and session.physiotherapist is not None and first <= last:
        sites = {s.pk: s for s in Site.objects.filter(trial=trial)}
        for slot in selectors.physiotherapist_slots(
            physiotherapist=session.physiotherapist, trial=trial, date_from=first, date_to=last, now=now
        ):
            if mode not in slot.modes:
                continue
            site = sites.get(slot.site_id)
            time, clinic_time = _times(slot.starts_at, slot.ends_at, viewer, site.timezone if site else zone)
            local_day = slot.starts_at.astimezone(participant_tz).date()
            outside = not (session.window_start <= local_day <= session.window_end)
            modes = [m for m in allowed if m in slot.modes]
            choice = SlotChoice(slot.starts_at.isoformat(), time, clinic_time, site, _modes(modes), outside)
            by_day[slot.starts_at.astimezone(viewer).date()].append(choice)
    days = sorted(by_day)
    day = _chosen_day(request, form, days, viewer)
    current = ""
    if rescheduling and session.starts_at and session.ends_at:
        time, clinic_time = _times(session.starts_at, session.ends_at, viewer, participant.site.timezone)
        current = f"{session.starts_at.astimezone(viewer):%a %d %b %Y} {time}" + (f" ({clinic_time})" if clinic_time else "")
    return render(
        request,
        "intervention/staff/book.html",
        {
            "session": session,
            "participant": participant,
            "physio_name": _name(session.physiotherapist),
            "allowed_modes": _modes(allowed),
            "rescheduling": rescheduling,
            "current": current,
            "refusal": refusal,
            "form": form if not refusal else None,
            "chosen_slot": form.data.get("slot", "") if form is not None and form.is_bound and not form.slot_taken else "",
            "cancel_form": cancel_form if rescheduling else None,
            "range_form": range_form,
            "overridden": overridden,
            "first": first,
            "last": last,
            "mode": mode,
            "mode_label": DeliveryMode(mode).label if mode else "",
            "mode_choices": [ModeChoice(m, str(DeliveryMode(m).label), _step_url(request, mode=m), m == mode) for m in allowed],
            "day_choices": [
                DayChoice(d, len(by_day[d]), by_day[d][0].outside, _step_url(request, mode=mode, day=d.isoformat()), d == day)
                for d in days
            ],
            "day": day,
            "times": by_day[day] if day else [],
            "back_to_window": f"{request.path}?{urlencode({'mode': mode})}" if mode else request.path,
            "zone_name": _zone_name(zone),
        },
        status=status,
    )


@login_required
def book(request: HttpRequest, pk: int) -> HttpResponse:
    trial = _trial(request)
    session = _session(request, trial, pk)
    _require(request, trial, Perm.BOOK_SESSIONS)
    if request.method != "POST":
        return _book_page(request, trial, session)
    form = BookForm(request.POST, modes=session.allowed_modes or DeliveryMode.values, rescheduling=session.starts_at is not None)
    if not form.is_valid():
        return _book_page(request, trial, session, form=form)
    try:
        booked = services.session_book(
            session_id=session.pk,
            starts_at=form.cleaned_data["slot"],
            mode=form.cleaned_data["mode"],
            reason=form.cleaned_data["reason"],
            by=request.user,
        )
    except ApplicationError as exc:
        form.show_error(exc)
        form.slot_taken = exc.extra.get("code") == "slot_taken"  # the page then shows the slots free now
        session = _session(request, trial, pk)
        return _book_page(request, trial, session, form=form, status=exc.status)
    done = booked.session
    assert done.starts_at is not None
    zone = zoneinfo.ZoneInfo(services.staff_timezone(user=request.user, trial=trial))
    verb = "moved to" if booked.rescheduled else "booked for"
    messages.success(
        request,
        f"Session {done.number} of {session.participant.study_id} {verb} "
        f"{done.starts_at.astimezone(zone):%a %d %b %Y %H:%M} ({done.get_mode_display().lower()}).",
    )
    return redirect("participant-detail", pk=session.participant_id)


@login_required
@require_POST
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    trial = _trial(request)
    session = _session(request, trial, pk)
    _require(request, trial, Perm.BOOK_SESSIONS)
    form = CancelForm(request.POST, action=reverse("intervention-cancel", args=[pk]), auto_id="cancel_%s")
    if form.is_valid():
        try:
            services.session_cancel_booking(session_id=session.pk, reason=form.cleaned_data["reason"], by=request.user)
        except ApplicationError as exc:
            form.show_error(exc)
            return _book_page(request, trial, _session(request, trial, pk), cancel_form=form, status=exc.status)
        messages.success(
            request,
            gettext("The booking of session %(number)s of %(study_id)s is cancelled.")
            % {"number": session.number, "study_id": session.participant.study_id},
        )
        return redirect("participant-detail", pk=session.participant_id)
    return _book_page(request, trial, session, cancel_form=form)


# --- Recording ------------------------------------------------------------------------------


def _record_refusal(session: Session, now: dt.datetime) -> str:
    if session.status == SessionStatus.CANCELLED:
        return f"Session {session.number} was cancelled: there is nothing to record."
    if session.status == SessionStatus.PLANNED or session.starts_at is None:
        return f"Session {session.number} is not booked yet: book it first."
    if session.starts_at > now:
        return f"Session {session.number} has not started yet: record it once it has."
    return ""


@login_required
def record(request: HttpRequest, pk: int) -> HttpResponse:
    trial = _trial(request)
    session = _session(request, trial, pk)
    _require(request, trial, Perm.DELIVER_SESSIONS)
    policy = services.intervention_policy(trial=trial)
    existing = getattr(session, "record", None)
    prescription = getattr(session, "prescription", None)
    initial: dict[str, Any] = {}
    if existing is not None:
        initial |= {
            "attendance": existing.attendance,
            "duration_minutes": existing.duration_minutes,
            "topics": existing.topics,
            "notes": existing.notes,
        }
    if prescription is not None:
        initial |= {
            "walks_per_week": prescription.walks_per_week,
            "minutes_per_walk": prescription.minutes_per_walk,
            "progression": prescription.progression,
        }
    form = RecordForm(
        request.POST if request.method == "POST" else None,
        topics=policy.topics if policy else [],
        sets_prescription=session.sets_prescription,
        correcting=existing is not None,
        initial=initial,
        action=reverse("intervention-record", args=[pk]),
    )
    refusal = _record_refusal(session, timezone.now())
    status = 409 if refusal and form.is_bound else 200
    if not refusal and form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            services.session_record(
                session_id=session.pk,
                attendance=data["attendance"],
                duration_minutes=data["duration_minutes"],
                topics=data["topics"],
                notes=data["notes"],
                prescription=form.prescription(),
                reason=data.get("reason", ""),
                by=request.user,
            )
        except ApplicationError as exc:
            form.show_error(exc)
            status = exc.status
        else:
            verb = "corrected" if existing is not None else "recorded"
            messages.success(
                request,
                gettext("Session %(number)s of %(study_id)s %(verb)s.")
                % {"number": session.number, "study_id": session.participant.study_id, "verb": verb},
            )
            return redirect("participant-detail", pk=session.participant_id)
    zone = zoneinfo.ZoneInfo(services.staff_timezone(user=request.user, trial=trial))
    when = ""
    if session.starts_at and session.ends_at:
        time, clinic_time = _times(session.starts_at, session.ends_at, zone, session.participant.site.timezone)
        when = f"{session.starts_at.astimezone(zone):%a %d %b %Y} {time}" + (f" ({clinic_time})" if clinic_time else "")
    return render(
        request,
        "intervention/staff/record.html",
        {
            "session": session,
            "participant": session.participant,
            "form": None if refusal else form,
            "refusal": refusal,
            "existing": existing,
            "when": when,
        },
        status=status,
    )


# --- Availability ---------------------------------------------------------------------------


@dataclass
class HoursRow:
    weekday: str
    time: str
    modes: list[str]


@login_required
def availability(request: HttpRequest) -> HttpResponse:
    trial = _trial(request)
    _require(request, trial, Perm.DELIVER_SESSIONS)
    user: Any = request.user
    zone = services.staff_timezone(user=user, trial=trial)
    my_sites = Site.objects.filter(trial=trial, staff__user=user).order_by("code")
    offered = getattr(StaffProfile.objects.filter(user=user).first(), "delivery_modes", None) or DeliveryMode.values
    what = request.POST.get("what") if request.method == "POST" else None
    here = reverse("intervention-availability")
    leave_form = LeaveForm(request.POST if what == "leave" else None, zone=zone, action=here, auto_id="leave_%s")
    extra_form = ExtraSlotForm(
        request.POST if what == "extra" else None, sites=my_sites, modes=offered, action=here, auto_id="extra_%s"
    )
    status = 200
    try:
        if what == "leave" and leave_form.is_valid():
            starts_at, ends_at = leave_form.period()
            services.leave_add(
                trial=trial,
                physiotherapist=user,
                starts_at=starts_at,
                ends_at=ends_at,
                reason=leave_form.cleaned_data["reason"],
                by=user,
            )
            messages.success(request, gettext("Leave added: no sessions are offered in that time."))
            return redirect("intervention-availability")
        if what == "extra" and extra_form.is_valid():
            starts_at, ends_at = extra_form.period()
            services.extra_slot_add(
                trial=trial,
                physiotherapist=user,
                site=extra_form.cleaned_data["site"],
                starts_at=starts_at,
                ends_at=ends_at,
                modes=extra_form.cleaned_data["modes"],
                by=user,
            )
            messages.success(request, gettext("Extra time added: its slots can be booked."))
            return redirect("intervention-availability")
    except ApplicationError as exc:
        (leave_form if what == "leave" else extra_form).show_error(exc)
        status = exc.status

    now = timezone.now()
    sites = list(my_sites)
    hours = list(
        WorkingHours.objects.filter(site__in=sites)
        .filter(Q(physiotherapist=user) | Q(physiotherapist__isnull=True))
        .order_by("weekday", "start")
    )
    weekly = []
    for site in sites:
        own = [h for h in hours if h.site_id == site.pk and h.physiotherapist_id == user.pk]
        rows = own or [h for h in hours if h.site_id == site.pk and h.physiotherapist_id is None]
        weekly.append(
            {
                "site": site,
                "own": bool(own),
                "rows": [
                    HoursRow(WEEKDAYS[h.weekday], f"{h.start:%H:%M}-{h.end:%H:%M}", _modes(h.modes) if h.modes else [])
                    for h in rows
                ],
            }
        )
    return render(
        request,
        "intervention/staff/availability.html",
        {
            "weekly": weekly,
            "offered": _modes(offered),
            "leave": list(
                Leave.objects.filter(physiotherapist=user, ends_at__gt=now - dt.timedelta(days=90)).order_by("starts_at")
            ),
            "extras": [
                (extra, _modes(extra.modes))
                for extra in ExtraSlot.objects.filter(physiotherapist=user, ends_at__gt=now - dt.timedelta(days=30))
                .select_related("site")
                .order_by("starts_at")
            ],
            "leave_form": leave_form,
            "extra_form": extra_form,
            "now": now,
            "zone": zone,
            "zone_name": _zone_name(zone),
        },
        status=status,
    )


@login_required
@require_POST
def leave_remove(request: HttpRequest, pk: int) -> HttpResponse:
    trial = _trial(request)
    _require(request, trial, Perm.DELIVER_SESSIONS)
    try:
        services.leave_remove(trial=trial, leave_id=pk, by=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, gettext("Leave removed: that time is offered again."))
    return redirect("intervention-availability")


@login_required
@require_POST
def extra_slot_remove(request: HttpRequest, pk: int) -> HttpResponse:
    trial = _trial(request)
    _require(request, trial, Perm.DELIVER_SESSIONS)
    try:
        services.extra_slot_remove(trial=trial, extra_slot_id=pk, by=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, gettext("Extra time removed."))
    return redirect("intervention-availability")


# --- The participant page's sessions section --------------------------------------------------

CHART_HEIGHT = 60
BAR_STEP = 22


def participant_sessions(*, user: Any, trial: Trial, participant: Participant, sees_arm: bool) -> dict[str, Any] | None:
    """What the participant page shows of the intervention, or None when the viewer may not see the
    arm or the participant is not in the intervention arm. Constant queries, however many sessions or walks."""
    if not sees_arm:
        return None
    allocation = getattr(participant, "allocation", None)
    policy = services.intervention_policy(trial=trial) if allocation is not None else None
    if allocation is None or policy is None or allocation.arm_id != policy.arm_id:
        return None
    acc = access.access_for(user, trial)
    now = timezone.now()
    zone = zoneinfo.ZoneInfo(services.participant_zone(participant))
    today = now.astimezone(zone).date()
    may_book = Perm.BOOK_SESSIONS in acc.perms and not participant.withdrawal_scope
    may_deliver = Perm.DELIVER_SESSIONS in acc.perms
    sessions = list(selectors.sessions_for(participant=participant))
    rows = []
    for s in sessions:
        book_label = ""
        if may_book and s.status in (SessionStatus.PLANNED, SessionStatus.BOOKED):
            book_label = "Reschedule" if s.status == SessionStatus.BOOKED else "Book"
        record_label = ""
        if may_deliver and s.status in RECORDABLE and s.starts_at is not None and s.starts_at <= now:
            record_label = "Correct record" if getattr(s, "record", None) else "Record"
        rows.append(
            {
                "session": s,
                "record": getattr(s, "record", None),
                "physio": _name(s.physiotherapist),
                "book_label": book_label,
                "record_label": record_label,
                "occupying": s.status in OCCUPYING,
            }
        )
    prescriptions = sorted(
        (p for s in sessions if (p := getattr(s, "prescription", None)) is not None and p.starts_on <= today),
        key=lambda p: p.starts_on,
    )
    report = selectors.adherence(participant=participant, today=today)
    scale = max([1] + [max(w.minutes, (w.target_minutes or 0) * (w.target_walks or 0)) for w in report.weeks])
    weeks = []
    for i, week in enumerate(report.weeks):
        target = (week.target_minutes or 0) * (week.target_walks or 0)
        height = round(CHART_HEIGHT * week.minutes / scale)
        weeks.append(
            {
                "week": week,
                "number": i + 1,
                "target": target or None,
                "x": 4 + i * BAR_STEP,
                "y": CHART_HEIGHT + 4 - height,
                "height": height,
                "target_y": CHART_HEIGHT + 4 - round(CHART_HEIGHT * target / scale) if target else None,
            }
        )
    return {
        "rows": rows,
        "prescription": prescriptions[-1] if prescriptions else None,
        "adherence": report,
        "weeks": weeks,
        "chart_width": 8 + BAR_STEP * len(weeks),
        "chart_height": CHART_HEIGHT + 8,
        "policy": policy,
    }
