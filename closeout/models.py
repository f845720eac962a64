"""Close-out: the database lock (signed), dataset releases and data queries.

These tables were created by the trial app and keep its names (``trial_*``).
"""

from __future__ import annotations

from typing import Any

import pghistory
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from trial.models import Site, Trial

# --- Database lock and dataset releases ---------------------------------------------------------


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), meta={"db_table": "trial_databaselockevent"})
class DatabaseLock(models.Model):
    """One lock of the trial's database, signed electronically; an unlock (also signed, with a
    reason) closes it, and the next lock is a new version."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="locks")
    version = models.PositiveIntegerField()
    locked_at = models.DateTimeField()
    locked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signer_name = models.CharField(max_length=200)
    meaning = models.CharField(max_length=300)
    signature = models.CharField(max_length=64, help_text=_("HMAC-SHA256 binding signer, time, meaning and version."))
    signature_key_id = models.CharField(max_length=32, help_text=_("The signing key that made the signature (trial.signing)."))
    open_items_note = models.CharField(max_length=500, blank=True, help_text=_("Why it was locked with items still open."))
    unlocked_at = models.DateTimeField(null=True, blank=True)
    unlocked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    unlock_signer_name = models.CharField(max_length=200, blank=True)
    unlock_reason = models.CharField(max_length=500, blank=True)
    unlock_signature = models.CharField(max_length=64, blank=True)
    unlock_signature_key_id = models.CharField(max_length=32, blank=True)

    class Meta:
        db_table = "trial_databaselock"
        ordering = ["trial", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "version"], name="lock_version_unique"),
            models.UniqueConstraint(fields=["trial"], condition=models.Q(unlocked_at__isnull=True), name="one_active_lock"),
            models.CheckConstraint(
                condition=models.Q(unlocked_at__isnull=True) | ~models.Q(unlock_reason=""), name="unlock_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"Lock v{self.version} of {self.trial}"


class ReleaseVariant(models.TextChoices):
    BLINDED = "blinded", _("Blinded (no arm)")
    UNBLINDED = "unblinded", _("Unblinded")


class ReleaseStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    BUILDING = "building", _("Building")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")


class Release(models.Model):
    """A numbered, immutable dataset built from one lock version, as a zip under var/releases."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="releases")
    lock = models.ForeignKey(DatabaseLock, on_delete=models.PROTECT, related_name="releases")
    number = models.PositiveIntegerField()
    variant = models.CharField(max_length=10, choices=ReleaseVariant.choices)
    status = models.CharField(max_length=10, choices=ReleaseStatus.choices, default=ReleaseStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text=_("Percent built."))
    files = models.JSONField(default=list, help_text='[{"name", "rows", "sha256"}, ...] from the manifest.')
    zip_name = models.CharField(max_length=200, blank=True)
    zip_sha256 = models.CharField(max_length=64, blank=True)
    zip_bytes = models.PositiveBigIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_(
            "Last sign of life: the build's heartbeat while building, or when its build was last queued; its lease runs from here."
        ),
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    retry_of = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="retry",
        help_text=_("The failed release this one retries."),
    )

    class Meta:
        db_table = "trial_release"
        ordering = ["trial", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "number"], name="release_number_unique"),
            models.CheckConstraint(condition=models.Q(variant__in=ReleaseVariant.values), name="release_variant_valid"),
            models.CheckConstraint(condition=models.Q(status__in=ReleaseStatus.values), name="release_status_valid"),
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="release_progress_percent"),
        ]

    def __str__(self) -> str:
        return f"Release {self.number} ({self.variant})"


# --- Data queries ---------------------------------------------------------------------------------


class QueryStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ANSWERED = "answered", _("Answered")
    CLOSED = "closed", _("Closed")


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), meta={"db_table": "trial_dataqueryevent"})
class DataQuery(models.Model):
    """A question about one field of a clinical record, raised by a data manager or a check, and
    answered by site staff. ``finding_key`` makes a check raise a query for a finding only once."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="queries")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="queries")
    record_type = models.CharField(
        max_length=80, help_text=_("app_label.model of the record, e.g. followup.questionnaireresponse.")
    )
    record_id = models.BigIntegerField()
    field = models.CharField(max_length=80, blank=True)
    text = models.TextField()
    status = models.CharField(max_length=10, choices=QueryStatus.choices, default=QueryStatus.OPEN)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    check_code = models.CharField(max_length=60, blank=True, help_text=_("The data-quality check that raised it, if any."))
    finding_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    answer = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "trial_dataquery"
        ordering = ["-created_at"]
        verbose_name_plural = _("data queries")
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=QueryStatus.values), name="query_status_valid"),
        ]
        indexes = [models.Index(fields=["record_type", "record_id"], name="query_by_record")]

    def __str__(self) -> str:
        return f"Query {self.pk} on {self.record_type} {self.record_id}"

    def site_for_access(self) -> int:
        return self.site_id


# --- The economic evaluation's configuration ------------------------------------------------------

EQ5D_DIMENSIONS = 5
EQ5D_LEVELS = 5


def value_set_errors(value_set: Any) -> list[str]:
    """What is wrong with an EQ-5D-5L value set (empty: nothing). The format, as data so another
    country's set needs no code: ``name``, ``source`` (the publication), ``start`` (the value of
    11111, usually 1), ``intercept`` (subtracted from every other state; 0 when the model has none),
    ``decrements`` (one list per dimension in the profile's order, mobility to anxiety/depression:
    the amount subtracted at levels 1 to 5) and ``any_level`` (optional, e.g. {"5": 0.153}: subtracted
    once when any dimension is at that level)."""
    if not isinstance(value_set, dict):
        return ["The value set must be a JSON object."]
    errors = [f"The value set needs '{key}'." for key in ("name", "source", "decrements") if not value_set.get(key)]
    decrements = value_set.get("decrements")
    if decrements is not None and (
        not isinstance(decrements, list)
        or len(decrements) != EQ5D_DIMENSIONS
        or any(not isinstance(row, list) or len(row) != EQ5D_LEVELS for row in decrements)
        or any(not _is_number(value) for row in decrements for value in row)
    ):
        errors.append(f"'decrements' must be {EQ5D_DIMENSIONS} lists (one per dimension) of {EQ5D_LEVELS} numbers.")
    for key in ("start", "intercept"):
        if key in value_set and not _is_number(value_set[key]):
            errors.append(f"'{key}' must be a number.")
    any_level = value_set.get("any_level", {})
    if not isinstance(any_level, dict) or any(
        key not in {str(level) for level in range(1, EQ5D_LEVELS + 1)} or not _is_number(value)
        for key, value in any_level.items()
    ):
        errors.append("'any_level' must map levels ('1' to '5') to numbers.")
    return errors


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class EconomicPolicy(models.Model):
    """The cost-effectiveness analysis of a trial's releases (``closeout.releases.sap``): how EQ-5D-5L
    answers become utilities, what each kind of care, a day off work and an education session cost,
    and the threshold the incremental cost per QALY is judged against. Without a value set or unit
    costs the analysis says it is not configured."""

    trial = models.OneToOneField(Trial, on_delete=models.PROTECT, related_name="economic_policy")
    value_set = models.JSONField(
        default=dict,
        blank=True,
        help_text=_("The EQ-5D-5L value set: name, source, start, intercept, decrements (5 dimensions x 5 levels), any_level."),
    )
    currency = models.CharField(max_length=3, default="AUD", help_text=_("ISO 4217 code of every cost, e.g. AUD, GBP."))
    price_year = models.PositiveSmallIntegerField(null=True, blank=True, help_text=_("The year the unit costs are priced in."))
    care_unit_costs = models.JSONField(
        default=dict,
        blank=True,
        help_text=_(
            "The cost of one contact with each kind of care the monthly questionnaire asks about (its care_from "
            'codes), e.g. {"gp": 42.85, "physiotherapist": 90}.'
        ),
    )
    work_day_cost = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True, help_text=_("The cost of a day off work; empty: not costed.")
    )
    session_cost = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True, help_text=_("The cost of one education session attended.")
    )
    discount_rate = models.DecimalField(
        max_digits=5, decimal_places=4, default=0, help_text=_("Per year, for costs and QALYs after the first year (0.05 = 5%).")
    )
    horizon_months = models.PositiveSmallIntegerField(default=12, help_text=_("The time horizon of QALYs and costs."))
    wtp_threshold = models.DecimalField(
        max_digits=12, decimal_places=2, default=50000, help_text=_("Willingness to pay for one QALY.")
    )
    bootstrap_resamples = models.PositiveIntegerField(default=1000)
    bootstrap_seed = models.PositiveIntegerField(default=20190901, help_text=_("Fixed, so a release's results never change."))

    class Meta:
        verbose_name_plural = _("economic policies")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(discount_rate__gte=0) & models.Q(discount_rate__lt=1), name="economic_discount_rate_range"
            ),
            models.CheckConstraint(condition=models.Q(horizon_months__gte=1), name="economic_horizon_positive"),
            models.CheckConstraint(
                condition=models.Q(bootstrap_resamples__gte=100) & models.Q(bootstrap_resamples__lte=100000),
                name="economic_resamples_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Economic evaluation of {self.trial}"

    @property
    def configured(self) -> bool:
        return bool(self.value_set) and bool(self.care_unit_costs)

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.value_set and (problems := value_set_errors(self.value_set)):
            errors["value_set"] = problems
        costs = self.care_unit_costs
        if not isinstance(costs, dict) or any(
            not isinstance(key, str) or not _is_number(value) or value < 0 for key, value in costs.items()
        ):
            errors["care_unit_costs"] = ["A JSON object of care codes to costs of zero or more."]
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            errors["currency"] = ["Three capital letters (ISO 4217), e.g. AUD."]
        if errors:
            raise ValidationError(errors)


# --- Where each randomised participant stands in the CONSORT flow ---------------------------------


class ParticipantFlow(models.Model):
    """One narrow row per randomised participant: site, arm, withdrawal, whether analysed (the
    primary outcome derived) and whether they received the intervention (a session attended).
    The CONSORT and DMC reports group these rows instead of joining four tables over every
    participant (98 ms at 50,000 participants, against a few ms here).

    Written only by triggers (migration 0005) on the rows it is read from, in the transaction that
    writes them, each recounting its participant from those rows; ``participant_flow_rebuild``
    recounts every participant (after a load with triggers off)."""

    participant = models.OneToOneField("participants.Participant", primary_key=True, on_delete=models.CASCADE, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    arm = models.ForeignKey("trial.Arm", on_delete=models.CASCADE, related_name="+")
    withdrawal_scope = models.CharField(max_length=12, blank=True)
    analysed = models.BooleanField()
    received_intervention = models.BooleanField()

    def __str__(self) -> str:
        return f"flow of {self.participant_id}"
