from __future__ import annotations

import pytest
from django.utils import timezone

from presets.services import preset_apply
from presets.walkback import WALKBACK
from trial import services
from trial.errors import DataLocked
from trial.guard import ensure_writable
from trial.models import Arm, Trial


@pytest.fixture
def locked(walkback: Trial) -> Trial:
    Trial.objects.filter(pk=walkback.pk).update(data_locked_at=timezone.now())
    walkback.refresh_from_db()
    return walkback


def test_writes_are_allowed_while_the_trial_is_open(walkback: Trial) -> None:
    ensure_writable(trial=walkback)


def test_a_locked_trial_refuses_writes_with_a_clear_message(locked: Trial) -> None:
    with pytest.raises(DataLocked, match="database was locked"):
        ensure_writable(trial=locked)


def test_services_refuse_and_write_nothing_once_locked(locked: Trial) -> None:
    arm = Arm.objects.get(trial=locked, code="walking")
    with pytest.raises(DataLocked):
        services.arm_update(arm=arm, name="Renamed", ratio=1, reason="after lock")
    with pytest.raises(DataLocked):
        preset_apply(preset=WALKBACK)
    arm.refresh_from_db()
    assert arm.name == "Walking and education programme"


def test_the_guard_reads_the_lock_from_the_database_not_a_stale_object(walkback: Trial) -> None:
    stale = Trial.objects.get(pk=walkback.pk)
    Trial.objects.filter(pk=walkback.pk).update(data_locked_at=timezone.now())
    with pytest.raises(DataLocked):
        ensure_writable(trial=stale)
