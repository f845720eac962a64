"""Properties of the randomisation methods (pure functions, no database)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trial.randomisation import (
    ArmWeight,
    RandomisationConfigError,
    minimise,
    permuted_blocks,
    stratum_key,
    stratum_rng,
    validate_blocks,
)

ratios = st.sampled_from([(1, 1), (2, 1), (1, 2), (1, 1, 1), (3, 2)])


@st.composite
def block_config(draw):  # type: ignore[no-untyped-def]
    ratio = draw(ratios)
    unit = sum(ratio)
    sizes = draw(st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=3, unique=True))
    arms = [ArmWeight(f"arm{i}", r) for i, r in enumerate(ratio)]
    return arms, [unit * m for m in sizes]


@settings(max_examples=200, deadline=None)
@given(config=block_config(), count=st.integers(min_value=1, max_value=300), seed=st.text(min_size=16, max_size=40))
def test_every_completed_block_matches_the_ratio_and_sizes_come_from_the_set(config, count, seed) -> None:
    arms, sizes = config
    slots = permuted_blocks(arms=arms, block_sizes=sizes, count=count, rng=stratum_rng(seed, "s"))
    assert len(slots) >= count
    assert [s.position for s in slots] == list(range(1, len(slots) + 1))
    unit = sum(a.ratio for a in arms)
    blocks: dict[int, list[str]] = {}
    for slot in slots:
        blocks.setdefault(slot.block, []).append(slot.arm)
        assert slot.block_size in sizes
    for block, members in blocks.items():
        size = len(members)
        assert size in sizes
        assert Counter(members) == {a.code: a.ratio * size // unit for a in arms}, block


@settings(max_examples=200, deadline=None)
@given(config=block_config(), count=st.integers(min_value=1, max_value=300))
def test_running_imbalance_never_exceeds_half_the_largest_block(config, count) -> None:
    arms, sizes = config
    slots = permuted_blocks(arms=arms, block_sizes=sizes, count=count, rng=random.Random(count))
    unit = sum(a.ratio for a in arms)
    seen: Counter[str] = Counter()
    for n, slot in enumerate(slots, start=1):
        seen[slot.arm] += 1
        for arm in arms:
            expected = n * arm.ratio / unit
            assert abs(seen[arm.code] - expected) <= max(sizes) / 2


@settings(max_examples=50, deadline=None)
@given(seed=st.text(min_size=16, max_size=40), key=st.text(min_size=1, max_size=30))
def test_the_same_seed_gives_the_same_list_and_another_seed_another(seed, key) -> None:
    arms = [ArmWeight("walking", 1), ArmWeight("control", 1)]
    first = permuted_blocks(arms=arms, block_sizes=[4, 6, 8], count=100, rng=stratum_rng(seed, key))
    again = permuted_blocks(arms=arms, block_sizes=[4, 6, 8], count=100, rng=stratum_rng(seed, key))
    other = permuted_blocks(arms=arms, block_sizes=[4, 6, 8], count=100, rng=stratum_rng(seed + "x", key))
    assert first == again
    assert [s.arm for s in first] != [s.arm for s in other]


def test_walkback_blocks_use_4_6_and_8() -> None:
    arms = [ArmWeight("walking", 1), ArmWeight("control", 1)]
    slots = permuted_blocks(arms=arms, block_sizes=[4, 6, 8], count=2000, rng=stratum_rng("walkback-seed-0001", "k"))
    assert {s.block_size for s in slots} == {4, 6, 8}


def test_block_sizes_must_fit_the_ratio() -> None:
    with pytest.raises(RandomisationConfigError, match="not multiples of 3"):
        validate_blocks([ArmWeight("a", 2), ArmWeight("b", 1)], [4, 6])
    with pytest.raises(RandomisationConfigError, match="at least two arms"):
        validate_blocks([ArmWeight("a", 1)], [2])


def test_stratum_keys_are_stable_whatever_the_order() -> None:
    assert (
        stratum_key({"referral": "gp", "prior": "yes"})
        == stratum_key({"prior": "yes", "referral": "gp"})
        == "prior=yes|referral=gp"
    )


def _simulate_minimisation(n: int, probability: float, seed: int) -> tuple[list[str], dict[str, dict[str, Counter[str]]]]:
    rng = random.Random(seed)
    arms = [ArmWeight("walking", 1), ArmWeight("control", 1)]
    counts: dict[str, dict[str, dict[str, int]]] = {}
    margins: dict[str, dict[str, Counter[str]]] = {"prior": {}, "referral": {}}
    chosen = []
    for _ in range(n):
        levels = {"prior": rng.choice(["yes", "no"]), "referral": rng.choice(["community", "clinician"])}
        result = minimise(arms=arms, levels=levels, counts=counts, probability=probability, rng=rng)
        chosen.append(result.arm)
        for factor, level in levels.items():
            counts.setdefault(result.arm, {}).setdefault(factor, {}).setdefault(level, 0)
            counts[result.arm][factor][level] += 1
            margins[factor].setdefault(level, Counter())[result.arm] += 1
    return chosen, margins


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10_000), n=st.integers(min_value=20, max_value=400))
def test_minimisation_keeps_every_marginal_imbalance_small(seed, n) -> None:
    chosen, margins = _simulate_minimisation(n, 0.8, seed)
    for factor_levels in margins.values():
        for by_arm in factor_levels.values():
            assert abs(by_arm["walking"] - by_arm["control"]) <= 12
    totals = Counter(chosen)
    assert abs(totals["walking"] - totals["control"]) <= 12


def test_minimisation_stays_random() -> None:
    # With p = 0.8 about a fifth of the contested choices go against the minimising arm,
    # and two runs with different random streams differ.
    first, _ = _simulate_minimisation(400, 0.8, 1)
    second, _ = _simulate_minimisation(400, 0.8, 2)
    assert first != second
    rng = random.Random(7)
    arms = [ArmWeight("walking", 1), ArmWeight("control", 1)]
    counts = {"walking": {"prior": {"yes": 5}}, "control": {"prior": {"yes": 2}}}
    picks = Counter(
        minimise(arms=arms, levels={"prior": "yes"}, counts=counts, probability=0.8, rng=rng).arm for _ in range(5000)
    )
    assert 0.77 < picks["control"] / 5000 < 0.83
