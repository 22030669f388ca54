"""The search-time surrogate: the rank at which a search emulates each multiplier, and what it
leaves out.

A search emulates a multiplier's error E = LUT - a*b by its leading low-rank factors
(approx.lowrank); each term costs one float convolution per conv, so the rank is the search's
trade between speed and fidelity. Exactly low-rank designs (truncation, BAM, DRUM, Kulkarni)
always run at their true rank, i.e. exactly. For the others (EvoApproxLib tables, Mitchell) the
rank policy `--approx_rank` is one of
- `auto` (the search's default): the smallest rank whose error on the reference conv
  (approx.fidelity) is at most FIDELITY_SHARE of the multiplier's own effect there (or below
  FIDELITY_FLOOR of the output, for near-exact circuits), so that the search ranks the circuits
  rather than a blur of them (EvoApproxLib mul8u_197B: rank 21, mul8u_0AB: 43, mul8u_17C8: 7,
  mul8u_1JJQ: 0; docs/multiplier_choice.md);
- an integer R: at most R terms (a faster, coarser surrogate; the log states its error);
- None (`-1` on the command line): each multiplier's default rank (approx.lowrank.default_rank,
  as the retrain emulates it).
"""

from __future__ import annotations

from functools import cache

from approx.fidelity import lowrank_output, multiplier_fidelity, reference_outputs, relative_error
from approx.lowrank import default_rank, is_exactly_low_rank
from approx.multiplier import Multiplier
from approx.registry import load_multiplier

AUTO_RANK = "auto"
FIDELITY_SHARE = 0.1  # surrogate error on the reference conv / the multiplier's own effect
# an error below this share of the reference conv's output counts as faithful whatever the
# effect: 10-100x below the 8-bit quantisation's own error there. A circuit exact on every
# reachable code (mul8u_1JJQ) has an "effect" of float rounding, ~1e-9: without the floor the
# bisection would chase it to all 256 terms
FIDELITY_FLOOR = 1e-4
FULL_RANK = 256  # every factor of a 256 x 256 table: the emulation is the table itself
SEARCH_RANK_POLICY = AUTO_RANK  # train_search.py --approx_rank's default
COARSE_RANK_CAP = 2  # the fast, coarse surrogate (the search's default before AUTO_RANK)


def check_rank_policy(policy) -> None:
    """Raise ValueError unless `policy` is None, AUTO_RANK or a rank >= 0."""
    if policy is None or policy == AUTO_RANK:
        return
    if isinstance(policy, bool) or not isinstance(policy, int) or policy < 0:
        raise ValueError(f"approximate-conv rank cap {policy!r} must be a rank >= 0 or "
                         f"{AUTO_RANK!r} (-1 on the command line: each multiplier's default "
                         f"rank)")


@cache
def fidelity_rank(multiplier: Multiplier, share: float = FIDELITY_SHARE) -> int:
    """The smallest rank (bisection over 0..FULL_RANK; the error falls with the rank) whose
    error on the reference conv is at most `share` of the multiplier's own effect there, or
    at most FIDELITY_FLOOR of the output."""
    exact, effect = reference_outputs(multiplier)
    tolerance = max(share * effect, FIDELITY_FLOOR)
    if effect <= tolerance:
        return 0

    def faithful(rank: int) -> bool:
        return relative_error(lowrank_output(multiplier, rank), exact) <= tolerance

    failing, meeting = 0, FULL_RANK
    while meeting - failing > 1:
        middle = (failing + meeting) // 2
        if faithful(middle):
            meeting = middle
        else:
            failing = middle
    return meeting


def surrogate_rank(multiplier: Multiplier, policy, truncate_low_rank: bool = False) -> int:
    """The rank the search emulates `multiplier` at under a rank policy (module docstring):
    exactly low-rank designs keep their true rank unless `truncate_low_rank`."""
    rank = default_rank(multiplier)
    if policy is None or (is_exactly_low_rank(multiplier) and not truncate_low_rank):
        return rank
    if policy == AUTO_RANK:
        return fidelity_rank(multiplier)
    return min(rank, policy)


def policy_text(policy, row: dict) -> str:
    if row["exactly_low_rank"] and row["rank"] == row["default_rank"]:
        return "its true rank: exact"
    if policy == AUTO_RANK:
        return f"auto: the smallest within {FIDELITY_SHARE:.0%} of its effect"
    if policy is None:
        return "its default rank"
    return f"capped at {policy}" if row["truncated"] else f"cap {policy} not reached"


def surrogate_summary(multipliers, policy, lut_dir=None,
                      truncate_low_rank: bool = False) -> list[dict]:
    """Per multiplier (specs or Multipliers; "float" is skipped) under the search's rank policy:
    its used and default rank, whether its error is exactly low-rank, whether an integer cap
    truncated it, and the surrogate's error against the exact table on the reference conv
    (`lowrank_rel_err_pct`) beside the multiplier's own effect, with their ratio
    (`effect_share`; None for an effect below FIDELITY_FLOOR: exact or near-exact) and the
    policy in words (`policy`)."""
    rows = []
    for spec in multipliers:
        if spec == "float":
            continue
        multiplier = load_multiplier(spec, lut_dir=lut_dir)
        used = surrogate_rank(multiplier, policy, truncate_low_rank)
        row = dict(multiplier_fidelity(multiplier, used))
        effect, default = row["multiplier_effect_pct"], default_rank(multiplier)
        row.update(default_rank=default, exactly_low_rank=is_exactly_low_rank(multiplier),
                   truncated=isinstance(policy, int) and used < default,
                   effect_share=(row["lowrank_rel_err_pct"] / effect
                                 if effect > 100 * FIDELITY_FLOOR else None))
        row["policy"] = policy_text(policy, row)
        rows.append(row)
    return rows


def surrogate_lines(rows: list[dict]) -> list[str]:
    """One log line per surrogate_summary row."""
    lines = []
    for row in rows:
        kind = "exactly low-rank" if row["exactly_low_rank"] else "not exactly low-rank"
        share = ("" if row["effect_share"] is None
                 else f", {row['effect_share']:.1%} of it")
        lines.append(
            f"{row['name']}: rank {row['rank']} ({row['policy']}; default rank "
            f"{row['default_rank']}; {kind}); surrogate error {row['lowrank_rel_err_pct']:.3f} % "
            f"vs the exact table (the multiplier's own effect "
            f"{row['multiplier_effect_pct']:.3f} %{share})")
    return lines
