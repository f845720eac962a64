"""Follow-up: the schedule rules of a trial and each participant's questionnaire occurrences."""

from __future__ import annotations

import pghistory
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
