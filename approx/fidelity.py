"""Low-rank fidelity on realistic data: rank used and error of mode 'lowrank' against 'exact'.

`surrogate_summary` states, per multiplier, what a search-time rank cap leaves of it (the rank
used, whether the cap truncated it) and the surrogate's error against the exact table, for the
search log.
"""

from functools import cache

import torch

from approx.conv import approx_conv2d
from approx.lowrank import default_rank, is_exactly_low_rank, resolve_rank, surrogate_rank
from approx.multiplier import Multiplier
from approx.registry import load_multiplier

CHANNELS, SIZE, BATCH = 64, 16, 4


def realistic_operands(signed: bool, seed: int = 0):
    """Post-ReLU activations (signed tables: Gaussian), Gaussian 3x3 weights, 64 channels."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, CHANNELS, SIZE, SIZE, generator=generator)
    weight = torch.randn(CHANNELS, CHANNELS, 3, 3, generator=generator) * 0.05
    return (x if signed else torch.relu(x)), weight


def relative_error(approximation: torch.Tensor, target: torch.Tensor) -> float:
    return float((approximation - target).norm() / target.norm())


def lowrank_fidelity(spec, lut_dir=None, rank=None) -> dict:
    """rank, lowrank error vs exact, and the multiplier's own effect (rank-0 error vs exact)."""
    multiplier = load_multiplier(spec, lut_dir=lut_dir)
    return dict(multiplier_fidelity(multiplier, resolve_rank(multiplier, rank)))


@cache
def multiplier_fidelity(multiplier: Multiplier, used: int) -> dict:
    x, weight = realistic_operands(multiplier.signed)
    exact = approx_conv2d(x, weight, multiplier, padding=1, mode="exact")
    lowrank, exact_product = (
        approx_conv2d(x, weight, multiplier, padding=1, mode="lowrank", rank=r) for r in (used, 0)
    )
    return {
        "name": multiplier.name,
        "rank": used,
        "lowrank_rel_err_pct": 100 * relative_error(lowrank, exact),
        "multiplier_effect_pct": 100 * relative_error(exact_product, exact),
    }


def fidelity_table(specs, lut_dir=None) -> str:
    """Markdown table of lowrank_fidelity for each spec."""
    lines = [
        "| multiplier | rank | lowrank vs exact, rel. error % | exact-product vs exact, % |",
        "| --- | ---: | ---: | ---: |",
    ]
    for spec in specs:
        row = lowrank_fidelity(spec, lut_dir)
        lines.append(
            f"| {row['name']} | {row['rank']} | {row['lowrank_rel_err_pct']:.3f} "
            f"| {row['multiplier_effect_pct']:.3f} |"
        )
    return "\n".join(lines)


def surrogate_summary(multipliers, cap: int | None, lut_dir=None,
                      truncate_low_rank: bool = False) -> list[dict]:
    """Per multiplier (specs or Multipliers; "float" is skipped) under the search's rank cap
    (None: no cap): its default and used rank, whether its error is exactly low-rank and
    whether the cap truncated it, and the surrogate's error against the exact table on the
    realistic conv (`lowrank_rel_err_pct`), beside the multiplier's own effect."""
    rows = []
    for spec in multipliers:
        if spec == "float":
            continue
        multiplier = load_multiplier(spec, lut_dir=lut_dir)
        used = surrogate_rank(multiplier, cap, truncate_low_rank)
        row = dict(multiplier_fidelity(multiplier, used))
        row.update(default_rank=default_rank(multiplier),
                   exactly_low_rank=is_exactly_low_rank(multiplier),
                   truncated=used < default_rank(multiplier))
        rows.append(row)
    return rows


def surrogate_lines(rows: list[dict]) -> list[str]:
    """One log line per surrogate_summary row."""
    lines = []
    for row in rows:
        kind = "exactly low-rank" if row["exactly_low_rank"] else "not exactly low-rank"
        capped = "capped" if row["truncated"] else "uncapped"
        lines.append(
            f"{row['name']}: rank {row['rank']} of {row['default_rank']} ({capped}; {kind}); "
            f"surrogate error {row['lowrank_rel_err_pct']:.3f} % vs the exact table "
            f"(the multiplier's own effect {row['multiplier_effect_pct']:.3f} %)")
    return lines
