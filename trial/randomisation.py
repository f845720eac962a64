"""The randomisation methods, as pure functions (no database): easy to read and to test.

- ``permuted_blocks``: a stratum's list, blocks drawn at random from the configured sizes, each
  block holding the arms in their ratio, shuffled. The same seed gives the same list.
- ``minimise``: Pocock-Simon minimisation over the stratification factors, with a random element.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class RandomisationConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ArmWeight:
    code: str
    ratio: int


@dataclass(frozen=True)
class Slot:
    position: int
    arm: str
    block: int
    block_size: int


def stratum_key(levels: Mapping[str, str]) -> str:
    """A stable name for a stratum: factor=level pairs sorted by factor, e.g. ``a=yes|b=gp``."""
    return "|".join(f"{factor}={levels[factor]}" for factor in sorted(levels))


def stratum_rng(seed: str, key: str) -> random.Random:
    """An independent, reproducible generator per stratum, derived from the secret seed."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return random.Random(int.from_bytes(digest, "big"))


def validate_blocks(arms: Sequence[ArmWeight], block_sizes: Sequence[int]) -> None:
    if len(arms) < 2:
        raise RandomisationConfigError("Randomisation needs at least two arms.")
    if any(a.ratio < 1 for a in arms):
        raise RandomisationConfigError("Every arm's ratio must be at least 1.")
    if not block_sizes:
        raise RandomisationConfigError("No block sizes are configured for this trial.")
    unit = sum(a.ratio for a in arms)
    bad = [size for size in block_sizes if size <= 0 or size % unit]
    if bad:
        raise RandomisationConfigError(
            f"Block sizes {bad} are not multiples of {unit}, the sum of the arms' ratios "
            f"({':'.join(str(a.ratio) for a in arms)})."
        )


def permuted_blocks(
    *,
    arms: Sequence[ArmWeight],
    block_sizes: Sequence[int],
    count: int,
    rng: random.Random,
    start_position: int = 1,
    start_block: int = 1,
) -> list[Slot]:
    """At least ``count`` slots, in whole blocks."""
    validate_blocks(arms, block_sizes)
    unit = sum(a.ratio for a in arms)
    sizes = sorted(set(block_sizes))
    slots: list[Slot] = []
    block = start_block
    while len(slots) < count:
        size = rng.choice(sizes)
        contents = [a.code for a in arms for _ in range(a.ratio * size // unit)]
        rng.shuffle(contents)
        for arm in contents:
            slots.append(Slot(position=start_position + len(slots), arm=arm, block=block, block_size=size))
        block += 1
    return slots


@dataclass(frozen=True)
class MinimisationResult:
    arm: str
    imbalance: dict[str, float]
    minimising: list[str]
    followed_minimisation: bool


def minimise(
    *,
    arms: Sequence[ArmWeight],
    levels: Mapping[str, str],
    counts: Mapping[str, Mapping[str, Mapping[str, int]]],
    probability: float,
    rng: random.Random,
) -> MinimisationResult:
    """Pocock-Simon: for each candidate arm, the imbalance (range of ratio-weighted counts) summed
    over factors if the participant joined it. The arm with the least imbalance is chosen with
    ``probability``; otherwise another arm, at random. Ties are broken at random.

    ``counts[arm][factor][level]`` is how many participants already in ``arm`` have that level.
    """
    if len(arms) < 2:
        raise RandomisationConfigError("Randomisation needs at least two arms.")
    imbalance: dict[str, float] = {}
    for candidate in arms:
        total = 0.0
        for factor, level in levels.items():
            weighted = [
                (counts.get(a.code, {}).get(factor, {}).get(level, 0) + (1 if a.code == candidate.code else 0)) / a.ratio
                for a in arms
            ]
            total += max(weighted) - min(weighted)
        imbalance[candidate.code] = total
    best = min(imbalance.values())
    minimising = sorted(code for code, value in imbalance.items() if value == best)
    if len(minimising) == len(arms):
        # Nothing to minimise: a plain draw in the arms' ratio.
        population = [a.code for a in arms for _ in range(a.ratio)]
        return MinimisationResult(rng.choice(population), imbalance, minimising, followed_minimisation=True)
    if rng.random() < probability:
        return MinimisationResult(rng.choice(minimising), imbalance, minimising, followed_minimisation=True)
    others = sorted(a.code for a in arms if a.code not in minimising)
    return MinimisationResult(rng.choice(others), imbalance, minimising, followed_minimisation=False)
