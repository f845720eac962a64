from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pghistory.models
import pytest
from django.core.management import call_command

from presets.services import preset_apply
from presets.walkback import WALKBACK
from tests.factories import ParticipantFactory, SiteFactory
from trial import services
from trial.errors import ConfigurationFrozen
from trial.models import Arm, EligibilityCriterion, Role, Site, StratificationFactor, Trial
from trial.presets import ArmSpec, FactorSpec, LevelSpec


def test_walkback_preset_creates_the_trial_as_the_protocol_describes(walkback: Trial) -> None:
    assert walkback.registration == "ACTRN12619001134112"
    assert walkback.recruitment_target == 701
    assert [(a.code, a.ratio) for a in walkback.arms.order_by("order")] == [("walking", 1), ("control", 1)]
    strata = {f.code: [lv.code for lv in f.levels.order_by("order")] for f in walkback.strata.all()}
    assert strata == {"prior_episodes_gt2": ["yes", "no"], "referral": ["community", "clinician"]}
    kinds = list(walkback.eligibility.order_by("order").values_list("kind", flat=True))
    assert kinds == ["inclusion"] * 4 + ["exclusion"] * 3
    assert walkback.sites.count() >= 3
    assert set(Role.objects.filter(trial=walkback).values_list("code", flat=True)) == {
        "coordinator",
        "physiotherapist",
        "investigator",
        "data_manager",
        "statistician",
        "admin",
    }


def test_preset_dates_keep_the_trials_shape_relative_to_the_day_it_runs(walkback: Trial) -> None:
    # Run on 2 March 2026: 33 months of recruitment, then 12 months of follow-up.
    assert walkback.recruitment_start == dt.date(2026, 3, 2)
    assert walkback.recruitment_end == dt.date(2028, 12, 2)
    assert walkback.followup_end == dt.date(2029, 12, 2)


def test_running_the_preset_again_changes_nothing(walkback: Trial) -> None:
    events_before = pghistory.models.Events.objects.count()
    again = preset_apply(preset=WALKBACK, today=dt.date(2027, 1, 1))
    assert again.pk == walkback.pk
    assert again.recruitment_start == dt.date(2026, 3, 2)  # dates are not moved by a re-run
    assert pghistory.models.Events.objects.count() == events_before
    assert Arm.objects.count() == 2
    assert EligibilityCriterion.objects.count() == 7


def test_setup_walkback_command_is_idempotent_and_reports_the_configuration(db, capsys) -> None:
    call_command("setup_walkback")
    call_command("setup_walkback")
    out = capsys.readouterr().out
    assert "WalkBack (ACTRN12619001134112): 2 arms, 5 sites, 2 stratification factors, 7 eligibility criteria" in out
    assert Trial.objects.count() == 1
    assert Site.objects.count() == 5


def test_arms_and_ratio_can_change_before_anyone_is_randomised(walkback: Trial) -> None:
    three_arms = replace(WALKBACK, arms=(*WALKBACK.arms, ArmSpec("booster", "Booster", 2)))
    preset_apply(preset=three_arms)
    assert Arm.objects.filter(trial=walkback).count() == 3


def test_arms_ratio_and_strata_are_frozen_once_anyone_is_randomised(walkback: Trial) -> None:
    walking = walkback.arms.get(code="walking")
    ParticipantFactory(site=walkback.sites.get(code="SYD"), randomised_to=walking)

    with pytest.raises(ConfigurationFrozen, match="already been randomised"):
        services.arm_update(arm=walking, name=walking.name, ratio=2, reason="try 2:1")
    with pytest.raises(ConfigurationFrozen):
        preset_apply(preset=replace(WALKBACK, arms=WALKBACK.arms[:1]))
    new_strata = (*WALKBACK.strata[:1], FactorSpec("referral", "Referral", (LevelSpec("gp", "GP"),)))
    with pytest.raises(ConfigurationFrozen):
        preset_apply(preset=replace(WALKBACK, strata=new_strata))

    walking.refresh_from_db()
    assert walking.ratio == 1
    assert Arm.objects.filter(trial=walkback).count() == 2
    assert set(StratificationFactor.objects.get(code="referral").levels.values_list("code", flat=True)) == {
        "community",
        "clinician",
    }


def test_an_arm_can_be_renamed_after_randomisation(walkback: Trial) -> None:
    walking = walkback.arms.get(code="walking")
    ParticipantFactory(site=walkback.sites.get(code="SYD"), randomised_to=walking)
    services.arm_update(arm=walking, name="Walking programme", ratio=1, reason="Shorter label")
    walking.refresh_from_db()
    assert walking.name == "Walking programme"


def test_a_site_can_be_added_after_randomisation(walkback: Trial) -> None:
    ParticipantFactory(site=walkback.sites.get(code="SYD"), randomised_to=walkback.arms.first())
    site = SiteFactory.build(trial=walkback, code="ADL", timezone="Australia/Adelaide")
    services.configuration_record_save(obj=site, changed_fields=["code"], structural=False)
    assert Site.objects.filter(code="ADL").exists()
