"""Intervention writes: plan sessions at randomisation, book them into physiotherapists' free time,
record what happened (with the walking prescription), log walks. Every function checks the arm:
a participant outside the intervention arm can never get a session."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext

from intervention import selectors
from intervention.messages import SESSION_TEMPLATES, session_messages_booked, session_messages_cancelled
from intervention.models import (
    Attendance,
    DeliveryMode,
    ExtraSlot,
    InterventionPolicy,
    Leave,
    Prescription,
    Session,
    SessionPlan,
    SessionRecord,
    SessionStatus,
    Walk,
)
from intervention.selectors import intervention_policy, participant_zone
from messaging.models import Message, MessageStatus
from messaging.services import message_templates_default
from participants.models import Participant
from trial import access
from trial.access import Perm
from trial.audit import audit_context
from trial.errors import ApplicationError, Conflict, NotAllowed, NotFound
from trial.guard import ensure_writable
from trial.models import Allocation, RoleCode, Site, StaffProfile, Trial

_BOOKING_LOCK_SPACE = 0x5743  # advisory locks serialising bookings per physiotherapist


class NotInInterventionArm(Conflict):
    """Sessions and the diary belong to the intervention arm only."""


def _require(user: Any, perm: Perm, trial: Trial, site_id: int) -> None:
    access.require(user, perm, trial=trial, site_id=site_id)


def require_intervention_arm(*, participant: Participant) -> InterventionPolicy:
    """The trial's intervention policy, if the participant was allocated to its arm; else a clear error."""
    policy = intervention_policy(trial=participant.site.trial)
    if policy is None:
        raise NotInInterventionArm(gettext("This trial has no intervention sessions configured."))
    arm_id = Allocation.objects.filter(participant=participant).values_list("arm_id", flat=True).first()
    if arm_id is None:
        raise NotInInterventionArm(
            gettext("%(study_id)s is not randomised: sessions come after randomisation.") % {"study_id": participant.study_id}
        )
    if arm_id != policy.arm_id:
        raise NotInInterventionArm(
            gettext("%(study_id)s is not in the %(name)s arm: no sessions or diary.")
            % {"study_id": participant.study_id, "name": policy.arm.name}
        )
    return policy


def physiotherapist_least_loaded(*, site_id: int) -> Any:
    """The active physiotherapist at the clinic with the fewest sessions not cancelled."""
    return (
        get_user_model()
        .objects.filter(is_active=True, staff__role=RoleCode.PHYSIOTHERAPIST, staff__sites=site_id)
        .annotate(load=Count("sessions", filter=~Q(sessions__status=SessionStatus.CANCELLED)))
        .order_by("load", "pk")
        .first()
    )


@dataclass
class PreparedSessions:
    arm_id: int
    physiotherapist: Any
    sessions: list[Session]


def sessions_prepare(*, participant: Participant, randomised_at: dt.datetime) -> PreparedSessions | None:
    """The sessions a participant would have in the intervention arm, unsaved: computed before
    the arm is drawn, so the randomisation holds its stratum lock for as short as possible."""
    trial = participant.site.trial
    policy = intervention_policy(trial=trial)
    if policy is None:
        return None
    day0 = randomised_at.astimezone(zoneinfo.ZoneInfo(participant_zone(participant))).date()
    physio = participant.physiotherapist or physiotherapist_least_loaded(site_id=participant.site_id)
    sessions = [
        Session(
            participant=participant,
            number=plan.number,
            name=plan.name,
            target_date=day0 + dt.timedelta(days=plan.target_day),
            window_start=day0 + dt.timedelta(days=max(plan.target_day - plan.window_before_days, 0)),
            window_end=day0 + dt.timedelta(days=plan.target_day + plan.window_after_days),
            allowed_modes=list(plan.modes),
            sets_prescription=plan.sets_prescription,
            physiotherapist=physio,
        )
        for plan in SessionPlan.objects.filter(trial=trial).order_by("number")
    ]
    return PreparedSessions(policy.arm_id, physio, sessions)


def sessions_save(*, participant: Participant, prepared: PreparedSessions | None, arm_id: int) -> int:
    """Write the prepared sessions if the participant was allocated to the intervention arm."""
    if prepared is None or arm_id != prepared.arm_id or not prepared.sessions:
        return 0
    if prepared.physiotherapist is not None and participant.physiotherapist_id is None:
        Participant.objects.filter(pk=participant.pk).update(physiotherapist=prepared.physiotherapist)
        participant.physiotherapist = prepared.physiotherapist
    Session.objects.bulk_create(prepared.sessions)
    return len(prepared.sessions)


def sessions_plan(*, participant: Participant) -> int:
    """Plan the sessions of a randomised participant in the intervention arm; other arms get
    none. Safe to call again (a participant with sessions is left as is)."""
    if participant.randomised_at is None or Session.objects.filter(participant=participant).exists():
        return 0
    arm_id = Allocation.objects.filter(participant=participant).values_list("arm_id", flat=True).first()
    if arm_id is None:
        return 0
    prepared = sessions_prepare(participant=participant, randomised_at=participant.randomised_at)
    return sessions_save(participant=participant, prepared=prepared, arm_id=arm_id)


def _session_for_update(session_id: int) -> Session:
    session = (
        Session.objects.select_for_update(of=("self",))
        .select_related("participant__site__trial", "participant__contact", "physiotherapist__staff")
        .filter(pk=session_id)
        .first()
    )
    if session is None:
        raise NotFound(gettext("No such session."))
    return session


@dataclass(frozen=True)
class Booked:
    session: Session
    rescheduled: bool


@transaction.atomic
def session_book(
    *,
    session_id: int,
    starts_at: dt.datetime,
    mode: str,
    by: Any = None,
    reason: str = "",
    physiotherapist: Any = None,
    participant_token: bool = False,
    now: dt.datetime | None = None,
) -> Booked:
    """Book (or move) a session into a free slot of its physiotherapist.

    Bookings of one physiotherapist queue on an advisory lock, so the free-time check and the
    write happen as one; the exclusion constraint on sessions is the backstop. A slot taken
    meanwhile answers 409. Outside the session's window a reason is required.
    """
    now = now or timezone.now()
    session = _session_for_update(session_id)
    participant = session.participant
    trial = participant.site.trial
    ensure_writable(trial=trial)
    if not participant_token:
        _require(by, Perm.BOOK_SESSIONS, trial, participant.site_id)
    policy = require_intervention_arm(participant=participant)
    if participant.withdrawal_scope:
        raise Conflict(
            gettext("%(study_id)s has withdrawn from the intervention: no sessions are booked.")
            % {"study_id": participant.study_id}
        )
    if session.status not in (SessionStatus.PLANNED, SessionStatus.BOOKED):
        raise Conflict(
            gettext("Session %(number)s is %(status)s: it cannot be booked.")
            % {"number": session.number, "status": str(session.get_status_display()).lower()}
        )
    if starts_at.tzinfo is None:
        raise ApplicationError(
            gettext("Give the time with its time zone."), errors={"starts_at": [gettext("Needs a UTC offset.")]}
        )
    if starts_at <= now:
        raise ApplicationError(gettext("That time has passed."), errors={"starts_at": [gettext("In the past.")]})
    if mode not in DeliveryMode.values or (session.allowed_modes and mode not in session.allowed_modes):
        allowed = ", ".join(str(DeliveryMode(m).label).lower() for m in session.allowed_modes) or gettext("any")
        raise ApplicationError(
            gettext("Session %(number)s can be %(modes)s.") % {"number": session.number, "modes": allowed},
            errors={"mode": [gettext("Not an allowed mode.")]},
        )
    physio = physiotherapist or session.physiotherapist
    if physio is None:
        raise Conflict(gettext("No physiotherapist is assigned: assign one before booking."))
    zone = participant_zone(participant)
    local_day = starts_at.astimezone(zoneinfo.ZoneInfo(zone)).date()
    outside = not (session.window_start <= local_day <= session.window_end)
    if outside and not reason.strip():
        raise ApplicationError(
            f"That day is outside session {session.number}'s window ({session.window_start:%d %b} - {session.window_end:%d %b %Y}): "
            "give a reason to book it anyway.",
            errors={"reason": [gettext("Required outside the window.")]},
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_BOOKING_LOCK_SPACE, physio.pk])
    slot = selectors.slot_at(physiotherapist=physio, starts_at=starts_at, ignore_session_id=session.pk, trial=trial, now=now)
    if slot is None:
        raise Conflict(gettext("That time is no longer free: choose another slot."), extra={"code": "slot_taken"})
    if mode not in slot.modes:
        raise ApplicationError(
            gettext("That slot does not offer this mode."),
            errors={"mode": [f"This slot offers: {', '.join(sorted(slot.modes))}."]},
        )
    rescheduled = session.status == SessionStatus.BOOKED
    session.physiotherapist = physio
    session.status = SessionStatus.BOOKED
    session.starts_at, session.ends_at = slot.starts_at, slot.ends_at
    session.mode = mode
    session.outside_window_reason = reason.strip() if outside else ""
    session.meeting_link = policy.video_link_template.format(room=session.video_room) if mode == DeliveryMode.VIDEO else ""
    session.booked_by = by if not participant_token else None
    session.booked_at = now
    actor = {"actor": "participant", "participant": participant.study_id} if participant_token else {}
    why = reason.strip() or ("Rescheduled" if rescheduled else "Booked")
    try:
        with transaction.atomic(), audit_context(reason=why, **actor):
            session.save()
    except IntegrityError as exc:  # the exclusion constraint: another booking got there first
        raise Conflict(gettext("That time is no longer free: choose another slot."), extra={"code": "slot_taken"}) from exc
    session_messages_booked(session=session, rescheduled=rescheduled, now=now)
    return Booked(session, rescheduled)


@transaction.atomic
def session_cancel_booking(*, session_id: int, reason: str, by: Any = None, participant_token: bool = False) -> Session:
    """Cancel a booking: the slot is free again and the session waits to be booked."""
    session = _session_for_update(session_id)
    participant = session.participant
    trial = participant.site.trial
    ensure_writable(trial=trial)
    if not participant_token:
        _require(by, Perm.BOOK_SESSIONS, trial, participant.site_id)
    if not reason.strip():
        raise ApplicationError(gettext("Say why the booking is cancelled."), errors={"reason": [gettext("Required.")]})
    if session.status != SessionStatus.BOOKED:
        raise Conflict(gettext("Session %(number)s is not booked.") % {"number": session.number})
    previous = session.starts_at
    session.status = SessionStatus.PLANNED
    session.starts_at = session.ends_at = None
    session.mode = ""
    session.meeting_link = ""
    session.cancelled_reason = reason.strip()
    actor = {"actor": "participant", "participant": participant.study_id} if participant_token else {}
    with audit_context(reason=reason.strip(), **actor):
        session.save()
    session_messages_cancelled(session=session, was_at=previous)
    return session


@dataclass(frozen=True)
class PrescriptionInput:
    walks_per_week: int
    minutes_per_walk: int
    progression: str = ""


@transaction.atomic
def session_record(
    *,
    session_id: int,
    attendance: str,
    by: Any,
    duration_minutes: int | None = None,
    topics: list[str] | None = None,
    notes: str = "",
    prescription: PrescriptionInput | None = None,
    reason: str = "",
    now: dt.datetime | None = None,
) -> SessionRecord:
    """Record what happened at a booked session. At a prescription session that was attended,
    the walking prescription is required. Correcting a record needs a reason."""
    now = now or timezone.now()
    session = _session_for_update(session_id)
    participant = session.participant
    trial = participant.site.trial
    ensure_writable(trial=trial)
    _require(by, Perm.DELIVER_SESSIONS, trial, participant.site_id)
    policy = require_intervention_arm(participant=participant)
    errors: dict[str, list[str]] = {}
    if attendance not in Attendance.values:
        errors["attendance"] = [f"One of: {', '.join(Attendance.values)}."]
    if session.status == SessionStatus.PLANNED or session.starts_at is None:
        raise Conflict(gettext("Session %(number)s was never booked: book it first.") % {"number": session.number})
    if session.status == SessionStatus.CANCELLED:
        raise Conflict(gettext("Session %(number)s was cancelled.") % {"number": session.number})
    if session.starts_at > now:
        raise Conflict(gettext("Session %(number)s has not started yet.") % {"number": session.number})
    if attendance == Attendance.ATTENDED and not (duration_minutes and 1 <= duration_minutes <= 300):
        errors["duration_minutes"] = [gettext("Minutes the session lasted (1-300).")]
    known = {code for code, _ in policy.topics}
    chosen = list(dict.fromkeys(topics or []))
    if unknown := [t for t in chosen if t not in known]:
        errors["topics"] = [f"Unknown topics: {', '.join(unknown)}."]
    needs_prescription = session.sets_prescription and attendance == Attendance.ATTENDED
    if needs_prescription and prescription is None:
        errors["prescription"] = [gettext("This session sets the walking prescription.")]
    if prescription is not None:
        if not 1 <= prescription.walks_per_week <= 14:
            errors["walks_per_week"] = [gettext("Between 1 and 14.")]
        if not 1 <= prescription.minutes_per_walk <= 300:
            errors["minutes_per_walk"] = [gettext("Between 1 and 300.")]
    if errors:
        raise ApplicationError(gettext("Some fields need your attention."), errors=errors)
    existing = SessionRecord.objects.filter(session=session).first()
    if existing is not None and not reason.strip():
        raise ApplicationError(
            gettext("This session was already recorded: give a reason for the correction."),
            errors={"reason": [gettext("Required.")]},
        )
    values = {
        "attendance": attendance,
        "duration_minutes": duration_minutes if attendance == Attendance.ATTENDED else None,
        "topics": chosen if attendance == Attendance.ATTENDED else [],
        "notes": notes.strip(),
        "recorded_by": by,
        "recorded_at": now,
    }
    with audit_context(reason=reason.strip() or "Session recorded"):
        if existing is None:
            record = SessionRecord.objects.create(session=session, **values)
        else:
            for name, value in values.items():
                setattr(existing, name, value)
            existing.save()
            record = existing
        session.status = attendance
        session.save(update_fields=["status"])
        if prescription is not None and attendance == Attendance.ATTENDED:
            starts_on = session.starts_at.astimezone(zoneinfo.ZoneInfo(participant_zone(participant))).date()
            Prescription.objects.update_or_create(
                session=session,
                defaults={
                    "participant": participant,
                    "walks_per_week": prescription.walks_per_week,
                    "minutes_per_walk": prescription.minutes_per_walk,
                    "progression": prescription.progression.strip(),
                    "starts_on": starts_on,
                },
            )
    return record


def sessions_cancel_future(*, participant: Participant, reason: str, now: dt.datetime | None = None) -> int:
    """Withdrawal from the intervention: sessions not yet held are cancelled, and their reminders."""
    now = now or timezone.now()
    future = Session.objects.filter(participant=participant).filter(
        Q(status=SessionStatus.PLANNED) | Q(status=SessionStatus.BOOKED, starts_at__gt=now)
    )
    ids = list(future.values_list("pk", flat=True))
    count = future.update(status=SessionStatus.CANCELLED, cancelled_reason=reason[:300])
    if ids:
        Message.objects.filter(session_id__in=ids, status=MessageStatus.PLANNED).update(
            status=MessageStatus.CANCELLED, cancelled_reason=reason[:200]
        )
    return count


# --- The walking diary ----------------------------------------------------------------------


@transaction.atomic
def walk_log(
    *,
    participant: Participant,
    walked_on: dt.date,
    minutes: int,
    steps: int | None = None,
    by: Any = None,
    now: dt.datetime | None = None,
) -> Walk:
    """A walk in the diary: from the participant's link (``by`` None) or entered by staff."""
    now = now or timezone.now()
    trial = participant.site.trial
    ensure_writable(trial=trial)
    if by is not None:
        _require(by, Perm.DELIVER_SESSIONS, trial, participant.site_id)
    require_intervention_arm(participant=participant)
    if participant.withdrawal_scope:
        raise Conflict(gettext("The walking diary closed when you withdrew from the programme."))
    zone = zoneinfo.ZoneInfo(participant_zone(participant))
    today = now.astimezone(zone).date()
    errors: dict[str, list[str]] = {}
    assert participant.randomised_at is not None
    if walked_on > today:
        errors["walked_on"] = [gettext("That day has not come yet.")]
    elif walked_on < participant.randomised_at.astimezone(zone).date():
        errors["walked_on"] = [gettext("That is before you joined the programme.")]
    if not 1 <= minutes <= 600:
        errors["minutes"] = [gettext("Minutes walked, between 1 and 600.")]
    if steps is not None and not 0 <= steps <= 100_000:
        errors["steps"] = [gettext("Steps, up to 100,000.")]
    if errors:
        raise ApplicationError(gettext("Please check the walk."), errors=errors)
    actor = {"actor": "participant", "participant": participant.study_id} if by is None else {}
    with audit_context(reason="Walk logged", **actor):
        return Walk.objects.create(participant=participant, walked_on=walked_on, minutes=minutes, steps=steps, entered_by=by)


def intervention_defaults_apply(*, trial: Trial, arm_code: str, plans: list[dict[str, Any]], topics: list[list[str]]) -> None:
    """Give a trial its intervention policy and session plan, once (idempotent)."""
    arm = trial.arms.get(code=arm_code)
    InterventionPolicy.objects.get_or_create(trial=trial, defaults={"arm": arm, "topics": topics})
    for plan in plans:
        SessionPlan.objects.get_or_create(trial=trial, number=plan["number"], defaults=plan)
    StaffProfile.objects.filter(role=RoleCode.PHYSIOTHERAPIST, delivery_modes=[]).update(delivery_modes=list(DeliveryMode.values))
    message_templates_default(trial=trial, templates=SESSION_TEMPLATES)


# --- Physiotherapists' availability: leave and one-off extra time ----------------------------


def staff_timezone(*, user: Any, trial: Trial) -> str:
    """The zone a staff member reads times in: their own, else their sites' (when they share one), else the trial's."""
    staff = StaffProfile.objects.filter(user_id=user.pk).first() if getattr(user, "pk", None) else None
    if staff is not None and staff.timezone:
        return staff.timezone
    zones = set(access.visible_sites(user, trial=trial).values_list("timezone", flat=True))
    return zones.pop() if len(zones) == 1 else trial.timezone


def _require_own_availability(by: Any, physiotherapist: Any, trial: Trial) -> None:
    access.require(by, Perm.DELIVER_SESSIONS, trial=trial, message="Your role may not change a physiotherapist's availability.")
    if by is None or physiotherapist is None or by.pk != physiotherapist.pk:
        raise NotAllowed(gettext("Physiotherapists change their own availability."))


def _lock_bookings(physiotherapist: Any) -> None:
    # The lock session_book takes: no booking slips into the time while it changes.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_BOOKING_LOCK_SPACE, physiotherapist.pk])


def _at(moment: dt.datetime, zone: str) -> str:
    return f"{moment.astimezone(zoneinfo.ZoneInfo(zone)):%a %d %b %Y %H:%M}"


def _booked_between(physiotherapist: Any, starts_at: dt.datetime, ends_at: dt.datetime) -> list[Session]:
    return list(
        Session.objects.filter(
            physiotherapist=physiotherapist, status=SessionStatus.BOOKED, starts_at__lt=ends_at, ends_at__gt=starts_at
        )
        .select_related("participant")
        .order_by("starts_at")
    )


def _listing(sessions: list[Session], zone: str) -> str:
    return "; ".join(
        f"session {s.number} of {s.participant.study_id} on {_at(s.starts_at, zone)}" for s in sessions if s.starts_at
    )


def _check_period(
    starts_at: dt.datetime, ends_at: dt.datetime, now: dt.datetime, longest: dt.timedelta, longest_label: str
) -> dict[str, list[str]]:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        return {"starts_at": [gettext("Needs a UTC offset.")]}
    if ends_at <= starts_at:
        return {"ends_at": ["Must be after the start."]}
    if ends_at <= now:
        return {"ends_at": ["That time is already over."]}
    if ends_at - starts_at > longest:
        return {"ends_at": [f"At most {longest_label}."]}
    return {}


@transaction.atomic
def leave_add(
    *,
    trial: Trial,
    physiotherapist: Any,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    by: Any,
    reason: str = "",
    now: dt.datetime | None = None,
) -> Leave:
    """Leave: no slots are offered in that time. Refused while sessions are booked in it (move them first)."""
    now = now or timezone.now()
    ensure_writable(trial=trial)
    _require_own_availability(by, physiotherapist, trial)
    errors = _check_period(starts_at, ends_at, now, dt.timedelta(days=366), "a year at a time")
    if len(reason.strip()) > 200:
        errors["reason"] = [gettext("At most 200 characters.")]
    if errors:
        raise ApplicationError(gettext("Please check the leave."), errors=errors)
    _lock_bookings(physiotherapist)
    zone = staff_timezone(user=physiotherapist, trial=trial)
    if clashes := _booked_between(physiotherapist, starts_at, ends_at):
        raise Conflict(
            gettext("Sessions are booked during that leave: %(listing_clashes__zone)s. Move or cancel them first.")
            % {"listing_clashes__zone": _listing(clashes, zone)},
            extra={"sessions": [s.pk for s in clashes]},
        )
    overlap = Leave.objects.filter(physiotherapist=physiotherapist, starts_at__lt=ends_at, ends_at__gt=starts_at).first()
    if overlap is not None:
        raise Conflict(
            gettext("That overlaps your leave from %(starts_at__zone)s to %(ends_at__zone)s.")
            % {"starts_at__zone": _at(overlap.starts_at, zone), "ends_at__zone": _at(overlap.ends_at, zone)}
        )
    with audit_context(reason=reason.strip() or "Leave added"):
        return Leave.objects.create(physiotherapist=physiotherapist, starts_at=starts_at, ends_at=ends_at, reason=reason.strip())


@transaction.atomic
def leave_remove(*, trial: Trial, leave_id: int, by: Any, reason: str = "", now: dt.datetime | None = None) -> None:
    """Cancel leave not yet over: its time is offered again. Past leave stays on record."""
    now = now or timezone.now()
    ensure_writable(trial=trial)
    leave = Leave.objects.select_for_update().filter(pk=leave_id).first()
    if leave is None:
        raise NotFound(gettext("No such leave."))
    _require_own_availability(by, leave.physiotherapist, trial)
    if leave.ends_at <= now:
        raise Conflict(gettext("That leave is over: it stays on record."))
    with audit_context(reason=reason.strip() or "Leave removed"):
        leave.delete()


@transaction.atomic
def extra_slot_add(
    *,
    trial: Trial,
    physiotherapist: Any,
    site: Site,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    by: Any,
    modes: list[str] | None = None,
    now: dt.datetime | None = None,
) -> ExtraSlot:
    """One-off time at a clinic, on top of the weekly hours (``modes`` empty: every mode offered)."""
    now = now or timezone.now()
    ensure_writable(trial=trial)
    _require_own_availability(by, physiotherapist, trial)
    errors = _check_period(starts_at, ends_at, now, dt.timedelta(hours=12), "12 hours")
    if not errors and starts_at < now:
        errors["starts_at"] = [gettext("That time has passed.")]
    policy = intervention_policy(trial=trial)
    slot_minutes = policy.slot_minutes if policy else 45
    if not errors and ends_at - starts_at < dt.timedelta(minutes=slot_minutes):
        errors["ends_at"] = [gettext("Shorter than one session (%(slot_minutes)s minutes).") % {"slot_minutes": slot_minutes}]
    if not Site.objects.filter(pk=site.pk, trial=trial, staff__user=physiotherapist).exists():
        errors["site"] = [gettext("Choose a clinic you work at.")]
    chosen = list(dict.fromkeys(modes or []))
    offered = set(
        getattr(StaffProfile.objects.filter(user=physiotherapist).first(), "delivery_modes", None) or DeliveryMode.values
    )
    if unknown := [m for m in chosen if m not in DeliveryMode.values or m not in offered]:
        errors["modes"] = [f"Not among the modes you offer: {', '.join(unknown)}."]
    if errors:
        raise ApplicationError(gettext("Please check the extra time."), errors=errors)
    _lock_bookings(physiotherapist)
    zone = site.timezone
    overlap = ExtraSlot.objects.filter(physiotherapist=physiotherapist, starts_at__lt=ends_at, ends_at__gt=starts_at).first()
    if overlap is not None:
        raise Conflict(
            gettext("That overlaps your extra time from %(starts_at__zone)s to %(ends_at__zone)s.")
            % {"starts_at__zone": _at(overlap.starts_at, zone), "ends_at__zone": _at(overlap.ends_at, zone)}
        )
    leave = Leave.objects.filter(physiotherapist=physiotherapist, starts_at__lt=ends_at, ends_at__gt=starts_at).first()
    if leave is not None:
        raise Conflict(
            gettext("You are on leave then (%(starts_at__zone)s to %(ends_at__zone)s).")
            % {"starts_at__zone": _at(leave.starts_at, zone), "ends_at__zone": _at(leave.ends_at, zone)}
        )
    with audit_context(reason="Extra time added"):
        return ExtraSlot.objects.create(
            physiotherapist=physiotherapist, site=site, starts_at=starts_at, ends_at=ends_at, modes=chosen
        )


@transaction.atomic
def extra_slot_remove(*, trial: Trial, extra_slot_id: int, by: Any, reason: str = "", now: dt.datetime | None = None) -> None:
    """Withdraw extra time not yet over. Refused while sessions are booked in it."""
    now = now or timezone.now()
    ensure_writable(trial=trial)
    extra = ExtraSlot.objects.select_for_update().select_related("site").filter(pk=extra_slot_id).first()
    if extra is None:
        raise NotFound(gettext("No such extra time."))
    _require_own_availability(by, extra.physiotherapist, trial)
    if extra.ends_at <= now:
        raise Conflict(gettext("That extra time is over: it stays on record."))
    _lock_bookings(extra.physiotherapist)
    if clashes := _booked_between(extra.physiotherapist, extra.starts_at, extra.ends_at):
        raise Conflict(
            gettext("Sessions are booked in that time: %(timezone)s. Move or cancel them first.")
            % {"timezone": _listing(clashes, extra.site.timezone)},
            extra={"sessions": [s.pk for s in clashes]},
        )
    with audit_context(reason=reason.strip() or "Extra time removed"):
        extra.delete()
