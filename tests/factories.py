"""Factories that mirror the domain: trial -> site -> staff / participant."""

from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from participants.models import Participant, ParticipantStatus
from trial.models import Arm, Role, RoleCode, Site, StaffProfile, StratificationFactor, StratumLevel, Trial

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
    class Meta:
        model = Participant

    site = factory.SubFactory(SiteFactory)
    study_id = factory.Sequence(lambda n: f"WB-X-{n:04d}")

    class Params:
        randomised_to = None

    @factory.lazy_attribute
    def arm(self):  # type: ignore[no-untyped-def]
        return self.randomised_to

    @factory.lazy_attribute
    def randomised_at(self):  # type: ignore[no-untyped-def]
        return timezone.now() if self.randomised_to else None

    @factory.lazy_attribute
    def status(self):  # type: ignore[no-untyped-def]
        return ParticipantStatus.RANDOMISED if self.randomised_to else ParticipantStatus.ENROLLED
