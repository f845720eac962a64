from __future__ import annotations

from django.db.models import QuerySet

from closeout.models import Release
from trial.models import Trial


def release_list(*, trial: Trial) -> QuerySet[Release]:
    """The trial's releases, newest first, with their lock and creator."""
    return Release.objects.filter(trial=trial).select_related("trial", "lock", "created_by", "retry").order_by("-number")


def release_get(*, trial: Trial, pk: int) -> Release | None:
    return release_list(trial=trial).filter(pk=pk).first()
