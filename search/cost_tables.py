"""The cost tables of the DARTS search space, priced from the cell topology and the op registry.

`supernet_costs` fills a `SupernetCosts` (energy_estimator.search_space): for every edge of the
normal and the reduction cell and every candidate op (a column of `SearchSpace.columns`), the
op's energy per image summed over the cells of that type, plus `fixed_uj`: the stem, every
cell's preprocessing, the global pooling and the classifier. Channels and resolutions come from
`topology.cell_layouts`; an edge leaving a cell input reads the cell's input resolution (stride
2 in a reduction cell), the others the nodes' resolution. Everything is priced as the discrete
network (`model.NetworkCIFAR`) runs it, one block at a time with `energy_estimator.profile`
(affine BatchNorms in the fixed part, no search-time BatchNorm after pooling); no network is
built. A block's cost depends only on its shape and multiplier, so each is profiled once.

`search.energy_model.SupernetEnergy` holds these tables with the space and reads the expected
energy of the architecture weights and a derived genotype's energy from them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn as nn

import topology
from approx.settings import DEFAULT_EMULATION, Emulation
from energy_estimator.report import profile
from energy_estimator.search_space import OpCost, SupernetCosts, objective_field
from energy_estimator.table import EnergyTable, resolve_energy_table
from genotypes import (
    CLASSIFIER,
    FLOAT_FIXED,
    PREPROCESS,
    REDUCE_SKIP,
    STEM,
    fixed_assignment,
    fixed_spec,
)
from operations import build_op, cifar_stem, classifier, fixed_conv_factory, preprocess_ops


def supernet_costs(candidates: Sequence[str], shape: topology.NetworkShape,
                   energy_table: EnergyTable | str | None = None, objective: str = "total", *,
                   emulation: Emulation = DEFAULT_EMULATION, fixed: str = FLOAT_FIXED,
                   searched_fixed: Sequence[str] = (),
                   fixed_multipliers: Sequence[str] = ()) -> SupernetCosts:
    """Per-edge, per-candidate energy tables and the fixed energy of the CIFAR network of
    `shape` (the size the energy is meant for); multipliers are resolved in `emulation`'s
    library; `fixed`: the multiplier of the convs outside the cells' ops and of a reducing
    skip_connect (`Genotype.fixed`; unless float32, the network is priced as an int8 network).
    Each group of `searched_fixed` is also priced on each of `fixed_multipliers`, as its
    difference from `fixed` (`fixed_deltas`).
    The RNG is forked: pricing builds (randomly initialised) blocks, and whether a block is
    built depends on the cache, which must not change what a seed gives."""
    field = objective_field(objective)
    table = resolve_energy_table(energy_table)
    candidates = tuple(candidates)
    costing = emulation.for_costing()
    steps, layouts = shape.steps, shape.layouts()
    size = (topology.num_edges(steps), len(candidates))
    costs = {False: torch.zeros(size, dtype=torch.float64),
             True: torch.zeros(size, dtype=torch.float64)}
    with torch.random.fork_rng(devices=[]):
        for cell in layouts:
            for edge, (_, source) in enumerate(topology.edges(steps)):
                stride = topology.edge_stride(cell.reduction, source)
                side = cell.edge_input_size(source)
                for k, op_name in enumerate(candidates):
                    cost = _op_cost(op_name, cell.C, stride, side, side, costing, table, fixed)
                    costs[cell.reduction][edge, k] += getattr(cost, field)

        def fixed_part(assignment: str) -> float:
            return sum(getattr(_block_cost(*block, table, costing, assignment), field)
                       for block in _fixed_blocks(shape.stem_multiplier * shape.C, layouts,
                                                  shape.num_classes, shape.input_size))

        fixed_uj = fixed_part(fixed)
        deltas = None
        if searched_fixed:
            base = fixed_assignment(fixed)
            deltas = torch.tensor([[fixed_part(fixed_spec({**base, group: m})) - fixed_uj
                                    for m in fixed_multipliers] for group in searched_fixed],
                                  dtype=torch.float64)
    return SupernetCosts(fixed_uj, costs[False], costs[True], candidates, steps, objective,
                         tuple(searched_fixed), tuple(fixed_multipliers), deltas)


def fixed_choice_uj(costs: SupernetCosts, fixed: str) -> float:
    """The energy a genotype's `fixed` adds to `costs.fixed_uj` by its searched groups'
    multipliers (0 when the tables price no searched group)."""
    if not costs.fixed_groups:
        return 0.0
    chosen = fixed_assignment(fixed)
    return sum(float(costs.fixed_deltas[row, costs.fixed_multipliers.index(chosen[group])])
               for row, group in enumerate(costs.fixed_groups))


def op_cost(op_name: str, C: int, stride: int, H: int, W: int,
            emulation: Emulation = DEFAULT_EMULATION,
            energy_table: EnergyTable | str | None = None, fixed: str = FLOAT_FIXED) -> OpCost:
    """Cost of `operations.build_op(op_name, C, stride, affine=False, fixed=fixed)` on a
    (1, C, H, W) input (its multipliers resolved in `emulation`'s library)."""
    table = resolve_energy_table(energy_table)
    return _op_cost(op_name, C, stride, H, W, emulation.for_costing(), table, fixed)


@functools.lru_cache(maxsize=4096)
def _op_cost(op_name, C, stride, H, W, costing: Emulation, table: EnergyTable,
             fixed: str) -> OpCost:
    """Costs depend on shapes and the multiplier's figures only, so approximate convolutions
    are built in float mode (`Emulation.for_costing`) and profiled without their emulation."""
    op = build_op(op_name, C, stride, affine=False, emulation=costing, fixed=fixed)
    report = profile(op, (C, H, W), energy_table=table, int8_network=fixed != FLOAT_FIXED)
    return OpCost.from_report(report)


# --- the fixed part: everything but the edge ops ------------------------------------------
# each builder gets `convs`: fixed-layer group -> its conv factory
def _stem(C_stem: int, convs) -> nn.Module:
    return cifar_stem(C_stem, convs(STEM))


def _preprocess(C_prev_prev: int, C_prev: int, C: int, reduction_prev: bool,
                which: int, convs) -> nn.Module:
    return preprocess_ops(C_prev_prev, C_prev, C, reduction_prev, conv=convs(PREPROCESS),
                          reduce_conv=convs(REDUCE_SKIP))[which]


def _classifier(C_out: int, num_classes: int, convs) -> nn.Module:
    """Global pooling and the classifier, as the networks apply them to the last cell."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         classifier(C_out, num_classes, convs(CLASSIFIER)))


def _fixed_blocks(C_stem: int, layouts: list[topology.CellLayout], num_classes: int,
                  input_size: int):
    """(builder, its arguments, input (C, H, W)) of every block outside the edges."""
    yield _stem, (C_stem,), (3, input_size, input_size)
    for cell in layouts:
        wiring = (cell.C_prev_prev, cell.C_prev, cell.C, cell.reduction_prev)
        yield _preprocess, (*wiring, 0), (cell.C_prev_prev, cell.size_prev_prev,
                                          cell.size_prev_prev)
        yield _preprocess, (*wiring, 1), (cell.C_prev, cell.size_prev, cell.size_prev)
    last = layouts[-1]
    yield _classifier, (last.C_out, num_classes), (last.C_out, last.size, last.size)


@functools.lru_cache(maxsize=1024)
def _block_cost(builder, args: tuple, input_size: tuple, table: EnergyTable,
                costing: Emulation, fixed: str) -> OpCost:
    """The cost of a fixed block, its convs on `fixed` (built in float mode)."""
    block = builder(*args, functools.partial(fixed_conv_factory, fixed, emulation=costing))
    return OpCost.from_report(profile(block, input_size, energy_table=table,
                                      int8_network=fixed != FLOAT_FIXED))


# --- reading the tables -------------------------------------------------------------------
def checked(costs: SupernetCosts, columns: Sequence[str], steps: int) -> SupernetCosts:
    """`costs`, if its tables price `columns` on cells of `steps` nodes (else ValueError)."""
    if tuple(costs.candidates) != tuple(columns) or costs.steps != steps:
        raise ValueError(f"cost tables for {costs.steps}-node cells over "
                         f"{list(costs.candidates)} do not fit a supernet of {steps}-node cells "
                         f"over {list(columns)}")
    return costs


def genotype_energy_uj(costs: SupernetCosts, genotype, candidates: Sequence[str]) -> float:
    """fixed (with the genotype's searched fixed groups' choices) + the costs of the (op,
    edge) pairs a genotype keeps."""
    candidates = list(candidates)
    total = costs.fixed_uj + fixed_choice_uj(costs, genotype.fixed)
    for cell_edges, table in ((genotype.normal, costs.normal), (genotype.reduce, costs.reduce)):
        for (op_name, _), edge in zip(cell_edges, topology.genotype_edge_indices(cell_edges),
                                      strict=True):
            if op_name not in candidates:
                raise ValueError(f"genotype op '{op_name}' is not a candidate of the cost "
                                 f"table ({', '.join(candidates)})")
            total += float(table[edge, candidates.index(op_name)])
    return total
