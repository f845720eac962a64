from __future__ import annotations

import pytest
from django.utils import timezone

from participants import blinding
from tests.factories import ParticipantFactory, UserFactory
from trial import access
from trial.access import Perm
from trial.models import Role, Trial


@pytest.mark.parametrize(
    ("role", "sees_arm"),
    [
        ("coordinator", True),
        ("physiotherapist", True),
        ("investigator", False),
        ("data_manager", False),
        ("statistician", False),
    ],
)
def test_walkback_default_blinding_per_role(walkback: Trial, make_staff, role: str, sees_arm: bool) -> None:
    user = make_staff(role, sites=["SYD"])
    assert access.can_see_allocation(user, trial=walkback) is sees_arm


def test_blinding_is_configuration_not_code(walkback: Trial, make_staff) -> None:
    Role.objects.filter(trial=walkback, code="investigator").update(sees_allocation=True)
    assert access.can_see_allocation(make_staff("investigator"), trial=walkback)


def test_after_lock_investigators_and_statisticians_are_unblinded(walkback: Trial, make_staff) -> None:
    investigator, data_manager = make_staff("investigator"), make_staff("data_manager")
    walkback.data_locked_at = timezone.now()
    assert access.can_see_allocation(investigator, trial=walkback)
    assert not access.can_see_allocation(data_manager, trial=walkback)


def test_site_staff_see_only_their_sites_and_trial_wide_roles_see_all(walkback: Trial, make_staff) -> None:
    coordinator = make_staff("coordinator", sites=["SYD", "NCL"])
    investigator = make_staff("investigator")
    assert set(access.visible_sites(coordinator, trial=walkback).values_list("code", flat=True)) == {"SYD", "NCL"}
    assert access.visible_sites(investigator, trial=walkback).count() == walkback.sites.count()


def test_a_record_at_another_site_is_not_viewable(walkback: Trial, make_staff) -> None:
    coordinator = make_staff("coordinator", sites=["SYD"])
    here = ParticipantFactory(site=walkback.sites.get(code="SYD"))
    there = ParticipantFactory(site=walkback.sites.get(code="BNE"))
    assert blinding.can_view_record(coordinator, here, trial=walkback)
    assert not blinding.can_view_record(coordinator, there, trial=walkback)


def test_a_user_without_a_staff_role_can_do_nothing(walkback: Trial) -> None:
    user = UserFactory()
    acc = access.access_for(user, walkback)
    assert not acc.is_staff_member
    assert acc.perms == frozenset()
    assert access.visible_sites(user, trial=walkback).count() == 0


def test_a_superuser_without_a_profile_acts_as_an_administrator(walkback: Trial) -> None:
    user = UserFactory(is_superuser=True, is_staff=True)
    assert access.has_perm(user, Perm.CONFIGURE_TRIAL, trial=walkback)
    assert not access.can_see_allocation(user, trial=walkback)


def test_role_matrix_keeps_randomisation_with_coordinators_and_the_list_with_statisticians() -> None:
    holders = {perm: {role for role, perms in access.ROLE_PERMISSIONS.items() if perm in perms} for perm in Perm}
    assert holders[Perm.RANDOMISE] == {"coordinator"}
    assert holders[Perm.MANAGE_RANDOMISATION_LIST] == {"statistician"}
    assert holders[Perm.CONFIGURE_TRIAL] == {"admin"}
    assert holders[Perm.DELIVER_SESSIONS] == {"physiotherapist"}
    assert holders[Perm.BOOK_SESSIONS] == {"coordinator", "physiotherapist"}
