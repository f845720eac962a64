"""Factories that mirror the domain: trial -> site -> staff / participant."""

from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

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
