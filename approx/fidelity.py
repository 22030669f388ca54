"""Low-rank fidelity on realistic data: the error of mode 'lowrank' against 'exact' at a rank.

The reference conv (`realistic_operands`: 64 channels of post-ReLU activations, Gaussian 3x3
weights) is the one the search log reports every multiplier's surrogate on
(approx.surrogate); its exact-table output is computed once per multiplier.
"""

from functools import cache

import torch

from approx.conv import approx_conv2d
from approx.lowrank import resolve_rank
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
def reference_outputs(multiplier: Multiplier) -> tuple[torch.Tensor, float]:
    """(the reference conv on the exact table, the multiplier's own effect: the exact
    product's relative error against it)."""
    x, weight = realistic_operands(multiplier.signed)
    exact = approx_conv2d(x, weight, multiplier, padding=1, mode="exact")
    return exact, relative_error(lowrank_output(multiplier, 0), exact)


def lowrank_output(multiplier: Multiplier, rank: int) -> torch.Tensor:
    x, weight = realistic_operands(multiplier.signed)
    return approx_conv2d(x, weight, multiplier, padding=1, mode="lowrank", rank=rank)


@cache
def multiplier_fidelity(multiplier: Multiplier, used: int) -> dict:
    exact, effect = reference_outputs(multiplier)
    return {
        "name": multiplier.name,
        "rank": used,
        "lowrank_rel_err_pct": 100 * relative_error(lowrank_output(multiplier, used), exact),
        "multiplier_effect_pct": 100 * effect,
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
