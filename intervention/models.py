"""The intervention: physiotherapists' time, education sessions, prescriptions and the walking diary.

These tables were created by the participants app and keep its names (``participants_*``).
"""

from __future__ import annotations

import functools
import secrets

import pghistory
from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import RangeOperators
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Func
from django.utils.translation import gettext_lazy as _

from participants.models import Participant
from trial.models import Arm, Site, Trial

# --- The intervention: education sessions with physiotherapists, and the walking diary --------


# A room name nobody can guess (144 random bits): a video call's link carries nothing else. Written
# with the standard library and Django only, so migrations can name them without importing this module.
new_video_room = functools.partial(secrets.token_urlsafe, 18)
VIDEO_LINK_VALIDATORS = [
    RegexValidator(
        r"\{session\}",
        inverse_match=True,
        message="Use {room}, the session's random room name: {session} (its id) would make rooms guessable.",
    ),
    RegexValidator(r"^[^{}]*\{room\}[^{}]*$", message="The link must contain {room} once, and no other placeholder."),
]


class DeliveryMode(models.TextChoices):
    IN_PERSON = "in_person", _("In person")
    VIDEO = "video", _("Video call")
    PHONE = "phone", _("Phone call")


class InterventionPolicy(models.Model):
    """How a trial's intervention is delivered: which arm has sessions, slot length, reminders,
    the diary, the walking target and the education checklist."""

    trial = models.OneToOneField(Trial, on_delete=models.PROTECT, related_name="intervention_policy")
    arm = models.ForeignKey(
        Arm, on_delete=models.PROTECT, related_name="+", help_text=_("The arm whose participants have sessions.")
    )
    slot_minutes = models.PositiveSmallIntegerField(default=45)
    reminder_days_before = models.PositiveSmallIntegerField(default=1)
    reminder_hour = models.PositiveSmallIntegerField(default=10, help_text=_("Local hour of the session reminder."))
    agenda_hour = models.PositiveSmallIntegerField(default=7, help_text=_("Local hour of physiotherapists' daily agenda e-mail."))
    diary_weeks = models.PositiveSmallIntegerField(default=12)
    inactivity_days = models.PositiveSmallIntegerField(default=14, help_text=_("Flag a diary with nothing logged for this long."))
    video_link_template = models.CharField(
        max_length=200,
        default="https://meet.jit.si/walkback-{room}",
        validators=VIDEO_LINK_VALIDATORS,
        help_text=_("{room} is the session's random room name (never its id, which anyone could guess)."),
    )
    target_minutes_per_walk = models.PositiveSmallIntegerField(default=30)
    target_walks_per_week = models.PositiveSmallIntegerField(default=5)
    target_by_weeks = models.PositiveSmallIntegerField(default=26)
    topics = models.JSONField(default=list, help_text='Education checklist: [["code", "label"], ...].')
    # The per-protocol population of a release (closeout.releases.catalogue.per_protocol_sql).
    per_protocol_min_sessions = models.PositiveSmallIntegerField(
        default=4,
        help_text=_(
            "Per protocol, a participant of the intervention arm attended at least this many sessions "
            "(and did not stop the intervention); every participant also stayed in follow-up until the first "
            "outcome questionnaire was due."
        ),
    )

    class Meta:
        db_table = "participants_interventionpolicy"
        verbose_name_plural = _("intervention policies")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(slot_minutes__gte=5, reminder_hour__lte=23, agenda_hour__lte=23),
                name="intervention_policy_values_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(video_link_template__contains="{room}") & ~models.Q(video_link_template__contains="{session}"),
                name="intervention_policy_video_link_has_room",
                violation_error_message="The video link must contain {room}, the session's random room name, and not {session}.",
            ),
        ]

    def __str__(self) -> str:
        return f"Intervention policy of {self.trial}"


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent(), meta={"db_table": "participants_sessionplanevent"}
)
class SessionPlan(models.Model):
    """One session of the programme: when it is due (days after randomisation), its window, modes."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="session_plans")
    number = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=80)
    target_day = models.PositiveSmallIntegerField(help_text=_("Days after randomisation."))
    window_before_days = models.PositiveSmallIntegerField(default=0)
    window_after_days = models.PositiveSmallIntegerField(default=7)
    modes = models.JSONField(default=list, help_text='Allowed modes, e.g. ["in_person", "video"].')
    sets_prescription = models.BooleanField(default=False)

    class Meta:
        db_table = "participants_sessionplan"
        ordering = ["trial", "number"]
        constraints = [models.UniqueConstraint(fields=["trial", "number"], name="session_plan_number_unique")]

    def __str__(self) -> str:
        return f"Session {self.number}: {self.name}"


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent(), meta={"db_table": "participants_workinghoursevent"}
)
class WorkingHours(models.Model):
    """Weekly hours at a clinic: the clinic's default (no physiotherapist) or a physiotherapist's own."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="working_hours")
    physiotherapist = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="working_hours"
    )
    weekday = models.PositiveSmallIntegerField(help_text=_("0 = Monday ... 6 = Sunday."))
    start = models.TimeField()
    end = models.TimeField()
    modes = models.JSONField(default=list, blank=True, help_text=_("Empty: every mode the physiotherapist offers."))

    class Meta:
        db_table = "participants_workinghours"
        ordering = ["site", "physiotherapist", "weekday", "start"]
        verbose_name_plural = _("working hours")
        constraints = [
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="working_hours_ordered"),
            models.CheckConstraint(condition=models.Q(weekday__lte=6), name="working_hours_weekday_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.site.code} day {self.weekday} {self.start:%H:%M}-{self.end:%H:%M}"


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent(), meta={"db_table": "participants_extraslotevent"}
)
class ExtraSlot(models.Model):
    physiotherapist = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="extra_slots")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    modes = models.JSONField(default=list, blank=True)

    class Meta:
        db_table = "participants_extraslot"
        constraints = [models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="extra_slot_ordered")]

    def __str__(self) -> str:
        return f"Extra time {self.starts_at:%Y-%m-%d %H:%M}"


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent(), meta={"db_table": "participants_leaveevent"}
)
class Leave(models.Model):
    physiotherapist = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="leave")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        db_table = "participants_leave"
        verbose_name_plural = _("leave")
        constraints = [models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="leave_ordered")]

    def __str__(self) -> str:
        return f"Leave {self.starts_at:%Y-%m-%d} - {self.ends_at:%Y-%m-%d}"


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent(), meta={"db_table": "participants_holidayevent"}
)
class Holiday(models.Model):
    """A public holiday: no sessions that local day at the listed clinics (all, if none listed)."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=100)
    sites = models.ManyToManyField(Site, blank=True, related_name="holidays")

    class Meta:
        db_table = "participants_holiday"
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.name} ({self.date})"


class SessionStatus(models.TextChoices):
    PLANNED = "planned", _("Not booked")
    BOOKED = "booked", _("Booked")
    ATTENDED = "attended", _("Attended")
    NO_SHOW = "no_show", _("Did not attend")
    CANCELLED_LATE = "cancelled_late", _("Cancelled late")
    CANCELLED = "cancelled", _("Cancelled")


OCCUPYING = (SessionStatus.BOOKED, SessionStatus.ATTENDED, SessionStatus.NO_SHOW, SessionStatus.CANCELLED_LATE)


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent(), meta={"db_table": "participants_sessionevent"}
)
class Session(models.Model):
    """One education session of a participant in the intervention arm."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="sessions")
    number = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=80)
    target_date = models.DateField()
    window_start = models.DateField()
    window_end = models.DateField()
    allowed_modes = models.JSONField(default=list)
    sets_prescription = models.BooleanField(default=False)
    physiotherapist = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="sessions")
    status = models.CharField(max_length=16, choices=SessionStatus.choices, default=SessionStatus.PLANNED)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    mode = models.CharField(max_length=10, choices=DeliveryMode.choices, blank=True)
    outside_window_reason = models.CharField(max_length=300, blank=True)
    meeting_link = models.URLField(blank=True)
    video_room = models.CharField(max_length=32, unique=True, default=new_video_room, editable=False)
    booked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    booked_at = models.DateTimeField(null=True, blank=True)
    cancelled_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        db_table = "participants_session"
        ordering = ["participant", "number"]
        constraints = [
            models.UniqueConstraint(fields=["participant", "number"], name="session_number_unique_per_participant"),
            models.CheckConstraint(condition=models.Q(status__in=SessionStatus.values), name="session_status_valid"),
            models.CheckConstraint(
                condition=models.Q(status__in=[SessionStatus.PLANNED, SessionStatus.CANCELLED])
                | models.Q(starts_at__isnull=False, ends_at__isnull=False, physiotherapist__isnull=False, mode__gt=""),
                name="session_booked_has_time_and_mode",
            ),
            models.CheckConstraint(
                condition=models.Q(ends_at__isnull=True) | models.Q(ends_at__gt=models.F("starts_at")),
                name="session_time_ordered",
            ),
            # Two sessions can never take the same physiotherapist's time.
            ExclusionConstraint(
                name="session_physiotherapist_no_overlap",
                expressions=[
                    ("physiotherapist", RangeOperators.EQUAL),
                    # A plain Func, not a class of ours: migrations write it out without importing this module.
                    (
                        Func("starts_at", "ends_at", function="TSTZRANGE", output_field=models.DateTimeField()),
                        RangeOperators.OVERLAPS,
                    ),
                ],
                condition=models.Q(status__in=OCCUPYING),
            ),
        ]
        indexes = [models.Index(fields=["physiotherapist", "starts_at"], name="session_by_physio_time")]

    def __str__(self) -> str:
        return f"Session {self.number} of {self.participant_id}"

    def site_for_access(self) -> int:
        return self.participant.site_id


class Attendance(models.TextChoices):
    ATTENDED = "attended", _("Attended")
    NO_SHOW = "no_show", _("Did not attend")
    CANCELLED_LATE = "cancelled_late", _("Cancelled late")


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    meta={"db_table": "participants_sessionrecordevent"},
)
class SessionRecord(models.Model):
    """What happened at a session: attendance, duration, topics covered (fidelity), notes."""

    session = models.OneToOneField(Session, on_delete=models.PROTECT, related_name="record")
    attendance = models.CharField(max_length=16, choices=Attendance.choices)
    duration_minutes = models.PositiveSmallIntegerField(null=True, blank=True)
    topics = models.JSONField(default=list, blank=True)
    notes = models.TextField(blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        db_table = "participants_sessionrecord"
        constraints = [
            models.CheckConstraint(condition=models.Q(attendance__in=Attendance.values), name="session_record_attendance_valid"),
            models.CheckConstraint(
                condition=~models.Q(attendance=Attendance.ATTENDED) | models.Q(duration_minutes__gte=1),
                name="session_record_attended_has_duration",
            ),
        ]

    def __str__(self) -> str:
        return f"Record of {self.session}"

    def site_for_access(self) -> int:
        return self.session.participant.site_id


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent(), meta={"db_table": "participants_prescriptionevent"}
)
class Prescription(models.Model):
    """The walking prescription set at a session."""

    session = models.OneToOneField(Session, on_delete=models.PROTECT, related_name="prescription")
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="prescriptions")
    walks_per_week = models.PositiveSmallIntegerField()
    minutes_per_walk = models.PositiveSmallIntegerField()
    progression = models.TextField(blank=True, help_text=_("How to progress toward the target."))
    starts_on = models.DateField()

    class Meta:
        db_table = "participants_prescription"
        ordering = ["participant", "starts_on"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    walks_per_week__gte=1, walks_per_week__lte=14, minutes_per_walk__gte=1, minutes_per_walk__lte=300
                ),
                name="prescription_values_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.walks_per_week} x {self.minutes_per_walk} min/week from {self.starts_on}"

    def site_for_access(self) -> int:
        return self.participant.site_id


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent(), meta={"db_table": "participants_walkevent"}
)
class Walk(models.Model):
    """A walk logged in the diary (by the participant from their link, or by staff)."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="walks")
    walked_on = models.DateField()
    minutes = models.PositiveSmallIntegerField()
    steps = models.PositiveIntegerField(null=True, blank=True)
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "participants_walk"
        ordering = ["participant", "-walked_on", "-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(minutes__gte=1, minutes__lte=600), name="walk_minutes_valid"),
            models.CheckConstraint(condition=models.Q(steps__isnull=True) | models.Q(steps__lte=100000), name="walk_steps_valid"),
        ]
        indexes = [models.Index(fields=["participant", "walked_on"], name="walk_by_participant_day")]

    def __str__(self) -> str:
        return f"{self.minutes} min on {self.walked_on}"

    def site_for_access(self) -> int:
        return self.participant.site_id
