"""The participant's journey: screening, consent, enrolment, withdrawal.

The arm lives only in ``trial.Allocation``. Contact details live in their own table, which no
export and no blinded view reads.
"""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import RangeOperators
from django.db import models
from django.db.models import Func
from django.utils import timezone

from trial.models import Arm, Site, StratificationFactor, StratumLevel, TimezoneField, Trial


class ScreeningOutcome(models.TextChoices):
    ELIGIBLE = "eligible", "Eligible"
    INELIGIBLE = "ineligible", "Not eligible"
    DECLINED = "declined", "Eligible, declined"
    ENROLLED = "enrolled", "Enrolled"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Screening(models.Model):
    """A person assessed for eligibility (CONSORT). Holds no name or contact detail."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="screenings")
    screened_on = models.DateField()
    referral = models.CharField(max_length=40, blank=True, help_text="Referral route (a level of the referral factor).")
    answers = models.JSONField(default=dict)
    eligible = models.BooleanField()
    reasons = models.JSONField(default=list, blank=True, help_text="Codes of the criteria that made the person ineligible.")
    outcome = models.CharField(max_length=12, choices=ScreeningOutcome.choices)
    declined_reason = models.CharField(max_length=300, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-screened_on", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(outcome__in=ScreeningOutcome.values), name="screening_outcome_valid"),
            models.CheckConstraint(
                condition=models.Q(eligible=True) | models.Q(outcome=ScreeningOutcome.INELIGIBLE),
                name="screening_ineligible_outcome_matches",
            ),
        ]

    def __str__(self) -> str:
        return f"Screening {self.pk} at {self.site.code} on {self.screened_on}"

    def site_for_access(self) -> int:
        return self.site_id


class ConsentMethod(models.TextChoices):
    IN_PERSON = "in_person", "In person"
    VIDEO = "video", "Video call"
    ONLINE = "online", "Online"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class ConsentDocument(models.Model):
    """A version of the participant information and consent form. The newest published is current."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="consent_documents")
    version = models.CharField(max_length=20)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    published_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-published_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["trial", "version"], name="consent_version_unique_per_trial")]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"


class ParticipantStatus(models.TextChoices):
    ENROLLED = "enrolled", "Enrolled"
    RANDOMISED = "randomised", "Randomised"
    WITHDRAWN = "withdrawn", "Withdrawn"


class WithdrawalScope(models.TextChoices):
    INTERVENTION = "intervention", "Stop the intervention only"
    FOLLOWUP = "followup", "Stop follow-up"
    CONSENT = "consent", "Withdraw consent for further data use"


# How far each scope reaches: a wider one includes the narrower ones.
WITHDRAWAL_RANK = {"": 0, WithdrawalScope.INTERVENTION: 1, WithdrawalScope.FOLLOWUP: 2, WithdrawalScope.CONSENT: 3}
# The scopes that end follow-up (no more questionnaires, messages or outcome time after it).
FOLLOWUP_ENDING_SCOPES = (WithdrawalScope.FOLLOWUP, WithdrawalScope.CONSENT)


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Participant(models.Model):
    screening = models.OneToOneField(Screening, null=True, blank=True, on_delete=models.PROTECT, related_name="participant")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="participants")
    study_id = models.CharField(max_length=30, unique=True)
    status = models.CharField(max_length=12, choices=ParticipantStatus.choices, default=ParticipantStatus.ENROLLED)
    withdrawal_scope = models.CharField(max_length=12, choices=WithdrawalScope.choices, blank=True)
    randomised_at = models.DateTimeField(null=True, blank=True)
    enrolled_at = models.DateTimeField(default=timezone.now)
    enrolled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    physiotherapist = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Chosen at enrolment, or assigned (the least loaded at the site) when sessions are planned.",
    )

    class Meta:
        ordering = ["study_id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=ParticipantStatus.values), name="participant_status_valid"),
            models.CheckConstraint(
                condition=~models.Q(status=ParticipantStatus.RANDOMISED) | models.Q(randomised_at__isnull=False),
                name="participant_randomised_has_time",
            ),
        ]

    def __str__(self) -> str:
        return self.study_id

    def site_for_access(self) -> int:
        return self.site_id

    @property
    def is_randomised(self) -> bool:
        return self.randomised_at is not None

    @property
    def withdrawn_from_followup(self) -> bool:
        return self.withdrawal_scope in FOLLOWUP_ENDING_SCOPES

    @property
    def withdrawn_from_intervention(self) -> bool:
        return bool(self.withdrawal_scope)  # every scope includes the intervention


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class ParticipantStratum(models.Model):
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="strata")
    factor = models.ForeignKey(StratificationFactor, on_delete=models.PROTECT, related_name="+")
    level = models.ForeignKey(StratumLevel, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["participant", "factor"], name="one_level_per_factor")]

    def __str__(self) -> str:
        return f"{self.factor.code}={self.level.code}"

    def site_for_access(self) -> int:
        return self.participant.site_id


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Consent(models.Model):
    screening = models.ForeignKey(Screening, on_delete=models.PROTECT, related_name="consents")
    participant = models.ForeignKey(Participant, null=True, blank=True, on_delete=models.PROTECT, related_name="consents")
    document = models.ForeignKey(ConsentDocument, on_delete=models.PROTECT, related_name="consents")
    method = models.CharField(max_length=10, choices=ConsentMethod.choices)
    signed_name = models.CharField(max_length=200, help_text="The participant's name, typed as their signature.")
    taken_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    consented_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-consented_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(method__in=ConsentMethod.values), name="consent_method_valid"),
            models.CheckConstraint(condition=~models.Q(signed_name=""), name="consent_signed"),
        ]

    def __str__(self) -> str:
        return f"Consent v{self.document.version} ({self.get_method_display()})"

    def site_for_access(self) -> int:
        return self.screening.site_id


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    SMS = "sms", "SMS"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class ContactDetails(models.Model):
    """Identifying contact data, apart from clinical data: never exported, never shown to blinded roles."""

    participant = models.OneToOneField(Participant, on_delete=models.PROTECT, related_name="contact")
    email = models.EmailField(blank=True)
    mobile = models.CharField(max_length=30, blank=True)
    preferred_channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    timezone = TimezoneField(max_length=64)
    email_opted_out_at = models.DateTimeField(null=True, blank=True, help_text="The participant asked for no more e-mail.")
    sms_opted_out_at = models.DateTimeField(null=True, blank=True, help_text="The participant asked for no more SMS.")

    class Meta:
        verbose_name_plural = "contact details"
        constraints = [
            models.CheckConstraint(condition=~models.Q(email="", mobile=""), name="contact_has_email_or_mobile"),
        ]

    def __str__(self) -> str:
        return f"Contact details of {self.participant_id}"

    def address(self, channel: str) -> str:
        return self.email if channel == Channel.EMAIL else self.mobile

    def opted_out(self, channel: str) -> bool:
        return (self.email_opted_out_at if channel == Channel.EMAIL else self.sms_opted_out_at) is not None

    def site_for_access(self) -> int:
        return self.participant.site_id


@pghistory.track(pghistory.InsertEvent())
class Withdrawal(models.Model):
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="withdrawals")
    scope = models.CharField(max_length=12, choices=WithdrawalScope.choices)
    reason = models.CharField(max_length=500)
    withdrawn_on = models.DateField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(scope__in=WithdrawalScope.values), name="withdrawal_scope_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_scope_display()} ({self.withdrawn_on})"

    def site_for_access(self) -> int:
        return self.participant.site_id


@pghistory.track(pghistory.InsertEvent())
class Unblinding(models.Model):
    """An emergency unblinding: this user may see this participant's arm, and nobody else's."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="unblindings")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Unblinding of {self.participant_id} for user {self.user_id}"

    def site_for_access(self) -> int:
        return self.participant.site_id


# Models whose rows reveal the arm: hidden from blinded roles wherever records (or their
# history) are shown. Per-field entries hide single fields of otherwise visible models.
ALLOCATION_MODELS: frozenset[str] = frozenset({"trial.allocation", "trial.randomisationslot"})
# Records only the intervention arm has: opening one reveals the participant's arm.
INTERVENTION_MODELS: frozenset[str] = frozenset(
    {"participants.session", "participants.sessionrecord", "participants.prescription", "participants.walk"}
)
# Fields that reveal the arm on records every role may open: hidden from blinded roles in history.
ALLOCATION_FIELDS: dict[str, frozenset[str]] = {"participants.adverseevent": frozenset({"session", "source"})}


# --- The intervention: education sessions with physiotherapists, and the walking diary --------


class DeliveryMode(models.TextChoices):
    IN_PERSON = "in_person", "In person"
    VIDEO = "video", "Video call"
    PHONE = "phone", "Phone call"


class InterventionPolicy(models.Model):
    """How a trial's intervention is delivered: which arm has sessions, slot length, reminders,
    the diary, the walking target and the education checklist."""

    trial = models.OneToOneField(Trial, on_delete=models.PROTECT, related_name="intervention_policy")
    arm = models.ForeignKey(
        Arm, on_delete=models.PROTECT, related_name="+", help_text="The arm whose participants have sessions."
    )
    slot_minutes = models.PositiveSmallIntegerField(default=45)
    reminder_days_before = models.PositiveSmallIntegerField(default=1)
    reminder_hour = models.PositiveSmallIntegerField(default=10, help_text="Local hour of the session reminder.")
    agenda_hour = models.PositiveSmallIntegerField(default=7, help_text="Local hour of physiotherapists' daily agenda e-mail.")
    diary_weeks = models.PositiveSmallIntegerField(default=12)
    inactivity_days = models.PositiveSmallIntegerField(default=14, help_text="Flag a diary with nothing logged for this long.")
    video_link_template = models.CharField(
        max_length=200, default="https://meet.jit.si/walkback-session-{session}", help_text="{session} is the session's id."
    )
    target_minutes_per_walk = models.PositiveSmallIntegerField(default=30)
    target_walks_per_week = models.PositiveSmallIntegerField(default=5)
    target_by_weeks = models.PositiveSmallIntegerField(default=26)
    topics = models.JSONField(default=list, help_text='Education checklist: [["code", "label"], ...].')

    class Meta:
        verbose_name_plural = "intervention policies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(slot_minutes__gte=5, reminder_hour__lte=23, agenda_hour__lte=23),
                name="intervention_policy_values_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Intervention policy of {self.trial}"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class SessionPlan(models.Model):
    """One session of the programme: when it is due (days after randomisation), its window, modes."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="session_plans")
    number = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=80)
    target_day = models.PositiveSmallIntegerField(help_text="Days after randomisation.")
    window_before_days = models.PositiveSmallIntegerField(default=0)
    window_after_days = models.PositiveSmallIntegerField(default=7)
    modes = models.JSONField(default=list, help_text='Allowed modes, e.g. ["in_person", "video"].')
    sets_prescription = models.BooleanField(default=False)

    class Meta:
        ordering = ["trial", "number"]
        constraints = [models.UniqueConstraint(fields=["trial", "number"], name="session_plan_number_unique")]

    def __str__(self) -> str:
        return f"Session {self.number}: {self.name}"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class WorkingHours(models.Model):
    """Weekly hours at a clinic: the clinic's default (no physiotherapist) or a physiotherapist's own."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="working_hours")
    physiotherapist = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="working_hours"
    )
    weekday = models.PositiveSmallIntegerField(help_text="0 = Monday ... 6 = Sunday.")
    start = models.TimeField()
    end = models.TimeField()
    modes = models.JSONField(default=list, blank=True, help_text="Empty: every mode the physiotherapist offers.")

    class Meta:
        ordering = ["site", "physiotherapist", "weekday", "start"]
        verbose_name_plural = "working hours"
        constraints = [
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="working_hours_ordered"),
            models.CheckConstraint(condition=models.Q(weekday__lte=6), name="working_hours_weekday_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.site.code} day {self.weekday} {self.start:%H:%M}-{self.end:%H:%M}"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class ExtraSlot(models.Model):
    physiotherapist = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="extra_slots")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    modes = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="extra_slot_ordered")]

    def __str__(self) -> str:
        return f"Extra time {self.starts_at:%Y-%m-%d %H:%M}"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Leave(models.Model):
    physiotherapist = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="leave")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name_plural = "leave"
        constraints = [models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="leave_ordered")]

    def __str__(self) -> str:
        return f"Leave {self.starts_at:%Y-%m-%d} - {self.ends_at:%Y-%m-%d}"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Holiday(models.Model):
    """A public holiday: no sessions that local day at the listed clinics (all, if none listed)."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=100)
    sites = models.ManyToManyField(Site, blank=True, related_name="holidays")

    class Meta:
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.name} ({self.date})"


class SessionStatus(models.TextChoices):
    PLANNED = "planned", "Not booked"
    BOOKED = "booked", "Booked"
    ATTENDED = "attended", "Attended"
    NO_SHOW = "no_show", "Did not attend"
    CANCELLED_LATE = "cancelled_late", "Cancelled late"
    CANCELLED = "cancelled", "Cancelled"


OCCUPYING = (SessionStatus.BOOKED, SessionStatus.ATTENDED, SessionStatus.NO_SHOW, SessionStatus.CANCELLED_LATE)


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
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
    booked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    booked_at = models.DateTimeField(null=True, blank=True)
    cancelled_reason = models.CharField(max_length=300, blank=True)

    class Meta:
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
    ATTENDED = "attended", "Attended"
    NO_SHOW = "no_show", "Did not attend"
    CANCELLED_LATE = "cancelled_late", "Cancelled late"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
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


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Prescription(models.Model):
    """The walking prescription set at a session."""

    session = models.OneToOneField(Session, on_delete=models.PROTECT, related_name="prescription")
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="prescriptions")
    walks_per_week = models.PositiveSmallIntegerField()
    minutes_per_walk = models.PositiveSmallIntegerField()
    progression = models.TextField(blank=True, help_text="How to progress toward the target.")
    starts_on = models.DateField()

    class Meta:
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


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Walk(models.Model):
    """A walk logged in the diary (by the participant from their link, or by staff)."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="walks")
    walked_on = models.DateField()
    minutes = models.PositiveSmallIntegerField()
    steps = models.PositiveIntegerField(null=True, blank=True)
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
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


# --- Adverse events ---------------------------------------------------------------------------


class SafetyPolicy(models.Model):
    """A trial's adverse-event categories and serious-event reporting deadlines."""

    trial = models.OneToOneField(Trial, on_delete=models.PROTECT, related_name="safety_policy")
    categories = models.JSONField(default=list, help_text='[["code", "label"], ...], e.g. body regions.')
    initial_report_hours = models.PositiveSmallIntegerField(default=24, help_text="A serious event is reported within.")
    followup_report_days = models.PositiveSmallIntegerField(default=7, help_text="Its first follow-up report is due within.")

    class Meta:
        verbose_name_plural = "safety policies"

    def __str__(self) -> str:
        return f"Safety policy of {self.trial}"


class AESource(models.TextChoices):
    STAFF = "staff", "Entered by staff"
    QUESTIONNAIRE = "questionnaire", "Reported in a questionnaire"
    SESSION = "session", "Reported at a session"


class AEStatus(models.TextChoices):
    PENDING = "pending", "To review"
    OPEN = "open", "Ongoing"
    RESOLVED = "resolved", "Resolved"
    DISMISSED = "dismissed", "Dismissed"


class Severity(models.TextChoices):
    MILD = "mild", "Mild"
    MODERATE = "moderate", "Moderate"
    SEVERE = "severe", "Severe"


class SeriousCriterion(models.TextChoices):
    DEATH = "death", "Death"
    LIFE_THREATENING = "life_threatening", "Life-threatening"
    HOSPITALISATION = "hospitalisation", "Hospitalisation or its prolongation"
    DISABILITY = "disability", "Persistent or significant disability"
    CONGENITAL_ANOMALY = "congenital_anomaly", "Congenital anomaly"
    OTHER_IMPORTANT = "other_important", "Other important medical event"


class Relatedness(models.TextChoices):
    NOT = "not", "Not related"
    UNLIKELY = "unlikely", "Unlikely"
    POSSIBLY = "possibly", "Possibly"
    PROBABLY = "probably", "Probably"
    DEFINITELY = "definitely", "Definitely"


class AEOutcome(models.TextChoices):
    RECOVERED = "recovered", "Recovered"
    RECOVERING = "recovering", "Recovering"
    NOT_RECOVERED = "not_recovered", "Not recovered"
    SEQUELAE = "sequelae", "Recovered with sequelae"
    FATAL = "fatal", "Fatal"
    UNKNOWN = "unknown", "Unknown"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class AdverseEvent(models.Model):
    """An adverse event of a participant: entered by staff, reported by a physiotherapist at a
    session, or a pending report from a questionnaire answer that staff review."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="adverse_events")
    source = models.CharField(max_length=16, choices=AESource.choices)
    status = models.CharField(max_length=10, choices=AEStatus.choices, default=AEStatus.OPEN)
    response = models.OneToOneField(
        "followup.QuestionnaireResponse", null=True, blank=True, on_delete=models.PROTECT, related_name="adverse_event"
    )
    session = models.ForeignKey(Session, null=True, blank=True, on_delete=models.PROTECT, related_name="adverse_events")
    reported_text = models.TextField(blank=True, help_text="What the participant wrote, for a questionnaire report.")
    onset_date = models.DateField(null=True, blank=True)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=40, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, blank=True)
    serious = models.BooleanField(default=False)
    serious_criteria = models.JSONField(default=list, blank=True)
    relatedness = models.CharField(max_length=12, choices=Relatedness.choices, blank=True)
    expected = models.BooleanField(null=True, blank=True)
    action_taken = models.CharField(max_length=300, blank=True)
    outcome = models.CharField(max_length=16, choices=AEOutcome.choices, blank=True)
    resolution_date = models.DateField(null=True, blank=True)
    dismissed_reason = models.CharField(max_length=300, blank=True)
    aware_at = models.DateTimeField(help_text="When the study team became aware of it.")
    serious_since = models.DateTimeField(null=True, blank=True, help_text="When it was first recorded as serious.")
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-aware_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(source__in=AESource.values), name="ae_source_valid"),
            models.CheckConstraint(condition=models.Q(status__in=AEStatus.values), name="ae_status_valid"),
            models.CheckConstraint(
                condition=~models.Q(serious=True) | models.Q(serious_since__isnull=False), name="ae_serious_has_time"
            ),
            models.CheckConstraint(
                condition=models.Q(resolution_date__isnull=True) | models.Q(resolution_date__gte=models.F("onset_date")),
                name="ae_resolution_after_onset",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=[AEStatus.PENDING, AEStatus.DISMISSED])
                | models.Q(onset_date__isnull=False, severity__gt="", category__gt=""),
                name="ae_reviewed_is_complete",
            ),
        ]
        indexes = [models.Index(fields=["status", "serious"], name="ae_by_status")]

    def __str__(self) -> str:
        return f"Adverse event {self.pk} of {self.participant_id}"

    def site_for_access(self) -> int:
        return self.participant.site_id


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent())
class AEFollowUp(models.Model):
    """A follow-up report on an adverse event until it is resolved."""

    event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, related_name="followups")
    reported_on = models.DateField()
    note = models.TextField()
    outcome = models.CharField(max_length=16, choices=AEOutcome.choices, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["event", "recorded_at"]

    def __str__(self) -> str:
        return f"Follow-up of {self.event_id} on {self.reported_on}"

    def site_for_access(self) -> int:
        return self.event.participant.site_id


class AccessLink(models.Model):
    """A participant's personal link. Only the SHA-256 of its token is stored; issuing a new one revokes the old."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="access_links")
    token_sha256 = models.CharField(max_length=64, unique=True)
    nonce = models.CharField(
        max_length=64,
        blank=True,
        help_text="Random value the token is derived from with the server's secret (HMAC), so messages can carry "
        "the live link; the database alone cannot produce a token.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "followup_accesslink"  # its table since it lived in follow-up
        constraints = [
            models.UniqueConstraint(
                fields=["participant"], condition=models.Q(revoked_at__isnull=True), name="one_live_link_per_participant"
            ),
        ]

    def __str__(self) -> str:
        return f"Link for participant {self.participant_id}"
