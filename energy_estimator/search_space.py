"""Per-op energy table of the DARTS search space, for the energy term of the search.

`supernet_costs` tabulates, for every edge of the normal and the reduction cell and every
candidate op, the op's energy per image summed over all cells of that type (alphas are shared
across cells of a type), plus `fixed_uj` (stem, cell preprocessing, pooling, classifier).
Edge index of node i's input j: sum_{k<i}(2 + k) + j, as in DARTS. Channels and resolution
follow DARTS model_search.Network; an edge reads its cell's input resolution when j < 2 (stride
2 in reduction cells) and the cell's output resolution when j >= 2 (intermediate nodes).
Ops are costed as the discrete network runs them: no search-time BatchNorm after pooling.
`objective` chooses the energy a table holds: `total` (arithmetic + data movement),
`arithmetic` (what ApproxDARTS reports) or `multiplier` (the MACs' multiplications alone).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from energy_estimator.report import profile
from energy_estimator.table import EnergyTable, resolve_energy_table

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


@dataclass
class SupernetCosts:
    """`normal`/`reduce`: float64 [num_edges, num_candidates] energy (µJ) summed over cells."""

    fixed_uj: float
    normal: torch.Tensor
    reduce: torch.Tensor
    candidates: tuple[str, ...]
    steps: int
    objective: str = "total"


def op_cost(op_name: str, C: int, stride: int, H: int, W: int, lut_dir=None,
            energy_table: EnergyTable | str | None = None) -> OpCost:
    """Cost of `operations.build_op(op_name, C, stride, affine=False)` on a (1, C, H, W) input."""
    table = resolve_energy_table(energy_table)
    lut_dir = None if lut_dir is None else str(lut_dir)
    return _cached_op_cost(op_name, C, stride, H, W, lut_dir, table)


@functools.lru_cache(maxsize=4096)
def _cached_op_cost(op_name, C, stride, H, W, lut_dir, table: EnergyTable) -> OpCost:
    """Costs depend on shapes and the multiplier's figures only, so approximate convolutions
    profile through a float forward (`approx.module.float_forward`), not their emulation."""
    from approx.module import float_forward
    from operations import build_op

    with float_forward():
        report = profile(build_op(op_name, C, stride, affine=False, lut_dir=lut_dir),
                         (C, H, W), energy_table=table)
    return OpCost(report.energy_uj, report.arith_energy_uj, report.memory_energy_uj,
                  report.mult_energy_uj, report.macs, report.params)


def edge_offsets(steps: int) -> list[int]:
    """Index of node i's first input edge: sum_{k<i}(2 + k)."""
    return [sum(2 + k for k in range(i)) for i in range(steps)]


def cell_plan(C: int, layers: int, input_size: int = 32):
    """(reduction, C_curr, input resolution) of each cell, as in DARTS model_search.Network."""
    plan, C_curr, size = [], C, input_size
    for index in range(layers):
        reduction = index in (layers // 3, 2 * layers // 3)
        if reduction:
            C_curr *= 2
        plan.append((reduction, C_curr, size))
        size = (size + 1) // 2 if reduction else size
    return plan


def supernet_costs(candidates: Sequence[str], C: int, num_classes: int, layers: int,
                   steps: int = 4, multiplier: int = 4, stem_multiplier: int = 3,
                   input_size: int = 32, lut_dir=None,
                   energy_table: EnergyTable | str | None = None,
                   objective: str = "total") -> SupernetCosts:
    """Per-edge, per-candidate energy tables and the fixed energy of the supernet."""
    field = objective_field(objective)
    table = resolve_energy_table(energy_table)
    candidates = tuple(candidates)
    num_edges = edge_offsets(steps + 1)[-1]
    costs = {False: torch.zeros(num_edges, len(candidates), dtype=torch.float64),
             True: torch.zeros(num_edges, len(candidates), dtype=torch.float64)}
    for reduction, C_curr, size in cell_plan(C, layers, input_size):
        for edge, stride, edge_size in _cell_edges(steps, reduction, size):
            for k, op_name in enumerate(candidates):
                cost = op_cost(op_name, C_curr, stride, edge_size, edge_size, lut_dir, table)
                costs[reduction][edge, k] += getattr(cost, field)
    fixed_uj = fixed_energy_uj(C, num_classes, layers, steps, multiplier, stem_multiplier,
                               input_size, table, objective)
    return SupernetCosts(fixed_uj, costs[False], costs[True], candidates, steps, objective)


def objective_field(objective: str) -> str:
    if objective not in ENERGY_OBJECTIVES:
        raise ValueError(f"energy objective '{objective}': choose one of "
                         f"{', '.join(ENERGY_OBJECTIVES)} (--energy_objective)")
    return ENERGY_OBJECTIVES[objective]


def _cell_edges(steps: int, reduction: bool, size: int):
    """(edge index, stride, input resolution) of every edge of one cell."""
    reduced_size = (size + 1) // 2 if reduction else size
    for i, offset in enumerate(edge_offsets(steps)):
        for j in range(2 + i):
            from_cell_input = j < 2
            stride = 2 if reduction and from_cell_input else 1
            yield offset + j, stride, size if from_cell_input else reduced_size


def fixed_energy_uj(C: int, num_classes: int, layers: int, steps: int, multiplier: int,
                    stem_multiplier: int, input_size: int, table: EnergyTable,
                    objective: str = "total") -> float:
    """Energy of everything but the edge ops: a NetworkCIFAR whose edges are all `none`."""
    from model import NetworkCIFAR

    genotype = none_genotype(steps, multiplier)
    network = NetworkCIFAR(C, num_classes, layers, False, genotype,
                           stem_multiplier=stem_multiplier)
    report = profile(network, (3, input_size, input_size), energy_table=table)
    return getattr(report, objective_field(objective))


def none_genotype(steps: int = 4, multiplier: int = 4):
    from genotypes import Genotype

    edges = [("none", j) for _ in range(steps) for j in (0, 1)]
    concat = list(range(2 + steps - multiplier, 2 + steps))
    return Genotype(normal=edges, normal_concat=concat, reduce=edges, reduce_concat=concat)


def expected_energy_uj(costs: SupernetCosts, alphas_normal: torch.Tensor,
                       alphas_reduce: torch.Tensor) -> torch.Tensor:
    """fixed + sum(softmax(alphas) * per-edge costs) over both cell types; differentiable."""
    normal = costs.normal.to(device=alphas_normal.device, dtype=alphas_normal.dtype)
    reduce = costs.reduce.to(device=alphas_reduce.device, dtype=alphas_reduce.dtype)
    return (costs.fixed_uj + (torch.softmax(alphas_normal, dim=-1) * normal).sum()
            + (torch.softmax(alphas_reduce, dim=-1) * reduce).sum())


def genotype_energy_uj(costs: SupernetCosts, genotype, candidates: Sequence[str]) -> float:
    """fixed + the costs of the (op, edge) pairs a genotype keeps."""
    candidates = list(candidates)
    total = costs.fixed_uj
    for cell_edges, table in ((genotype.normal, costs.normal), (genotype.reduce, costs.reduce)):
        offsets = edge_offsets(len(cell_edges) // 2)
        for position, (op_name, j) in enumerate(cell_edges):
            if op_name not in candidates:
                raise ValueError(f"genotype op '{op_name}' is not a candidate of the cost "
                                 f"table ({', '.join(candidates)})")
            total += float(table[offsets[position // 2] + j, candidates.index(op_name)])
    return total
