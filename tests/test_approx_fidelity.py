"""The search-time rank cap spares exactly low-rank multipliers, and the search can state, per
multiplier, the rank it uses and the surrogate's error against the exact table."""

from approx import MultiplierMixture
from approx.fidelity import surrogate_lines, surrogate_summary
from approx.lowrank import MAX_RANK, is_exactly_low_rank, surrogate_rank
from approx.registry import load_multiplier


def test_cap_truncates_only_multipliers_that_are_not_exactly_low_rank():
    for name in ("trunc6", "trunc8", "bam2_4", "bam4_8", "drum4", "kulkarni"):
        multiplier = load_multiplier(name)
        assert is_exactly_low_rank(multiplier)
        assert surrogate_rank(multiplier, 2) == surrogate_rank(multiplier, None) <= MAX_RANK
    mitchell = load_multiplier("mitchell")
    assert not is_exactly_low_rank(mitchell) and surrogate_rank(mitchell, 2) == 2
    assert surrogate_rank(load_multiplier("trunc8"), 2, truncate_low_rank=True) == 2


def test_summary_states_rank_and_surrogate_error():
    rows = surrogate_summary(["trunc8", "mitchell", "float"], cap=2)
    by_name = {row["name"]: row for row in rows}
    assert set(by_name) == {"trunc8", "mitchell"}
    assert by_name["trunc8"]["rank"] == 8 and not by_name["trunc8"]["truncated"]
    assert by_name["trunc8"]["lowrank_rel_err_pct"] < 1e-3
    assert by_name["mitchell"]["rank"] == 2 and by_name["mitchell"]["truncated"]
    assert 0 < by_name["mitchell"]["lowrank_rel_err_pct"] < by_name["mitchell"][
        "multiplier_effect_pct"]
    lines = surrogate_lines(rows)
    assert lines[0].startswith("trunc8: rank 8 of 8 (uncapped") and "capped" in lines[1]
    forced = surrogate_summary(["trunc8"], cap=2, truncate_low_rank=True)[0]
    assert forced["rank"] == 2 and forced["truncated"] and forced["lowrank_rel_err_pct"] > 1


def test_mixture_members_follow_the_same_cap():
    plan = MultiplierMixture(["exact", "trunc8", "mitchell"]).plan(2)
    assert [rank for _, _, rank in plan.members] == [0, 8, 2]
