"""Session messages: a confirmation (with an .ics invite) when a session is booked or moved, a
reminder the day before at a local hour, a notice when a booking is cancelled. They are message
rows like questionnaire reminders, sent by the same sweep with the same exactly-once rules."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import formats, timezone
from django.utils.translation import gettext
from icalendar import Calendar, Event

from intervention.models import DeliveryMode, Session, SessionStatus
from intervention.selectors import agenda, intervention_policy, participant_zone
from messaging.kinds import MessageKind
from messaging.models import Message, MessageStatus
from messaging.services import channels_for, message_policy
from trial.models import RoleCode
from trial.notifications import notification_queue

SESSION_TEMPLATES: dict[tuple[str, str], tuple[str, str]] = {
    ("session-confirmation", "email"): (
        "Booked: your {{ trial }} {{ session }}",
        "Hello,\n\nYour {{ session }} with {{ physiotherapist }} is booked for {{ when }}.\n{{ how }}\n\n"
        "The calendar invite is attached. To see or change your sessions: {{ link }}\n\n"
        "To stop e-mails from the study: {{ opt_out_link }}\n",
    ),
    ("session-confirmation", "sms"): ("", "{{ trial }}: {{ session }} booked for {{ when }}. {{ how }} {{ link }}"),
    ("session-update", "email"): (
        "Changed: your {{ trial }} {{ session }}",
        "Hello,\n\nYour {{ session }} with {{ physiotherapist }} has moved to {{ when }}.\n{{ how }}\n\n"
        "The updated calendar invite is attached. Your sessions: {{ link }}\n\n"
        "To stop e-mails from the study: {{ opt_out_link }}\n",
    ),
    ("session-update", "sms"): ("", "{{ trial }}: {{ session }} moved to {{ when }}. {{ how }} {{ link }}"),
    ("session-reminder", "email"): (
        "Tomorrow: your {{ trial }} {{ session }}",
        "Hello,\n\nA reminder of your {{ session }} with {{ physiotherapist }} on {{ when }}.\n{{ how }}\n\n"
        "Your sessions: {{ link }}\n\nTo stop e-mails from the study: {{ opt_out_link }}\n",
    ),
    ("session-reminder", "sms"): ("", "{{ trial }} reminder: {{ session }} on {{ when }}. {{ how }}"),
    ("session-cancelled", "email"): (
        "Cancelled: your {{ trial }} {{ session }}",
        "Hello,\n\nYour {{ session }} on {{ when }} is cancelled. The study team will agree a new time with you, "
        "or you can choose one: {{ link }}\n\nTo stop e-mails from the study: {{ opt_out_link }}\n",
    ),
    ("session-cancelled", "sms"): ("", "{{ trial }}: {{ session }} on {{ when }} is cancelled. New time: {{ link }}"),
}


def _channels(session: Session) -> list[str]:
    contact = getattr(session.participant, "contact", None)
    return channels_for(contact, message_policy(trial=session.participant.site.trial))


def _sequence(session: Session) -> int:
    """Bookings of this session so far (the row lock is held by the caller)."""
    steps = Message.objects.filter(session=session, step__regex=r"^(confirmation|update)-").values_list("step", flat=True)
    return max((int(step.rsplit("-", 1)[1]) for step in set(steps)), default=0) + 1


def _cancel_pending(session: Session, reason: str) -> None:
    Message.objects.filter(session=session, status=MessageStatus.PLANNED).update(
        status=MessageStatus.CANCELLED, cancelled_reason=reason[:200]
    )


def session_messages_booked(*, session: Session, rescheduled: bool, now: dt.datetime | None = None) -> int:
    """Rows for a new or moved booking: confirmation (or update) now, reminder the day before."""
    now = now or timezone.now()
    assert session.starts_at is not None
    _cancel_pending(session, "Session moved")
    policy = intervention_policy(trial=session.participant.site.trial)
    seq = _sequence(session)
    zone = zoneinfo.ZoneInfo(participant_zone(session.participant))
    local_day = session.starts_at.astimezone(zone).date() - dt.timedelta(days=policy.reminder_days_before if policy else 1)
    hour = policy.reminder_hour if policy else 10
    remind_at = dt.datetime.combine(local_day, dt.time(hour), tzinfo=zone).astimezone(dt.UTC)
    rows = []
    for channel in _channels(session):
        first = "update" if rescheduled else "confirmation"
        rows.append(
            Message(
                participant=session.participant,
                session=session,
                step=f"{first}-{seq}",
                channel=channel,
                planned_at=now,
                due_at=now,
            )
        )
        if now < remind_at < session.starts_at:
            rows.append(
                Message(
                    participant=session.participant,
                    session=session,
                    step=f"reminder-{seq}",
                    channel=channel,
                    planned_at=remind_at,
                    due_at=remind_at,
                )
            )
    Message.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def session_messages_cancelled(*, session: Session, was_at: dt.datetime | None, now: dt.datetime | None = None) -> int:
    now = now or timezone.now()
    _cancel_pending(session, "Booking cancelled")
    if was_at is None or was_at <= now:
        return 0
    seq = _sequence(session) - 1
    rows = [
        Message(
            participant=session.participant,
            session=session,
            step=f"cancelled-{seq}",
            channel=channel,
            planned_at=now,
            due_at=now,
            payload={"was_at": was_at.isoformat()},
        )
        for channel in _channels(session)
    ]
    Message.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


# --- Delivery: the session kind of message, asked by the sweep (messaging.services) --------------


def session_why_not(message: Message, now: dt.datetime) -> str:
    session = message.session
    assert session is not None
    if message.participant.withdrawal_scope:
        return "Withdrawn from the intervention"
    kind = message.step.rsplit("-", 1)[0]
    if kind == "cancelled":
        return ""
    if session.status != SessionStatus.BOOKED or session.starts_at is None:
        return "Session no longer booked"
    if session.starts_at <= now:
        return "Session already started"
    return ""


def session_template_code(message: Message) -> str:
    return "session-" + message.step.rsplit("-", 1)[0]


def session_context(message: Message, *, zone: str) -> dict[str, Any]:
    session = message.session
    assert session is not None
    tz = zoneinfo.ZoneInfo(zone)
    at = session.starts_at or (dt.datetime.fromisoformat(message.payload["was_at"]) if "was_at" in message.payload else None)
    starts = at.astimezone(tz) if at else None
    contact = getattr(message.participant, "contact", None)
    # Rendered in the participant's language (the sweep overrides it while it renders).
    ways: dict[str, str] = {
        str(DeliveryMode.VIDEO): gettext("Video call: %(link)s") % {"link": session.meeting_link},
        str(DeliveryMode.PHONE): gettext("Your physiotherapist will phone you on %(number)s.")
        % {"number": contact.mobile if contact and contact.mobile else gettext("your number")},
        str(DeliveryMode.IN_PERSON): gettext("At %(site)s.") % {"site": message.participant.site.name},
    }
    how = ways.get(session.mode, "")
    return {
        "session": gettext("session %(number)s (%(name)s)") % {"number": session.number, "name": session.name},
        "when": gettext("%(day)s at %(time)s (%(zone)s)")
        % {"day": formats.date_format(starts, "l d F Y"), "time": f"{starts:%H:%M}", "zone": starts.tzname()}
        if starts
        else "",
        "mode": str(DeliveryMode(session.mode).label) if session.mode else "",
        "how": how,
        "physiotherapist": session.physiotherapist.get_full_name() or session.physiotherapist.get_username()
        if session.physiotherapist
        else "",
    }


def session_ics(message: Message) -> bytes | None:
    """An iCalendar invite (or cancellation) for a session e-mail, with a stable UID so a moved
    session updates the same calendar entry."""

    session = message.session
    assert session is not None
    kind = message.step.rsplit("-", 1)[0]
    if kind not in ("confirmation", "update", "cancelled"):
        return None
    calendar = Calendar()
    calendar.add("prodid", "-//WalkBack trial//sessions//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if kind == "cancelled" else "REQUEST")
    event = Event()
    event.add("uid", f"walkback-session-{session.pk}@walkback")
    event.add("sequence", int(message.step.rsplit("-", 1)[1]))
    event.add("summary", f"WalkBack session {session.number}: {session.name}")
    event.add("dtstamp", timezone.now())
    if kind == "cancelled":
        event.add("status", "CANCELLED")
        event.add("dtstart", dt.datetime.fromisoformat(message.payload["was_at"]))
    else:
        assert session.starts_at and session.ends_at
        event.add("dtstart", session.starts_at)
        event.add("dtend", session.ends_at)
        if session.mode == DeliveryMode.VIDEO:
            event.add("location", session.meeting_link)
        elif session.mode == DeliveryMode.IN_PERSON:
            event.add("location", session.participant.site.name)
    calendar.add_component(event)
    return bytes(calendar.to_ical())


class SessionMessages(MessageKind):
    code = "session"
    select_related = ("session__physiotherapist",)
    link_path = "sessions/"

    def owns(self, message: Message) -> bool:
        return message.session_id is not None

    def why_not(self, message: Message, now: dt.datetime) -> str:
        return session_why_not(message, now)

    def template_code(self, message: Message) -> str:
        return session_template_code(message)

    def context(self, message: Message, *, zone: str, cache: dict[Any, Any]) -> dict[str, Any]:
        return session_context(message, zone=zone)

    def attachment(self, message: Message, *, code: str) -> tuple[str, bytes, str] | None:
        ics = session_ics(message)
        if ics is None:
            return None
        return "session.ics", ics, f"text/calendar; method={'CANCEL' if code == 'session-cancelled' else 'REQUEST'}"


# --- Physiotherapists' daily agenda ----------------------------------------------------------


def agendas_send(*, now: dt.datetime | None = None) -> int:
    """E-mail each physiotherapist their day's sessions once, at the policy's local hour (a staff
    notification keyed by physiotherapist and day, so running it again sends nothing more)."""
    now = now or timezone.now()
    queued = 0
    physios = (
        get_user_model()
        .objects.filter(is_active=True, staff__role=RoleCode.PHYSIOTHERAPIST)
        .exclude(email="")
        .select_related("staff")
        .prefetch_related("staff__sites__trial")
    )
    for physio in physios:
        sites = list(physio.staff.sites.all())
        if not sites:
            continue
        trial = sites[0].trial
        if trial.data_locked_at is not None:
            continue
        policy = intervention_policy(trial=trial)
        zone = physio.staff.timezone or trial.timezone
        local = now.astimezone(zoneinfo.ZoneInfo(zone))
        if policy is None or local.hour < policy.agenda_hour:
            continue
        sessions = list(agenda(physiotherapist=physio, date_from=local.date(), date_to=local.date(), zone=zone))
        sessions = [s for s in sessions if s.status == SessionStatus.BOOKED]
        if not sessions:
            continue
        lines = [
            f"{s.starts_at.astimezone(zoneinfo.ZoneInfo(zone)):%H:%M} {s.participant.study_id} - session {s.number} "
            f"({DeliveryMode(s.mode).label.lower()}, {s.participant.site.name})"
            for s in sessions
            if s.starts_at
        ]
        if notification_queue(
            key=f"agenda:{physio.pk}:{local.date().isoformat()}",
            kind="physiotherapist_agenda",
            recipients=[physio.email],
            subject=f"{trial.name}: your sessions on {local:%A %d %B}",
            body="Your sessions today:\n\n" + "\n".join(lines) + "\n\nYour agenda: " + f"{_public_url()}/sessions/agenda/\n",
        ):
            queued += 1
    return queued


def _public_url() -> str:
    return str(settings.PUBLIC_URL)
