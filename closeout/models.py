"""Close-out: the database lock (signed), dataset releases and data queries.

These tables were created by the trial app and keep its names (``trial_*``).
"""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.db import models

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
    signature = models.CharField(max_length=64, help_text="HMAC-SHA256 binding signer, time, meaning and version.")
    signature_key_id = models.CharField(max_length=32, help_text="The signing key that made the signature (trial.signing).")
    open_items_note = models.CharField(max_length=500, blank=True, help_text="Why it was locked with items still open.")
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
    BLINDED = "blinded", "Blinded (no arm)"
    UNBLINDED = "unblinded", "Unblinded"


class ReleaseStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    BUILDING = "building", "Building"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class Release(models.Model):
    """A numbered, immutable dataset built from one lock version, as a zip under var/releases."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="releases")
    lock = models.ForeignKey(DatabaseLock, on_delete=models.PROTECT, related_name="releases")
    number = models.PositiveIntegerField()
    variant = models.CharField(max_length=10, choices=ReleaseVariant.choices)
    status = models.CharField(max_length=10, choices=ReleaseStatus.choices, default=ReleaseStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent built.")
    files = models.JSONField(default=list, help_text='[{"name", "rows", "sha256"}, ...] from the manifest.')
    zip_name = models.CharField(max_length=200, blank=True)
    zip_sha256 = models.CharField(max_length=64, blank=True)
    zip_bytes = models.PositiveBigIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

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
    OPEN = "open", "Open"
    ANSWERED = "answered", "Answered"
    CLOSED = "closed", "Closed"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), meta={"db_table": "trial_dataqueryevent"})
class DataQuery(models.Model):
    """A question about one field of a clinical record, raised by a data manager or a check, and
    answered by site staff. ``finding_key`` makes a check raise a query for a finding only once."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="queries")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="queries")
    record_type = models.CharField(max_length=80, help_text="app_label.model of the record, e.g. followup.questionnaireresponse.")
    record_id = models.BigIntegerField()
    field = models.CharField(max_length=80, blank=True)
    text = models.TextField()
    status = models.CharField(max_length=10, choices=QueryStatus.choices, default=QueryStatus.OPEN)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    check_code = models.CharField(max_length=60, blank=True, help_text="The data-quality check that raised it, if any.")
    finding_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    answer = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "trial_dataquery"
        ordering = ["-created_at"]
        verbose_name_plural = "data queries"
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=QueryStatus.values), name="query_status_valid"),
        ]
        indexes = [models.Index(fields=["record_type", "record_id"], name="query_by_record")]

    def __str__(self) -> str:
        return f"Query {self.pk} on {self.record_type} {self.record_id}"

    def site_for_access(self) -> int:
        return self.site_id
