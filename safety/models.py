"""Adverse events: entered by staff, reported at sessions, or raised from answers; follow-ups.

These tables were created by the participants app and keep its names (``participants_*``).
"""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from participants.models import Participant
from trial.models import Trial

# --- Adverse events ---------------------------------------------------------------------------


class SafetyPolicy(models.Model):
    """A trial's adverse-event categories and serious-event reporting deadlines."""

    trial = models.OneToOneField(Trial, on_delete=models.PROTECT, related_name="safety_policy")
    categories = models.JSONField(default=list, help_text='[["code", "label"], ...], e.g. body regions.')
    initial_report_hours = models.PositiveSmallIntegerField(default=24, help_text=_("A serious event is reported within."))
    followup_report_days = models.PositiveSmallIntegerField(default=7, help_text=_("Its first follow-up report is due within."))

    class Meta:
        db_table = "participants_safetypolicy"
        verbose_name_plural = _("safety policies")

    def __str__(self) -> str:
        return f"Safety policy of {self.trial}"


class AESource(models.TextChoices):
    STAFF = "staff", _("Entered by staff")
    QUESTIONNAIRE = "questionnaire", _("Reported in a questionnaire")
    SESSION = "session", _("Reported at a session")


class AEStatus(models.TextChoices):
    PENDING = "pending", _("To review")
    OPEN = "open", _("Ongoing")
    RESOLVED = "resolved", _("Resolved")
    DISMISSED = "dismissed", _("Dismissed")


class Severity(models.TextChoices):
    MILD = "mild", _("Mild")
    MODERATE = "moderate", _("Moderate")
    SEVERE = "severe", _("Severe")


class SeriousCriterion(models.TextChoices):
    DEATH = "death", _("Death")
    LIFE_THREATENING = "life_threatening", _("Life-threatening")
    HOSPITALISATION = "hospitalisation", _("Hospitalisation or its prolongation")
    DISABILITY = "disability", _("Persistent or significant disability")
    CONGENITAL_ANOMALY = "congenital_anomaly", _("Congenital anomaly")
    OTHER_IMPORTANT = "other_important", _("Other important medical event")


class Relatedness(models.TextChoices):
    NOT = "not", _("Not related")
    UNLIKELY = "unlikely", _("Unlikely")
    POSSIBLY = "possibly", _("Possibly")
    PROBABLY = "probably", _("Probably")
    DEFINITELY = "definitely", _("Definitely")


class AEOutcome(models.TextChoices):
    RECOVERED = "recovered", _("Recovered")
    RECOVERING = "recovering", _("Recovering")
    NOT_RECOVERED = "not_recovered", _("Not recovered")
    SEQUELAE = "sequelae", _("Recovered with sequelae")
    FATAL = "fatal", _("Fatal")
    UNKNOWN = "unknown", _("Unknown")


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent(), meta={"db_table": "participants_adverseeventevent"}
)
class AdverseEvent(models.Model):
    """An adverse event of a participant: entered by staff, reported by a physiotherapist at a
    session, or a pending report from a questionnaire answer that staff review."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="adverse_events")
    source = models.CharField(max_length=16, choices=AESource.choices)
    status = models.CharField(max_length=10, choices=AEStatus.choices, default=AEStatus.OPEN)
    response = models.OneToOneField(
        "followup.QuestionnaireResponse", null=True, blank=True, on_delete=models.PROTECT, related_name="adverse_event"
    )
    session = models.ForeignKey(
        "intervention.Session", null=True, blank=True, on_delete=models.PROTECT, related_name="adverse_events"
    )
    reported_text = models.TextField(blank=True, help_text=_("What the participant wrote, for a questionnaire report."))
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
    aware_at = models.DateTimeField(help_text=_("When the study team became aware of it."))
    serious_since = models.DateTimeField(null=True, blank=True, help_text=_("When it was first recorded as serious."))
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "participants_adverseevent"
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


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), meta={"db_table": "participants_aefollowupevent"})
class AEFollowUp(models.Model):
    """A follow-up report on an adverse event until it is resolved."""

    event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, related_name="followups")
    reported_on = models.DateField()
    note = models.TextField()
    outcome = models.CharField(max_length=16, choices=AEOutcome.choices, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        db_table = "participants_aefollowup"
        ordering = ["event", "recorded_at"]

    def __str__(self) -> str:
        return f"Follow-up of {self.event_id} on {self.reported_on}"

    def site_for_access(self) -> int:
        return self.event.participant.site_id
