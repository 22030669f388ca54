"""Per-genotype seed statistics and a bootstrap interval for a front's hypervolume.

The retrain seeds are the resampled unit: in one draw, every genotype's accuracy is the mean
of as many of its own seeds' accuracies as it has, drawn with replacement; the front of those
means gets its hypervolume (tradeoff/pareto.py) under a fixed reference point. After
`draws` draws the interval is the central `level` share of the hypervolumes (percentiles
with linear interpolation, numpy's default). A `random.Random(seed)` drives the draws, so one
seed always gives one interval. With 3 seeds a genotype has only 10 distinct resampled means:
the interval says how much the front moves with the seeds, not the search's own variance.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from tradeoff.pareto import Point, hypervolume

DRAWS = 2000
LEVEL = 0.9
SEED = 0

# (energy of the genotype, its accuracy under each retrain seed)
SeededPoint = tuple[float, Sequence[float]]


def seed_stats(accs: Sequence[float]) -> dict:
    """Mean, sample std (0 for one seed), min and max of one genotype's accuracies."""
    if not accs:
        raise ValueError("no accuracies: a genotype needs at least one retrained seed")
    mean = sum(accs) / len(accs)
    std = math.sqrt(sum((a - mean) ** 2 for a in accs) / (len(accs) - 1)) if len(accs) > 1 else 0.0
    return {"mean": mean, "std": std, "min": min(accs), "max": max(accs)}


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0 <= q <= 1) of `values`, interpolating linearly between order stats."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def mean_front(points: Sequence[SeededPoint]) -> list[Point]:
    return [(energy, sum(accs) / len(accs)) for energy, accs in points]


def hypervolume_interval(points: Sequence[SeededPoint], reference: Point, draws: int = DRAWS,
                         seed: int = SEED, level: float = LEVEL) -> list[float] | None:
    """[low, high] of the front's hypervolume over seed resamples (module doc); None when
    there are no points."""
    if not points:
        return None
    rng = random.Random(seed)
    volumes = []
    for _ in range(draws):
        sample = [(energy, sum(rng.choice(accs) for _ in accs) / len(accs))
                  for energy, accs in points]
        volumes.append(hypervolume(sample, reference))
    tail = (1.0 - level) / 2
    return [quantile(volumes, tail), quantile(volumes, 1.0 - tail)]
