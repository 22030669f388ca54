"""The energy model of a DARTS cell search: cost tables over a candidate space.

`SupernetEnergy(costs, space)` reads, from the per-edge, per-column tables of
`search.cost_tables.supernet_costs` (priced on the network `train.py` will build), the
expected energy per image of architecture weights (`expected_uj`), its value at uniform
weights (`uniform_uj`, the energy loss's normaliser E_ref) and a genotype's energy
(`genotype_uj`: the costs of the (op, edge) pairs it keeps). `priced` is the one way tables
are made for a space.

The expected energy prices what the derivation keeps (docs/reference/multiplier_choice.md):
fixed part plus, per cell type, over the edges the derivation would keep now (per node the
two whose strongest non-`none` op weighs most, times the PC-DARTS edge weight), the mean
cost of the edge's ops other than `none` under their renormalised weights, a conv op's cost
being the mean over its multipliers under the multiplier weights. The edge selection is
straight-through: the forward keeps exactly the derivation's edges, the backward reads the
soft share 2 s_e / sum_node s of each edge's strength s_e, so an expensive edge is pushed
out of the top two. At a genotype's one-hot weights this equals the genotype's energy.
"""

from __future__ import annotations

import torch

import topology
from approx.settings import DEFAULT_EMULATION, Emulation
from energy_estimator.search_space import SupernetCosts
from search import cost_tables
from search.architecture import CELLS, FIXED_KEY, CellWeights
from search.space import SearchSpace


class SupernetEnergy:
    """Expected and genotype energy (µJ per image) of a cell search over `space`."""

    def __init__(self, costs: SupernetCosts, space: SearchSpace):
        self.costs = cost_tables.checked(costs, space.columns, costs.steps)
        self.space = space

    @classmethod
    def priced(cls, space: SearchSpace, shape: topology.NetworkShape, energy_table=None,
               objective: str = "total", emulation: Emulation = DEFAULT_EMULATION):
        """The tables of `space` priced on the network of `shape` (`objective`: total,
        arith or mult energy; `energy_table`: the constants, default the built-in)."""
        return cls(cost_tables.supernet_costs(
            space.columns, shape, energy_table, objective, emulation=emulation,
            fixed=space.fixed_base, searched_fixed=space.searched_fixed,
            fixed_multipliers=space.multipliers), space)

    @property
    def steps(self) -> int:
        return self.costs.steps

    def expected_uj(self, weights: dict[bool, CellWeights], hard_edges: bool = True
                    ) -> torch.Tensor:
        """E per image of `weights` ({reduction: CellWeights}) over the edges the derivation
        keeps, differentiable (`hard_edges` False: every edge counted at its soft share)."""
        total = self.costs.fixed_uj
        if self.costs.fixed_groups:  # searched fixed groups: their expected difference
            fixed = weights[FIXED_KEY]
            total = total + (fixed * self.costs.fixed_deltas.to(fixed.device, fixed.dtype)).sum()
        for cell in CELLS:
            ops, edges, multipliers = weights[cell == "reduce"]
            table = getattr(self.costs, cell).to(device=ops.device, dtype=ops.dtype)
            kept_ops = self.space.without_none(ops)
            per_edge = (kept_ops * self.space.effective_costs(table, multipliers)).sum(-1)
            share = kept_edges(self.space.edge_strength(ops, edges), self.steps, hard_edges)
            total = total + (share * per_edge).sum()
        return total

    def uniform_weights(self, like: torch.Tensor) -> dict[bool, CellWeights]:
        """Uniform op and multiplier weights in `like`'s dtype and device."""
        edges, options = topology.num_edges(self.steps), dict(dtype=like.dtype, device=like.device)
        ops = torch.full((edges, len(self.space.ops)), 1.0 / len(self.space.ops), **options)
        multipliers = None
        if self.space.conv_ops:
            shape = (edges, len(self.space.conv_ops), len(self.space.multipliers))
            multipliers = torch.full(shape, 1.0 / len(self.space.multipliers), **options)
        weights = {reduction: CellWeights(ops, None, multipliers) for reduction in (False, True)}
        if self.costs.fixed_groups:
            weights[FIXED_KEY] = torch.full(tuple(self.costs.fixed_deltas.shape),
                                            1.0 / len(self.costs.fixed_multipliers), **options)
        return weights

    def uniform_uj(self, like: torch.Tensor | None = None) -> float:
        """E_ref: the expected energy at uniform weights (float32 unless `like` says)."""
        like = torch.zeros(()) if like is None else like
        with torch.no_grad():  # all edges tie: each counts at its share 2 / inputs
            return float(self.expected_uj(self.uniform_weights(like), hard_edges=False))

    def fixed_floor_uj(self) -> float:
        """The fixed part's energy that no alpha controls: `fixed_uj`, each searched group on
        its cheapest multiplier."""
        if not self.costs.fixed_groups:
            return self.costs.fixed_uj
        return self.costs.fixed_uj + float(self.costs.fixed_deltas.min(dim=1).values.sum())

    def genotype_uj(self, genotype) -> float:
        """The energy per image of a genotype of this space (its ops priced per edge)."""
        return cost_tables.genotype_energy_uj(self.costs, genotype, self.space.columns)


def kept_edges(strength: torch.Tensor, steps: int, hard: bool = True) -> torch.Tensor:
    """[edges] share of each edge in its node's kept inputs: the soft share
    k s_e / sum_node s (k inputs kept per node, capped at 1), and with `hard` the derivation's
    top-k mask in the forward with the soft share's gradient (straight-through)."""
    shares = []
    keep = topology.GENOTYPE_INPUTS_PER_NODE
    for node, start in enumerate(topology.edge_offsets(steps)):
        s = strength[start:start + topology.num_inputs(node)]
        soft = (keep * s / s.sum().clamp_min(1e-12)).clamp(max=1.0)
        if hard:
            order = s.detach().sort(descending=True, stable=True).indices  # ties: as derived
            mask = torch.zeros_like(s).index_fill_(0, order[:keep], 1.0)
            soft = mask - soft.detach() + soft
        shares.append(soft)
    return torch.cat(shares)
