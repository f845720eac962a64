from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from presets.services import preset_apply
from trial.models import RandomisationList, RandomisationSlot, SecurityEvent, StratumCursor, Trial

SEED = "statisticians-secret-seed-42"


def test_generate_list_builds_every_stratum_in_whole_blocks_and_prints_nothing_sealed(
    walkback: Trial, make_staff, capsys
) -> None:
    make_staff("statistician", username="stat")
    call_command("generate_randomisation_list", "--user", "stat", "--per-stratum", "20", "--seed", SEED)
    out = capsys.readouterr().out
    assert SEED not in out and "walking" not in out and "control" not in out
    keys = set(RandomisationSlot.objects.values_list("stratum_key", flat=True))
    assert keys == {
        "prior_episodes_gt2=yes|referral=community",
        "prior_episodes_gt2=yes|referral=clinician",
        "prior_episodes_gt2=no|referral=community",
        "prior_episodes_gt2=no|referral=clinician",
    }
    for key in keys:
        slots = list(RandomisationSlot.objects.filter(stratum_key=key).order_by("position"))
        assert len(slots) >= 20
        assert sum(1 for s in slots if s.arm.code == "walking") * 2 == len(slots)  # whole 1:1 blocks
    assert StratumCursor.objects.count() == 4
    generated = RandomisationList.objects.get()
    assert generated.seed_sha256 and SEED not in generated.seed_sha256
    assert SecurityEvent.objects.filter(kind="configuration", username="stat").exists()


def test_the_same_seed_regenerates_the_same_list(walkback: Trial, make_staff) -> None:
    from presets.walkback import WALKBACK
    from trial import services

    twin = preset_apply(preset=type(WALKBACK)(**{**WALKBACK.__dict__, "code": "twin", "sites": ()}))
    services.randomisation_list_generate(trial=walkback, seed=SEED, per_stratum=30, by="stat")
    services.randomisation_list_generate(trial=twin, seed=SEED, per_stratum=30, by="stat")

    def listing(trial: Trial) -> list[tuple[str, int, str]]:
        return list(
            RandomisationSlot.objects.filter(trial=trial)
            .order_by("stratum_key", "position")
            .values_list("stratum_key", "position", "arm__code")
        )

    assert listing(walkback) == listing(twin)


def test_only_a_statistician_generates_the_list(walkback: Trial, make_staff) -> None:
    make_staff("coordinator", sites=["SYD"], username="coord")
    with pytest.raises(CommandError, match="not a statistician"):
        call_command("generate_randomisation_list", "--user", "coord", "--seed", SEED)
    assert not RandomisationSlot.objects.exists()


def test_a_short_seed_is_refused(walkback: Trial, make_staff) -> None:
    make_staff("statistician", username="stat")
    with pytest.raises(CommandError, match="at least 16 characters"):
        call_command("generate_randomisation_list", "--user", "stat", "--seed", "short")


def test_extending_a_list_continues_positions_and_blocks(walkback: Trial, make_staff) -> None:
    make_staff("statistician", username="stat")
    call_command("generate_randomisation_list", "--user", "stat", "--per-stratum", "10", "--seed", SEED)
    key = "prior_episodes_gt2=yes|referral=community"
    before = list(
        RandomisationSlot.objects.filter(stratum_key=key).order_by("position").values_list("position", "arm_id", "block")
    )
    call_command("generate_randomisation_list", "--user", "stat", "--per-stratum", "10", "--seed", SEED)
    after = list(
        RandomisationSlot.objects.filter(stratum_key=key).order_by("position").values_list("position", "arm_id", "block")
    )
    assert after[: len(before)] == before
    assert [p for p, _, _ in after] == list(range(1, len(after) + 1))
    assert after[len(before)][2] == before[-1][2] + 1


def test_import_a_redcap_style_allocation_table(walkback: Trial, make_staff, tmp_path: Path) -> None:
    make_staff("statistician", username="stat")
    table = tmp_path / "allocation.csv"
    table.write_text(
        "rand_group,prior_episodes_gt2,referral\n1,yes,community\n2,yes,community\ncontrol,no,clinician\nwalking,no,clinician\n"
    )
    call_command("import_randomisation_list", str(table), "--user", "stat", "--arm-column", "rand_group")
    slots = list(
        RandomisationSlot.objects.order_by("stratum_key", "position").values_list("stratum_key", "position", "arm__code")
    )
    assert slots == [
        ("prior_episodes_gt2=no|referral=clinician", 1, "control"),
        ("prior_episodes_gt2=no|referral=clinician", 2, "walking"),
        ("prior_episodes_gt2=yes|referral=community", 1, "walking"),
        ("prior_episodes_gt2=yes|referral=community", 2, "control"),
    ]


def test_an_import_with_bad_rows_names_them_and_imports_nothing(walkback: Trial, make_staff, tmp_path: Path) -> None:
    make_staff("statistician", username="stat")
    table = tmp_path / "allocation.csv"
    table.write_text("arm,prior_episodes_gt2,referral\nwalking,maybe,community\nplacebo,yes,community\n")
    with pytest.raises(CommandError) as exc:
        call_command("import_randomisation_list", str(table), "--user", "stat")
    assert "line 2: prior_episodes_gt2 'maybe'" in str(exc.value)
    assert "line 3: arm 'placebo'" in str(exc.value)
    assert not RandomisationSlot.objects.exists()
