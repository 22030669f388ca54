"""The architecture of a DARTS cell search, apart from the supernet that computes with it.

`Architecture` holds the alpha tables: per cell type (normal, reduce) the op alphas
[edges, ops], in the factorised space the multiplier alphas (shaped by the granularity; at
`network` one table serves both cell types) and, with PC-DARTS, the edge betas [edges]. It
gives the weights the supernet's `forward(x, weights)` reads (`mixture_weights`: their
softmax, as pt.darts's controller passes them; `one_hot_weights`: a genotype's discrete
choice), and derives the genotype (DARTS: per node the two strongest edges, each with its
strongest op other than `none`). Sampled weights (GDAS, SNAS) would be one more method
beside `mixture_weights` giving `CellWeights` of the same shapes.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

import topology
from genotypes import Genotype
from search.space import SearchSpace

CELLS = ("normal", "reduce")


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
                 multiplier: int = topology.MULTIPLIER, partial_channels: int = 1):
        super().__init__()
        self.space, self.steps, self.multiplier = space, steps, multiplier
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

    def named_alphas(self):
        """The tables in a fixed order: op alphas, multiplier alphas, betas."""
        return self.named_parameters()

    # --- the weights the supernet reads -------------------------------------------------
    def mixture_weights(self) -> dict[bool, CellWeights]:
        """{reduction: CellWeights} of the softmax of every table (differentiable)."""
        return {cell == "reduce": CellWeights(
            F.softmax(getattr(self, f"alphas_{cell}"), dim=-1),
            self.edge_weights(cell), self.multiplier_weights(cell)) for cell in CELLS}

    def one_hot_weights(self, genotype: Genotype) -> dict[bool, CellWeights]:
        """{reduction: CellWeights} selecting `genotype`: one on its edges' ops and
        multipliers, zero elsewhere (edge weight: one on its edges)."""
        weights = {}
        for cell in CELLS:
            ops, mults = self.space.one_hot(getattr(genotype, cell), self.steps,
                                            like=self.alphas_normal)
            edges = ops.amax(dim=1) if self.edge_normalised else None
            weights[cell == "reduce"] = CellWeights(ops, edges, mults)
        return weights

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

    def alpha_softmax(self) -> dict:
        """{'normal': table, 'reduce': table}: detached softmax(alpha) [edges, ops]."""
        return {cell: F.softmax(getattr(self, f"alphas_{cell}").detach(), dim=-1)
                for cell in CELLS}

    # --- the discrete architecture --------------------------------------------------------
    def genotype(self) -> Genotype:
        """The DARTS derivation: per node, the two incoming edges whose strongest non-`none`
        op has the largest softmax weight, each with that op; in the factorised space a conv
        op then takes its edge's strongest multiplier (`op@m`; `float` gives the plain op).
        PC-DARTS ranks edges by op weight times edge weight."""
        tables = self.alpha_softmax()
        if self.edge_normalised:
            tables = {cell: table * self.edge_weights(cell, detach=True).unsqueeze(1)
                      for cell, table in tables.items()}
        concat = topology.concat(self.steps, self.multiplier)
        derived = {cell: self.space.derive_cell(tables[cell],
                                                self.multiplier_weights(cell, detach=True),
                                                self.steps) for cell in CELLS}
        return Genotype(normal=derived["normal"], normal_concat=concat, reduce=derived["reduce"],
                        reduce_concat=concat, fixed=self.space.fixed)
