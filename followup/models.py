"""Follow-up: the schedule rules of a trial and each participant's questionnaire occurrences."""

from __future__ import annotations

import pghistory
import pgtrigger
from django.conf import settings
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from followup.baseline import BASELINE_INSTRUMENT, BASELINE_MONTH
from participants.models import Participant
from trial.models import Site, Trial
from trial.tallies import tally_triggers


class RuleKind(models.TextChoices):
    MONTHLY = "monthly", _("Every month")
    FIXED = "fixed", _("At fixed months")


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class ScheduleRule(models.Model):
    """When an instrument is due: every month, or at listed months after randomisation."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="schedule_rules")
    instrument = models.CharField(max_length=40, help_text=_("Instrument code, e.g. monthly or timepoint."))
    kind = models.CharField(max_length=10, choices=RuleKind.choices)
    months = models.JSONField(
        default=list, blank=True, help_text=_("For fixed rules: months after randomisation, e.g. [3, 6, 9, 12].")
    )
    open_days_before = models.PositiveSmallIntegerField(default=0)
    close_days_after = models.PositiveSmallIntegerField(default=14)
    reminder_days = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Days after the window opens to send reminders, e.g. [3, 7]. The invitation goes when it opens."),
    )

    class Meta:
        ordering = ["instrument"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "instrument"], name="schedule_rule_unique_per_instrument"),
            models.CheckConstraint(condition=models.Q(kind__in=RuleKind.values), name="schedule_rule_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.instrument} ({self.get_kind_display().lower()})"


class OccurrenceStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Not yet open")
    OPEN = "open", _("Open")
    COMPLETED = "completed", _("Completed")
    MISSED = "missed", _("Missed")
    CANCELLED = "cancelled", _("Cancelled")


# The statuses OccurrenceTally counts: closed questionnaires, which the progress reports read.
# Scheduled and open ones are left out, so that randomising (which writes a participant's whole
# schedule) and opening windows never wait on a shared counter row.
TALLIED_STATUSES = (OccurrenceStatus.COMPLETED.value, OccurrenceStatus.MISSED.value)


def _tally_func(changes: str) -> str:
    """The body of a statement-level trigger that adds a statement's changes (rows of participant,
    instrument, month, status and +1 or -1) to OccurrenceTally: one upsert per statement, its rows
    in key order, so that two statements lock counter rows in the same order."""
    statuses = ", ".join(f"'{status}'" for status in TALLIED_STATUSES)
    return f"""
        INSERT INTO followup_occurrencetally AS t (site_id, instrument, month, status, n)
        SELECT p.site_id, c.instrument, c.month, c.status, SUM(c.d)
        FROM ({changes}) AS c
        JOIN participants_participant AS p ON p.id = c.participant_id
        WHERE c.status IN ({statuses})
        GROUP BY p.site_id, c.instrument, c.month, c.status
        HAVING SUM(c.d) <> 0
        ORDER BY p.site_id, c.instrument, c.month, c.status
        ON CONFLICT ON CONSTRAINT occurrence_tally_unique DO UPDATE SET n = t.n + EXCLUDED.n;
        RETURN NULL;
    """  # noqa: S608 (constants of this module, no input)


@pghistory.track(
    pghistory.InsertEvent(),
    # Writing an occurrence's messages is bookkeeping, not a change to the clinical record.
    pghistory.UpdateEvent(condition=pgtrigger.AnyChange(exclude=["messages_planned_at"])),
    pghistory.DeleteEvent(),
)
class Occurrence(models.Model):
    """One questionnaire a participant is due to answer, with its window in their time zone."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="occurrences")
    instrument = models.CharField(max_length=40)
    month = models.PositiveSmallIntegerField()
    due_date = models.DateField(help_text=_("In the participant's time zone."))
    opens_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=OccurrenceStatus.choices, default=OccurrenceStatus.SCHEDULED)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_reason = models.CharField(max_length=200, blank=True)
    messages_planned_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When its invitation and reminders were written as message rows.")
    )

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
            # With the opening time in the index, the questionnaires open now are found in the index
            # alone (not among every future one still scheduled): the worklist reads 6,000 rows, not 130,000.
            models.Index(fields=["status", "closes_at", "opens_at"], name="occurrence_due_to_close"),
            models.Index(
                fields=["opens_at"],
                condition=models.Q(status="open", messages_planned_at__isnull=True),
                name="occurrence_messages_to_plan",
            ),
        ]
        # Keep OccurrenceTally in step with every statement that writes occurrences.
        triggers = tally_triggers(columns="participant_id, instrument, month, status", func=_tally_func)

    def __str__(self) -> str:
        return f"{self.instrument} month {self.month} for {self.participant_id}"

    def site_for_access(self) -> int:
        return self.participant.site_id

    @property
    def label(self) -> str:
        """How pages name it: "Baseline questionnaire", or the instrument and its month."""
        if self.month == BASELINE_MONTH and self.instrument == BASELINE_INSTRUMENT:
            return gettext("Baseline questionnaire")
        return gettext("%(instrument)s month %(month)s") % {"instrument": self.instrument.capitalize(), "month": self.month}


class OccurrenceTally(models.Model):
    """How many of a site's questionnaires stand closed (completed or missed), by instrument and
    month: what the dashboard and the DMC report count, without reading every questionnaire.

    Written only by the triggers on Occurrence, in the transaction that changes the
    questionnaires, so it is never behind them; ``occurrence_tally_rebuild`` recounts it from the
    questionnaires (after a restore that skipped triggers, say)."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    instrument = models.CharField(max_length=40)
    month = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=OccurrenceStatus.choices)
    n = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "instrument", "month", "status"], name="occurrence_tally_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.instrument} month {self.month} {self.status} at {self.site_id}: {self.n}"


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
    PARTICIPANT = "participant", _("Participant (personal link)")
    STAFF = "staff", _("Staff, on the participant's behalf")


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


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class ResponseDraft(models.Model):
    """The answers a participant has given so far, saved at each step of their questionnaire, so they
    can stop and go on later, from any device. Never a response: nothing counts it (outcomes,
    completion, releases read ``QuestionnaireResponse``); it is deleted when the response is recorded."""

    occurrence = models.OneToOneField(Occurrence, on_delete=models.PROTECT, related_name="draft")
    instrument_version = models.ForeignKey(InstrumentVersion, on_delete=models.PROTECT, related_name="+")
    answers = models.JSONField(default=dict, help_text=_("Typed answers (as clean_answers gives them), by item code."))
    step = models.PositiveSmallIntegerField(default=0, help_text=_("The furthest step saved with Next (0: none yet)."))
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Draft answers to {self.occurrence}"

    def site_for_access(self) -> int:
        return self.occurrence.participant.site_id


class CallOutcome(models.TextChoices):
    REACHED = "reached", _("Reached: will complete it")
    COMPLETED_BY_PHONE = "completed", _("Reached: answered by phone")
    NO_ANSWER = "no_answer", _("No answer")
    MESSAGE_LEFT = "message_left", _("Left a message")
    WRONG_NUMBER = "wrong_number", _("Wrong number")
    DECLINED = "declined", _("Declined to answer")


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent())
class CallLog(models.Model):
    """A follow-up call by staff: who was called, about what, and what came of it."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="calls")
    occurrence = models.ForeignKey(Occurrence, null=True, blank=True, on_delete=models.PROTECT, related_name="calls")
    outcome = models.CharField(max_length=20, choices=CallOutcome.choices)
    note = models.CharField(max_length=500, blank=True)
    called_at = models.DateTimeField()
    called_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-called_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(outcome__in=CallOutcome.values), name="call_outcome_valid"),
        ]
        indexes = [models.Index(fields=["participant", "-called_at"], name="call_by_participant")]

    def __str__(self) -> str:
        return f"Call to {self.participant_id}: {self.get_outcome_display()}"

    def site_for_access(self) -> int:
        return self.participant.site_id


# --- Derived outcomes -------------------------------------------------------------------------


class OutcomePolicy(models.Model):
    """The rules of a trial's recurrence outcomes, as configuration (see followup/outcomes.py)."""

    class CensorAt(models.TextChoices):
        LAST_QUESTIONNAIRE = "last_questionnaire", _("The last completed monthly questionnaire")
        EVENT_DATE = "event_date", _("The withdrawal or end-of-follow-up date itself")

    trial = models.OneToOneField(Trial, on_delete=models.PROTECT, related_name="outcome_policy")
    instrument = models.CharField(max_length=40, default="monthly", help_text=_("The questionnaire the outcomes come from."))
    interference_threshold = models.PositiveSmallIntegerField(
        default=2,
        help_text=_("Interference with daily activities (0-4) that makes a recurrence activity-limiting; 2 = somewhat."),
    )
    pain_threshold = models.PositiveSmallIntegerField(
        null=True, blank=True, default=2, help_text=_("Average pain (0-10) also required; empty: no pain threshold.")
    )
    censor_withdrawn_at = models.CharField(max_length=20, choices=CensorAt.choices, default=CensorAt.LAST_QUESTIONNAIRE)
    censor_completed_at = models.CharField(max_length=20, choices=CensorAt.choices, default=CensorAt.LAST_QUESTIONNAIRE)

    def __str__(self) -> str:
        return f"Outcome rules of {self.trial}"


class OutcomeCode(models.TextChoices):
    ACTIVITY_LIMITING = "activity_limiting", _("First activity-limiting recurrence (primary)")
    ANY = "any", _("First recurrence")
    CARE_SEEKING = "care_seeking", _("First care-seeking recurrence")


class CensorReason(models.TextChoices):
    LAST_QUESTIONNAIRE = "last_questionnaire", _("Last completed monthly questionnaire")
    WITHDRAWAL = "withdrawal", _("Withdrawal from follow-up")
    ADMINISTRATIVE_END = "administrative_end", _("Administrative end of follow-up")


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent())
class Outcome(models.Model):
    """One time-to-event outcome of a participant: derived from the monthly questionnaires (kept up
    to date in the same transaction as the answers), and optionally adjudicated, which wins."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="outcomes")
    code = models.CharField(max_length=20, choices=OutcomeCode.choices)
    event = models.BooleanField(default=False)
    event_date = models.DateField(null=True, blank=True)
    censored_at = models.DateField(null=True, blank=True)
    censor_reason = models.CharField(max_length=20, choices=CensorReason.choices, blank=True)
    days = models.IntegerField(null=True, blank=True)
    source_occurrence = models.ForeignKey(Occurrence, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    adjudicated = models.BooleanField(default=False)
    adjudicated_event = models.BooleanField(null=True, blank=True)
    adjudicated_event_date = models.DateField(null=True, blank=True)
    adjudication_reason = models.CharField(max_length=300, blank=True)
    adjudicated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    adjudicated_at = models.DateTimeField(null=True, blank=True)
    derived_at = models.DateTimeField()

    class Meta:
        ordering = ["participant", "code"]
        constraints = [
            models.UniqueConstraint(fields=["participant", "code"], name="outcome_once_per_participant"),
            models.CheckConstraint(condition=models.Q(code__in=OutcomeCode.values), name="outcome_code_valid"),
            models.CheckConstraint(
                condition=models.Q(event=True, event_date__isnull=False) | models.Q(event=False, event_date__isnull=True),
                name="outcome_event_has_date",
            ),
            models.CheckConstraint(
                condition=~models.Q(adjudicated=True) | ~models.Q(adjudication_reason=""), name="outcome_adjudication_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} of {self.participant_id}"

    def site_for_access(self) -> int:
        return self.participant.site_id


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent())
class OutcomeSummary(models.Model):
    """Other derived follow-up measures of a participant: recurrences, work absence, care sought."""

    participant = models.OneToOneField(Participant, on_delete=models.PROTECT, related_name="outcome_summary")
    recurrences = models.PositiveSmallIntegerField(default=0)
    care_seeking_recurrences = models.PositiveSmallIntegerField(default=0)
    work_days_missed = models.PositiveIntegerField(default=0)
    work_days_by_month = models.JSONField(default=dict, help_text='{"1": 0, "2": 3, ...}: days off work by month.')
    monthly_completed = models.PositiveSmallIntegerField(default=0)
    monthly_missed = models.PositiveSmallIntegerField(default=0)
    # The lost-to-follow-up rule reads these (kept with the rest, so the worklist, CONSORT and the
    # DMC report need not scan every closed questionnaire): missed since the latest completed one.
    missed_in_a_row = models.PositiveSmallIntegerField(
        default=0, help_text="Monthly questionnaires missed since the latest one completed."
    )
    last_missed = models.ForeignKey("Occurrence", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_missed_due = models.DateField(null=True, blank=True)
    derived_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["missed_in_a_row"], name="summary_missed_in_a_row", condition=models.Q(missed_in_a_row__gt=0))
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(missed_in_a_row=0, last_missed__isnull=True)
                | models.Q(missed_in_a_row__gt=0, last_missed_due__isnull=False),
                name="outcome_summary_last_missed_when_missed",
            )
        ]

    def __str__(self) -> str:
        return f"Outcome summary of {self.participant_id}"

    def site_for_access(self) -> int:
        return self.participant.site_id
