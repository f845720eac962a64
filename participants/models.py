"""The participant's journey. Allocation details are arm-revealing: see ``ALLOCATION_FIELDS``."""

from __future__ import annotations

import pghistory
from django.db import models
from django.utils import timezone

from trial.models import Arm, Site


class ParticipantStatus(models.TextChoices):
    ENROLLED = "enrolled", "Enrolled"
    RANDOMISED = "randomised", "Randomised"
    WITHDRAWN = "withdrawn", "Withdrawn"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Participant(models.Model):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="participants")
    study_id = models.CharField(max_length=30, unique=True)
    status = models.CharField(max_length=12, choices=ParticipantStatus.choices, default=ParticipantStatus.ENROLLED)
    arm = models.ForeignKey(Arm, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    randomised_at = models.DateTimeField(null=True, blank=True)
    enrolled_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["study_id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(arm__isnull=True, randomised_at__isnull=True)
                | models.Q(arm__isnull=False, randomised_at__isnull=False),
                name="participant_arm_iff_randomised",
            ),
            models.CheckConstraint(condition=models.Q(status__in=ParticipantStatus.values), name="participant_status_valid"),
        ]

    def __str__(self) -> str:
        return self.study_id

    def site_for_access(self) -> int:
        return self.site_id


# Fields that reveal the arm, per model label: hidden from blinded roles wherever records
# (or their history) are shown.
ALLOCATION_FIELDS: dict[str, frozenset[str]] = {
    "participants.participant": frozenset({"arm", "arm_id"}),
}
