"""The search-time rank policy spares exactly low-rank multipliers; its `auto` rank emulates
EvoApproxLib tables within 10 % of their own effect on the logged conv, checked against the exact
LUT sum; and the search states, per multiplier, the rank it uses and the surrogate's error."""

import pytest

from approx import Emulation, MultiplierMixture
from approx.conv import approx_conv2d
from approx.fidelity import realistic_operands, relative_error
from approx.lowrank import MAX_RANK, is_exactly_low_rank
from approx.reference import gather_conv2d
from approx.registry import load_multiplier
from approx.settings import rank_policy_arg
from approx.surrogate import (
    AUTO_RANK,
    FIDELITY_SHARE,
    fidelity_rank,
    surrogate_lines,
    surrogate_rank,
    surrogate_summary,
)


def test_cap_truncates_only_multipliers_that_are_not_exactly_low_rank():
    for name in ("trunc6", "trunc8", "bam2_4", "bam4_8", "drum4", "kulkarni"):
        multiplier = load_multiplier(name)
        assert is_exactly_low_rank(multiplier)
        assert surrogate_rank(multiplier, 2) == surrogate_rank(multiplier, None) <= MAX_RANK
    mitchell = load_multiplier("mitchell")
    assert not is_exactly_low_rank(mitchell) and surrogate_rank(mitchell, 2) == 2
    assert surrogate_rank(load_multiplier("trunc8"), 2, truncate_low_rank=True) == 2


def test_summary_states_rank_and_surrogate_error():
    rows = surrogate_summary(["trunc8", "mitchell", "float"], 2)
    by_name = {row["name"]: row for row in rows}
    assert set(by_name) == {"trunc8", "mitchell"}
    assert by_name["trunc8"]["rank"] == 8 and not by_name["trunc8"]["truncated"]
    assert by_name["trunc8"]["lowrank_rel_err_pct"] < 1e-3
    assert by_name["mitchell"]["rank"] == 2 and by_name["mitchell"]["truncated"]
    assert 0 < by_name["mitchell"]["lowrank_rel_err_pct"] < by_name["mitchell"][
        "multiplier_effect_pct"]
    lines = surrogate_lines(rows)
    assert lines[0].startswith("trunc8: rank 8 (its true rank: exact")
    assert "capped at 2" in lines[1] and "of it)" in lines[1]
    forced = surrogate_summary(["trunc8"], 2, truncate_low_rank=True)[0]
    assert forced["rank"] == 2 and forced["truncated"] and forced["lowrank_rel_err_pct"] > 1


def test_mixture_members_follow_the_same_cap():
    plan = MultiplierMixture(["exact", "trunc8", "mitchell"]).plan(2)
    assert [rank for _, _, rank in plan.members] == [0, 8, 2]


def conv_error_share(multiplier, rank: int) -> float:
    """The rank-`rank` surrogate's error on the logged conv as a share of the multiplier's own
    effect, both against the naive gather reference (independent of the LUT-sum kernel)."""
    x, weight = realistic_operands(multiplier.signed)
    x, weight = x[:1], weight[:16]  # a slice of the logged conv keeps the reference fast
    exact = gather_conv2d(x, weight, multiplier, padding=1).float()
    surrogate, exact_product = (approx_conv2d(x, weight, multiplier, padding=1, mode="lowrank",
                                              rank=r) for r in (rank, 0))
    return relative_error(surrogate, exact) / relative_error(exact_product, exact)


@pytest.mark.parametrize("name", ["mul8u_197B", "mul8u_0AB", "mul8u_17C8"])
def test_auto_rank_sees_the_real_circuit_within_a_tenth_of_its_effect(name, evoapprox_dir):
    multiplier = load_multiplier(name, lut_dir=evoapprox_dir / "luts")
    assert not is_exactly_low_rank(multiplier)
    rank = surrogate_rank(multiplier, AUTO_RANK)
    assert rank == fidelity_rank(multiplier) > surrogate_rank(multiplier, 2)
    row = surrogate_summary([multiplier], AUTO_RANK)[0]
    assert row["rank"] == rank and row["effect_share"] <= FIDELITY_SHARE
    # the smallest such rank, measured on the logged conv; and it holds on a slice of that conv
    # against the independent gather reference (a little slack: a slice, not the whole conv)
    below = surrogate_summary([multiplier], rank - 1)[0]
    assert below["effect_share"] > FIDELITY_SHARE
    assert conv_error_share(multiplier, rank) <= 1.5 * FIDELITY_SHARE
    assert conv_error_share(multiplier, 2) > 2 * FIDELITY_SHARE


def test_auto_rank_leaves_exact_and_exactly_low_rank_designs_alone(evoapprox_dir):
    for name in ("exact", "drum4", "bam4_4", "kulkarni", "trunc8"):
        multiplier = load_multiplier(name)
        assert surrogate_rank(multiplier, AUTO_RANK) == surrogate_rank(multiplier, None)
    near_exact = load_multiplier("mul8u_1JJQ", lut_dir=evoapprox_dir / "luts")
    assert surrogate_rank(near_exact, AUTO_RANK) == 0


def test_rank_policy_flag_values():
    assert rank_policy_arg("auto") == AUTO_RANK and rank_policy_arg(" AUTO ") == AUTO_RANK
    assert rank_policy_arg("3") == 3
    assert Emulation.for_search(None, "auto").rank_cap == AUTO_RANK
    assert Emulation.for_search(None, "-1").rank_cap is None
    assert Emulation.for_search(None, "2").rank_cap == 2
    with pytest.raises(ValueError, match="--approx_rank 'fast': give 'auto'"):
        Emulation.for_search(None, "fast")
    with pytest.raises(ValueError, match="rank cap 'fast'"):
        Emulation(rank_cap="fast")


def test_search_log_states_the_auto_ranks_and_their_cost(evoapprox_dir):
    from types import SimpleNamespace

    from reporting.search_report import log_surrogate

    lines = []
    run = SimpleNamespace(write=True, logger=SimpleNamespace(info=lines.append))
    emulation = Emulation.for_search(str(evoapprox_dir / "luts"), "auto")
    log_surrogate(run, ["exact", "mul8u_197B"], emulation)
    assert "mul8u_197B: rank 21 (auto" in lines[1] and "9.8% of it" in lines[1]
    assert lines[2] == ("search surrogate: 22 float convolutions per approximate conv emulate "
                        "this multiplier set within 10% of each one's effect; --approx_rank 2 "
                        "would run 3 (faster, coarser)")
    lines.clear()
    log_surrogate(run, ["exact", "drum4"], emulation)  # exactly low-rank: no cost line
    assert len(lines) == 2
