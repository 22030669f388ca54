"""Low-rank fidelity on realistic data: rank used and error of mode 'lowrank' against 'exact'."""

import torch

from approx.conv import approx_conv2d
from approx.lowrank import resolve_rank
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
    x, weight = realistic_operands(multiplier.signed)
    exact = approx_conv2d(x, weight, multiplier, padding=1, mode="exact")
    used = resolve_rank(multiplier, rank)
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
