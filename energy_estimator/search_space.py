"""The form of a supernet's cost tables and the expected energy of its alphas.

A `SupernetCosts` holds, for the normal and the reduction cell, a [num_edges, num_candidates]
table of each candidate op's energy per image on each edge (summed over the cells of that type,
whose alphas are shared), plus `fixed_uj`, the energy of everything but the edge ops (and,
for fixed-layer groups a search chooses multipliers for, each choice's difference). The
tables are priced by `search/cost_tables.py` from the cell topology and the op registry; this
module only says what they hold and how alphas read them.
`objective` chooses the energy a table holds: `total` (arithmetic + data movement),
`arithmetic` (what ApproxDARTS reports) or `multiplier` (the MACs' multiplications alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from energy_estimator.report import Report

ENERGY_OBJECTIVES = {"total": "energy_uj", "arithmetic": "arith_energy_uj",
                     "multiplier": "mult_energy_uj"}  # objective -> Report / OpCost field


@dataclass(frozen=True)
class OpCost:
    """Per-image cost of one candidate op at one position."""

    energy_uj: float
    arith_energy_uj: float
    memory_energy_uj: float
    mult_energy_uj: float
    macs: int
    params: int

    @classmethod
    def from_report(cls, report: Report) -> OpCost:
        return cls(report.energy_uj, report.arith_energy_uj, report.memory_energy_uj,
                   report.mult_energy_uj, report.macs, report.params)


@dataclass
class SupernetCosts:
    """`normal`/`reduce`: float64 [num_edges, num_candidates] energy (µJ) summed over cells.
    Fixed-layer groups the search chooses a multiplier for (`fixed_groups`) are priced in
    `fixed_uj` on their base multiplier; `fixed_deltas` [groups, len(fixed_multipliers)] is
    each choice's energy minus the base's."""

    fixed_uj: float
    normal: torch.Tensor
    reduce: torch.Tensor
    candidates: tuple[str, ...]
    steps: int
    objective: str = "total"
    fixed_groups: tuple[str, ...] = ()
    fixed_multipliers: tuple[str, ...] = ()
    fixed_deltas: torch.Tensor | None = None


def objective_field(objective: str) -> str:
    """The Report / OpCost field holding the energy of `objective`."""
    if objective not in ENERGY_OBJECTIVES:
        raise ValueError(f"energy objective '{objective}': choose one of "
                         f"{', '.join(ENERGY_OBJECTIVES)} (--energy_objective)")
    return ENERGY_OBJECTIVES[objective]


def expected_energy_uj(costs: SupernetCosts, alphas_normal: torch.Tensor,
                       alphas_reduce: torch.Tensor) -> torch.Tensor:
    """fixed + sum(softmax(alphas) * per-edge costs) over both cell types; differentiable."""
    normal = costs.normal.to(device=alphas_normal.device, dtype=alphas_normal.dtype)
    reduce = costs.reduce.to(device=alphas_reduce.device, dtype=alphas_reduce.dtype)
    return (costs.fixed_uj + (torch.softmax(alphas_normal, dim=-1) * normal).sum()
            + (torch.softmax(alphas_reduce, dim=-1) * reduce).sum())
