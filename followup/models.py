"""Follow-up: the schedule rules of a trial and each participant's questionnaire occurrences."""

from __future__ import annotations

import pghistory
import pgtrigger
from django.conf import settings
from django.db import models

from participants.models import Participant
from trial.models import Trial


class RuleKind(models.TextChoices):
    MONTHLY = "monthly", "Every month"
    FIXED = "fixed", "At fixed months"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class ScheduleRule(models.Model):
    """When an instrument is due: every month, or at listed months after randomisation."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="schedule_rules")
    instrument = models.CharField(max_length=40, help_text="Instrument code, e.g. monthly or timepoint.")
    kind = models.CharField(max_length=10, choices=RuleKind.choices)
    months = models.JSONField(
        default=list, blank=True, help_text="For fixed rules: months after randomisation, e.g. [3, 6, 9, 12]."
    )
    open_days_before = models.PositiveSmallIntegerField(default=0)
    close_days_after = models.PositiveSmallIntegerField(default=14)

    class Meta:
        ordering = ["instrument"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "instrument"], name="schedule_rule_unique_per_instrument"),
            models.CheckConstraint(condition=models.Q(kind__in=RuleKind.values), name="schedule_rule_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.instrument} ({self.get_kind_display().lower()})"


class OccurrenceStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Not yet open"
    OPEN = "open", "Open"
    COMPLETED = "completed", "Completed"
    MISSED = "missed", "Missed"
    CANCELLED = "cancelled", "Cancelled"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Occurrence(models.Model):
    """One questionnaire a participant is due to answer, with its window in their time zone."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="occurrences")
    instrument = models.CharField(max_length=40)
    month = models.PositiveSmallIntegerField()
    due_date = models.DateField(help_text="In the participant's time zone.")
    opens_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=OccurrenceStatus.choices, default=OccurrenceStatus.SCHEDULED)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["due_date", "instrument"]
        constraints = [
            models.UniqueConstraint(fields=["participant", "instrument", "month"], name="occurrence_unique_per_month"),
            models.CheckConstraint(condition=models.Q(closes_at__gt=models.F("opens_at")), name="occurrence_window_ordered"),
            models.CheckConstraint(condition=models.Q(status__in=OccurrenceStatus.values), name="occurrence_status_valid"),
            models.CheckConstraint(
                condition=~models.Q(status=OccurrenceStatus.COMPLETED) | models.Q(completed_at__isnull=False),
                name="occurrence_completed_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "opens_at"], name="occurrence_due_to_open"),
            models.Index(fields=["status", "closes_at"], name="occurrence_due_to_close"),
        ]

    def __str__(self) -> str:
        return f"{self.instrument} month {self.month} for {self.participant_id}"

    def site_for_access(self) -> int:
        return self.participant.site_id


class InstrumentVersion(models.Model):
    """A published questionnaire definition (``followup.instruments`` format). Never changed:
    a new version applies to occurrences opened after it is published."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="instrument_versions")
    code = models.CharField(max_length=40)
    version = models.CharField(max_length=20)
    title = models.CharField(max_length=200)
    definition = models.JSONField()
    published_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code", "-published_at"]
        constraints = [models.UniqueConstraint(fields=["trial", "code", "version"], name="instrument_version_unique")]
        triggers = [pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"


class ResponseSource(models.TextChoices):
    PARTICIPANT = "participant", "Participant (personal link)"
    STAFF = "staff", "Staff, on the participant's behalf"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class QuestionnaireResponse(models.Model):
    """The answers to one occurrence, with the scores the system computed from them."""

    occurrence = models.OneToOneField(Occurrence, on_delete=models.PROTECT, related_name="response")
    instrument_version = models.ForeignKey(InstrumentVersion, on_delete=models.PROTECT, related_name="+")
    answers = models.JSONField()
    scores = models.JSONField(default=dict)
    source = models.CharField(max_length=12, choices=ResponseSource.choices)
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    submitted_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(source=ResponseSource.PARTICIPANT) | models.Q(entered_by__isnull=False),
                name="response_staff_entry_names_the_staff",
            ),
        ]

    def __str__(self) -> str:
        return f"Response to {self.occurrence}"

    def site_for_access(self) -> int:
        return self.occurrence.participant.site_id


class AccessLink(models.Model):
    """A participant's personal link. Only the SHA-256 of its token is stored; issuing a new one revokes the old."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="access_links")
    token_sha256 = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["participant"], condition=models.Q(revoked_at__isnull=True), name="one_live_link_per_participant"
            ),
        ]

    def __str__(self) -> str:
        return f"Link for participant {self.participant_id}"
