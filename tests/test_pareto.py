"""Pareto front and hypervolume (pure logic, no core modules needed)."""

import random

import pytest

from tradeoff import pareto


def brute_force_front(points):
    return [not any(pareto.dominates(q, p) for q in points) for p in points]


@pytest.mark.parametrize("seed", range(20))
def test_pareto_mask_matches_brute_force(seed):
    rng = random.Random(seed)
    points = [(rng.choice([1.0, 2.0, 3.0, rng.uniform(0, 5)]), rng.choice([0.5, rng.random()]))
              for _ in range(rng.randint(1, 25))]
    assert pareto.pareto_mask(points) == brute_force_front(points)


def test_pareto_mask_small_cases():
    assert pareto.pareto_mask([]) == []
    # (2, .5) is dominated by (1, .6); duplicates of a front point both stay on the front.
    points = [(1.0, 0.6), (2.0, 0.5), (3.0, 0.9), (3.0, 0.9), (3.0, 0.8)]
    assert pareto.pareto_mask(points) == [True, False, True, True, False]


def test_hypervolume_hand_computed():
    # Reference (10, 0). Points (2, .5), (5, .8), (8, .6 dominated):
    # [2, 5) x .5 = 1.5, [5, 10) x .8 = 4.0 -> 5.5
    points = [(2.0, 0.5), (5.0, 0.8), (8.0, 0.6)]
    assert pareto.hypervolume(points, (10.0, 0.0)) == pytest.approx(5.5)
    # A reference accuracy of .4 removes .4 from every height: 3 x .1 + 5 x .4 = 2.3
    assert pareto.hypervolume(points, (10.0, 0.4)) == pytest.approx(2.3)


def test_hypervolume_ignores_points_beyond_reference_and_is_monotone():
    assert pareto.hypervolume([(12.0, 0.9), (3.0, 0.0)], (10.0, 0.0)) == 0.0
    base = [(2.0, 0.5), (5.0, 0.8)]
    assert pareto.hypervolume(base + [(1.0, 0.7)], (10.0, 0.0)) > pareto.hypervolume(
        base, (10.0, 0.0))


def test_default_reference_and_summary():
    points = [(2.0, 0.5), (4.0, 0.75)]
    assert pareto.reference_point(points) == pytest.approx((4.4, 0.0))
    summary = pareto.front_summary(points)
    # [2, 4) x .5 + [4, 4.4) x .75 = 1.0 + 0.3
    assert summary["hypervolume"] == pytest.approx(1.3)
    assert summary["hypervolume_normalised"] == pytest.approx(1.3 / 4.4)
    assert summary["pareto"] == [True, True]
    with pytest.raises(ValueError):
        pareto.reference_point([])
