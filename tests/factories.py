"""Factories that mirror the domain: trial -> site -> staff / participant."""

from __future__ import annotations

import datetime as dt
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from followup.baseline import BASELINE_INSTRUMENT
from followup.models import Occurrence, ResponseSource
from followup.services import response_submit
from participants.models import Participant, ParticipantStatus
from trial.models import Allocation, Arm, Role, RoleCode, Site, StaffProfile, StratificationFactor, StratumLevel, Trial

PASSWORD = "correct-horse-battery-staple"


class TrialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Trial
        django_get_or_create = ("code",)

    code = "walkback"
    name = "WalkBack"
    registration = "ACTRN12619001134112"
    timezone = "Australia/Sydney"
    recruitment_target = 701
    recruitment_start = dt.date(2026, 1, 1)
    recruitment_end = dt.date(2028, 10, 1)
    followup_end = dt.date(2029, 10, 1)


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    trial = factory.SubFactory(TrialFactory)
    code = factory.Sequence(lambda n: f"S{n:02d}")
    name = factory.LazyAttribute(lambda o: f"Clinic {o.code}")
    timezone = "Australia/Sydney"


class ArmFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Arm

    trial = factory.SubFactory(TrialFactory)
    code = factory.Sequence(lambda n: f"arm{n}")
    name = factory.LazyAttribute(lambda o: f"Arm {o.code}")
    ratio = 1


class FactorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StratificationFactor

    trial = factory.SubFactory(TrialFactory)
    code = factory.Sequence(lambda n: f"factor{n}")
    label = factory.LazyAttribute(lambda o: f"Factor {o.code}")


class LevelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StratumLevel

    factor = factory.SubFactory(FactorFactory)
    code = factory.Sequence(lambda n: f"level{n}")
    label = factory.LazyAttribute(lambda o: f"Level {o.code}")


class RoleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Role
        django_get_or_create = ("trial", "code")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.org")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class StaffFactory(factory.django.DjangoModelFactory):
    """A staff profile; pass ``sites=[...]`` to attach sites."""

    class Meta:
        model = StaffProfile
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    role = RoleCode.COORDINATOR

    @factory.post_generation
    def sites(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.sites.set(extracted)


class ParticipantFactory(factory.django.DjangoModelFactory):
    """A participant; ``randomised_to=arm`` also writes their allocation."""

    class Meta:
        model = Participant
        skip_postgeneration_save = True

    site = factory.SubFactory(SiteFactory)
    study_id = factory.Sequence(lambda n: f"WB-X-{n:04d}")

    @factory.post_generation
    def randomised_to(obj, create, extracted, **kwargs):
        if not (create and extracted is not None):
            return
        obj.randomised_at = timezone.now()
        obj.status = ParticipantStatus.RANDOMISED
        obj.save(update_fields=["randomised_at", "status"])
        Allocation.objects.create(
            participant=obj,
            arm=extracted,
            method="minimisation",
            stratum_key="",
            randomised_by=UserFactory(username="factory-randomiser"),
            randomised_at=obj.randomised_at,
        )


# An eligible screening, and the seed of the sealed randomisation lists made in tests.
ELIGIBLE = {
    "age_18_plus": True,
    "recent_episode": True,
    "recovered": True,
    "able_to_walk": True,
    "already_active": False,
    "walking_prevented": False,
    "recent_spinal_surgery": False,
}
SEED = "a-secret-seed-for-tests-only"


# A complete baseline questionnaire (presets.instrument_library.BASELINE), as a form would send it.
BASELINE_ANSWERS: dict[str, Any] = {
    "date_of_birth": "1980-02-29",
    "sex": "female",
    "height_cm": "168",
    "weight_kg": "70.5",
    "education": "degree",
    "employment": "full_time",
    "lbp_previous_episodes": "3",
    "lbp_episode_duration": "1_4w",
    "lbp_weeks_since_recovery": "2",
    "pain_now": "1",
    "pain_week_avg": "2",
    **{f"rmdq_{number:02d}": "yes" if number <= 4 else "no" for number in range(1, 25)},
    **dict.fromkeys(["eq5d_mobility", "eq5d_selfcare", "eq5d_activities", "eq5d_pain", "eq5d_anxiety"], "1"),
    "eq5d_pain": "2",
    "eq5d_vas": "80",
    "walking_minutes_week": "90",
    "active_days_week": "1",
}


def baseline_complete(participant: Participant, *, by: Any = None, **answers: Any) -> Any:
    """Answer a participant's baseline questionnaire (entered by ``by``, else by the participant),
    so that a trial requiring it lets them be randomised. Returns the response, or None when the
    trial has no baseline questionnaire."""
    occurrence = Occurrence.objects.filter(participant=participant, instrument=BASELINE_INSTRUMENT).first()
    if occurrence is None:
        return None
    source = ResponseSource.STAFF if by is not None else ResponseSource.PARTICIPANT
    return response_submit(occurrence=occurrence, raw={**BASELINE_ANSWERS, **answers}, source=source, by=by).response
