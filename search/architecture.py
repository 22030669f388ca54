"""The architecture of a DARTS cell search, apart from the supernet that computes with it.

`Architecture` holds the alpha tables: per cell type (normal, reduce) the op alphas
[edges, ops], in the factorised space the multiplier alphas (shaped by the granularity; at
`network` one table serves both cell types) and, with PC-DARTS, the edge betas [edges]. It
gives the weights the supernet's `forward(x, weights)` reads (`mixture_weights`: their
softmax, as pt.darts's controller passes them; `one_hot_weights`: a genotype's discrete
choice), and derives the genotype (DARTS: per node the two strongest edges, each with its
strongest op other than `none`). `forward_weights` is what a search forward computes with:
the mixture, or with `multiplier_sampling='gumbel'` the op softmax and one sampled multiplier
per conv op (search/sampling.py), `CellWeights` of the same shapes. When the space leaves
fixed-layer groups to the search, `multiplier_alphas_fixed` [searched groups, multipliers]
holds their logits; the weight dicts then carry their weights under FIXED_KEY.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

import topology
from genotypes import Genotype
from search import sampling
from search.space import SearchSpace

CELLS = ("normal", "reduce")
FIXED_KEY = "fixed"  # the searched fixed-layer groups' weights in a weights dict


class CellWeights(NamedTuple):
    """What one cell type's edges read: op weights [edges, ops], PC-DARTS edge weights
    [edges] (None without partial channels) and the multiplier weights
    [edges, conv ops, multipliers] of the factorised space (None in the flat space)."""

    ops: torch.Tensor
    edges: torch.Tensor | None
    multipliers: torch.Tensor | None

    def edge(self, index: int) -> CellWeights:
        """The weights of one edge: op weights [ops], its edge weight, multipliers
        [conv ops, multipliers] (None where the cell has none)."""
        return CellWeights(*(None if table is None else table[index] for table in self))


class Architecture(nn.Module):
    """The alpha tables of a cell search over `space` (cells of `steps` nodes whose last
    `multiplier` nodes form the output); PC-DARTS edge betas when `partial_channels` > 1.
    Tables start at 1e-3 N(0, 1), as in DARTS."""

    def __init__(self, space: SearchSpace, steps: int = topology.STEPS,
                 multiplier: int = topology.MULTIPLIER, partial_channels: int = 1,
                 multiplier_sampling: str = "mixture", max_parameter_free: int | None = None):
        super().__init__()
        self.space, self.steps, self.multiplier = space, steps, multiplier
        self.multiplier_sampling = sampling.check_sampling(multiplier_sampling)
        self.max_parameter_free = max_parameter_free  # the normal cell's cap (P-DARTS)
        self.edge_normalised = partial_channels > 1
        edges = topology.num_edges(steps)
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(edges, len(space.ops)))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(edges, len(space.ops)))
        if space.conv_ops:
            mult_shape = space.multiplier_shape(edges)
            self.multiplier_alphas_normal = nn.Parameter(1e-3 * torch.randn(mult_shape))
            if space.granularity != "network":  # one table shared by both cell types
                self.multiplier_alphas_reduce = nn.Parameter(1e-3 * torch.randn(mult_shape))
        if self.edge_normalised:
            self.betas_normal = nn.Parameter(1e-3 * torch.randn(edges))
            self.betas_reduce = nn.Parameter(1e-3 * torch.randn(edges))
        if space.searched_fixed:
            self.multiplier_alphas_fixed = nn.Parameter(
                1e-3 * torch.randn(len(space.searched_fixed), len(space.multipliers)))

    def named_alphas(self):
        """The tables in a fixed order: op alphas, multiplier alphas, betas."""
        return self.named_parameters()

    # --- the weights the supernet reads -------------------------------------------------
    def mixture_weights(self) -> dict:
        """{reduction: CellWeights} of the softmax of every table (differentiable), and the
        searched fixed groups' softmax under FIXED_KEY."""
        weights = {cell == "reduce": CellWeights(
            F.softmax(getattr(self, f"alphas_{cell}"), dim=-1),
            self.edge_weights(cell), self.multiplier_weights(cell)) for cell in CELLS}
        return self._with_fixed(weights, lambda logits: F.softmax(logits, dim=-1))

    def _with_fixed(self, weights: dict, of_logits) -> dict:
        if self.space.searched_fixed:
            weights[FIXED_KEY] = of_logits(self.multiplier_alphas_fixed)
        return weights

    def forward_weights(self, training: bool) -> dict[bool, CellWeights]:
        """The weights a supernet forward computes with: `mixture_weights()`, or with gumbel
        sampling the same op and edge weights and one multiplier per conv op (drawn when
        `training`, else the strongest); one draw per logits table, so at granularity
        'network' both cell types read the same multipliers."""
        if self.multiplier_sampling == "mixture" or not self.space.conv_ops:
            return self.mixture_weights()
        edges, draws = topology.num_edges(self.steps), {}
        weights = {}
        for cell in CELLS:
            logits = self.multiplier_logits(cell)
            if id(logits) not in draws:
                draws[id(logits)] = sampling.sampled(logits, training)
            multipliers = self.space.expand_multiplier_weights(draws[id(logits)], edges)
            weights[cell == "reduce"] = CellWeights(
                F.softmax(getattr(self, f"alphas_{cell}"), dim=-1), self.edge_weights(cell),
                multipliers)
        return self._with_fixed(weights, lambda logits: sampling.sampled(logits, training))

    def one_hot_weights(self, genotype: Genotype) -> dict[bool, CellWeights]:
        """{reduction: CellWeights} selecting `genotype`: one on its edges' ops and
        multipliers, zero elsewhere (edge weight: one on its edges)."""
        weights = {}
        for cell in CELLS:
            ops, mults = self.space.one_hot(getattr(genotype, cell), self.steps,
                                            like=self.alphas_normal)
            edges = ops.amax(dim=1) if self.edge_normalised else None
            weights[cell == "reduce"] = CellWeights(ops, edges, mults)
        return self._with_fixed(weights, lambda logits: self.space.one_hot_fixed(
            genotype.fixed, like=logits))

    def edge_weights(self, cell: str, detach: bool = False) -> torch.Tensor | None:
        """PC-DARTS edge normalisation: softmax of the betas over each node's input edges."""
        if not self.edge_normalised:
            return None
        betas = getattr(self, f"betas_{cell}")
        betas = betas.detach() if detach else betas
        sizes = [topology.num_inputs(node) for node in range(self.steps)]
        return torch.cat([F.softmax(part, dim=-1) for part in betas.split(sizes)])

    def multiplier_weights(self, cell: str, detach: bool = False) -> torch.Tensor | None:
        """softmax of a cell type's multiplier alphas, [edges, conv ops, multipliers]
        (None in the flat space)."""
        logits = self.multiplier_logits(cell)
        if logits is None:
            return None
        weights = F.softmax(logits.detach() if detach else logits, dim=-1)
        return self.space.expand_multiplier_weights(weights, topology.num_edges(self.steps))

    def multiplier_logits(self, cell: str) -> torch.Tensor | None:
        """The multiplier alphas a cell type reads (one shared table at 'network')."""
        if not self.space.conv_ops:
            return None
        if self.space.granularity == "network":
            return self.multiplier_alphas_normal
        return getattr(self, f"multiplier_alphas_{cell}")

    def multiplier_softmax(self) -> dict[str, torch.Tensor]:
        """{cell: detached softmax of its multiplier table} as stored, [edges or 1, conv ops
        or 1, multipliers] by the granularity (at 'network' one table: {'network': ...});
        {} in the flat space. Searched fixed groups add FIXED_KEY: [groups, 1, multipliers]."""
        if not self.space.conv_ops:
            return {}
        cells = ("network",) if self.space.granularity == "network" else CELLS
        tables = {cell: F.softmax(self.multiplier_logits(
            "normal" if cell == "network" else cell).detach(), dim=-1) for cell in cells}
        return self._with_fixed(tables, lambda logits: F.softmax(
            logits.detach(), dim=-1).unsqueeze(1))

    def alpha_softmax(self) -> dict:
        """{'normal': table, 'reduce': table}: detached softmax(alpha) [edges, ops]."""
        return {cell: F.softmax(getattr(self, f"alphas_{cell}").detach(), dim=-1)
                for cell in CELLS}

    # --- the discrete architecture --------------------------------------------------------
    def genotype(self) -> Genotype:
        """The DARTS derivation: per node, the two incoming edges whose strongest non-`none`
        op has the largest softmax weight, each with that op; in the factorised space a conv
        op then takes its edge's strongest multiplier (`op@m`; `float` gives the plain op).
        PC-DARTS ranks edges by op weight times edge weight. With `max_parameter_free`, the
        normal cell keeps at most that many skip/pool ops (SearchSpace.derive_cell)."""
        tables = self.alpha_softmax()
        if self.edge_normalised:
            tables = {cell: table * self.edge_weights(cell, detach=True).unsqueeze(1)
                      for cell, table in tables.items()}
        concat = topology.concat(self.steps, self.multiplier)
        derived = {cell: self.space.derive_cell(
            tables[cell], self.multiplier_weights(cell, detach=True), self.steps,
            self.max_parameter_free if cell == "normal" else None) for cell in CELLS}
        fixed = self.space.derive_fixed(self._with_fixed({}, torch.Tensor.detach).get(FIXED_KEY))
        return Genotype(normal=derived["normal"], normal_concat=concat, reduce=derived["reduce"],
                        reduce_concat=concat, fixed=fixed)
