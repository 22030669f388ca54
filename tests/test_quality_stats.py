"""The benchmark's statistics against hand-computed cases: hypervolume, seed statistics, the
seed bootstrap's interval and Kendall's tau."""

import math

import pytest

from tradeoff.bootstrap import hypervolume_interval, quantile, seed_stats
from tradeoff.pareto import hypervolume
from tradeoff.rank import kendall_tau


def test_hypervolume_of_a_two_point_staircase():
    # (1, 0.8) covers energies 1..3 at 0.8, (3, 0.9) covers 3..5 at 0.9: 1.6 + 1.8
    assert hypervolume([(3, 0.9), (1, 0.8)], (5, 0)) == pytest.approx(3.4)
    # a dominated point adds nothing
    assert hypervolume([(3, 0.9), (1, 0.8), (4, 0.5)], (5, 0)) == pytest.approx(3.4)


def test_seed_stats_of_three_seeds():
    stats = seed_stats([0.5, 0.7, 0.6])
    assert stats == pytest.approx({"mean": 0.6, "std": 0.1, "min": 0.5, "max": 0.7})
    assert seed_stats([0.4])["std"] == 0.0


def test_quantile_interpolates_between_order_statistics():
    assert quantile([4, 1, 3, 2], 0.5) == pytest.approx(2.5)
    assert quantile([1, 2, 3, 4, 5], 0.05) == pytest.approx(1.2)


def test_bootstrap_interval_of_one_genotype_with_two_seeds():
    # resampled means 0.5, 0.6, 0.7 with probabilities 1/4, 1/2, 1/4: each tail holds more
    # than 5 %, so the 90 % interval is exactly the extremes times the width (10 - 0)
    low, high = hypervolume_interval([(0.0, [0.5, 0.7])], (10.0, 0.0), draws=4000, seed=1)
    assert (low, high) == pytest.approx((5.0, 7.0))


def test_bootstrap_interval_collapses_when_seeds_agree_and_is_seeded():
    points = [(2.0, [0.6, 0.6, 0.6]), (4.0, [0.8, 0.8, 0.8])]
    assert hypervolume_interval(points, (5.0, 0.0)) == pytest.approx([2.0, 2.0])
    spread = [(2.0, [0.5, 0.6, 0.7]), (4.0, [0.7, 0.8, 0.95])]
    first = hypervolume_interval(spread, (5.0, 0.0), draws=300, seed=3)
    assert first == hypervolume_interval(spread, (5.0, 0.0), draws=300, seed=3)
    assert first[0] < hypervolume([(2.0, 0.6), (4.0, 0.8167)], (5.0, 0.0)) < first[1]
    assert hypervolume_interval([], (5.0, 0.0)) is None


def test_kendall_tau_hand_cases():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)  # 2 concordant, 1 not
    # tau-b with a tie in x: pairs (12 c)(13 c)(23 tie in x): 2 / sqrt(2 * 3)
    assert kendall_tau([1, 2, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))
    assert math.isnan(kendall_tau([1, 1], [1, 2]))
    with pytest.raises(ValueError, match="pair them"):
        kendall_tau([1, 2], [1])
