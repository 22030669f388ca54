"""The candidate space of a search: which ops an edge may take and on which multipliers.

Two forms, both deriving genotypes in the `op@multiplier` format:

- **factorised** (the default when multipliers are given): per edge, alphas over the
  primitives, and for every conv primitive a separate distribution over the multiplier set
  (`exact` is the exact 8-bit multiplier, `float` a plain float32 conv). The op decision
  never sees the multipliers, so an op family's probability mass is never split between its
  variants. Multiplier distributions are held at a `granularity`:
  `edge` (one per edge and conv op), `cell` (one per cell type and conv op, shared by its
  edges) or `network` (one for every conv of the network).
- **flat** (`multipliers` empty): every candidate is a full op name (`sep_conv_3x3@drum4`
  is its own candidate beside `sep_conv_3x3`), as in the first AxDARTS searches; existing
  runs and genotypes stay valid.

`columns` names every (op, multiplier) pair the cost table needs; `effective_costs` folds a
cost table over those columns into per-op expected costs given the multiplier
distributions, so the supernet's expected energy stays one differentiable expression.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

import topology
from approx.mixed import FLOAT  # the member meaning a float32 conv (no `@` in a genotype)
from genotypes import (
    CONV_PRIMITIVES,
    MULTIPLIER_SEPARATOR,
    PARAMETER_FREE_PRIMITIVES,
    PRIMITIVES,
    SEARCHED_FIXED,
    Genotype,
    fixed_assignment,
    fixed_spec,
    split_op_name,
)

EXACT = "exact"
SIGNED_EXACT = "exact_s"  # approx.builtin's exact signed multiplier
GRANULARITIES = ("edge", "cell", "network")
NONE_OP = "none"


class SearchSpaceError(ValueError):
    """A candidate space that cannot be searched (names, multiplier set, granularity)."""


def exact_member(names, emulation) -> str:
    """The exact multiplier of a multiplier set's kind: `exact` for unsigned tables (or none),
    `exact_s` for signed ones; a set mixing the kinds is an error naming both."""
    loaded = [emulation.multiplier(name) for name in names if name != FLOAT]
    signed = [m.name for m in loaded if m.signed]
    unsigned = [m.name for m in loaded if not m.signed]
    if signed and unsigned:
        raise SearchSpaceError(
            f"--multipliers mixes signed {signed} and unsigned {unsigned} multipliers; a "
            f"search holds one kind (signed sets get '{SIGNED_EXACT}' in place of '{EXACT}')")
    return SIGNED_EXACT if signed else EXACT


@dataclass(frozen=True)
class SearchSpace:
    """`ops`: the op candidates of an edge; `multipliers`: the multiplier set of the conv ops
    (empty: the flat form, where `ops` may hold `op@m` names); `fixed`: the multiplier of the
    convs outside the edges' ops and of a reducing skip_connect (`Genotype.fixed`), where
    groups may be SEARCHED_FIXED: the search then chooses their multiplier from the set too
    (`searched_fixed`)."""

    ops: tuple[str, ...]
    multipliers: tuple[str, ...] = ()
    granularity: str = "edge"
    fixed: str = FLOAT

    def __post_init__(self):
        if self.granularity not in GRANULARITIES:
            raise SearchSpaceError(f"multiplier granularity '{self.granularity}': choose one of "
                                   f"{', '.join(GRANULARITIES)}")
        if all(op == NONE_OP for op in self.ops):
            raise SearchSpaceError(f"the candidate ops need at least one op besides "
                                   f"'{NONE_OP}'")
        if len(set(self.ops)) != len(self.ops) or len(set(self.multipliers)) != len(
                self.multipliers):
            raise SearchSpaceError(f"duplicate names in ops {list(self.ops)} or multipliers "
                                   f"{list(self.multipliers)}")
        if self.searched_fixed and (not self.factorised or FLOAT in self.multipliers):
            raise SearchSpaceError(
                f"fixed layers '{self.fixed}': a searched group chooses among the 8-bit "
                f"multipliers of the factorised space; give --multipliers without "
                f"'{FLOAT}' (and --multiplier_search factorised), or name each group's "
                f"multiplier")
        if self.factorised:
            variants = [op for op in self.ops if MULTIPLIER_SEPARATOR in op]
            if variants:
                raise SearchSpaceError(
                    f"ops {variants} name a multiplier, but multipliers are searched "
                    f"separately ({', '.join(self.multipliers)}); list plain primitives, or "
                    f"use the flat space (--multiplier_search flat)")

    @classmethod
    def of(cls, candidates=None, multipliers=(), multiplier_granularity="edge",
           fixed_multiplier=FLOAT) -> SearchSpace:
        """The space of `model_search.Network`'s arguments (no candidates: PRIMITIVES)."""
        return cls(tuple(PRIMITIVES if candidates is None else candidates), tuple(multipliers),
                   multiplier_granularity, fixed_multiplier)

    @property
    def factorised(self) -> bool:
        return bool(self.multipliers)

    @property
    def conv_ops(self) -> tuple[str, ...]:
        """The ops carrying a multiplier distribution (factorised form only)."""
        return tuple(op for op in self.ops if op in CONV_PRIMITIVES) if self.factorised else ()

    def op_name(self, op: str, multiplier: str | None) -> str:
        """The genotype name of `op` on `multiplier` (`float` and None give the plain op)."""
        if multiplier is None or multiplier == FLOAT:
            return op
        return f"{op}{MULTIPLIER_SEPARATOR}{multiplier}"

    @property
    def searched_fixed(self) -> tuple[str, ...]:
        """The fixed-layer groups whose multiplier the search chooses (FIXED_LAYER_GROUPS
        order; empty when `fixed` names them all)."""
        assignment = fixed_assignment(self.fixed, "search space", searchable=True)
        return tuple(group for group, m in assignment.items() if m == SEARCHED_FIXED)

    @property
    def fixed_base(self) -> str:
        """`fixed` with every searched group on the set's exact member: the assignment the
        fixed part is priced from (a searched group's choice adds its cost difference)."""
        exact = next((m for m in self.multipliers if m in (EXACT, SIGNED_EXACT)), EXACT)
        return self.fixed_with(dict.fromkeys(self.searched_fixed, exact))

    def fixed_with(self, choices: dict[str, str]) -> str:
        """`fixed` with the searched groups on `choices` ({group: multiplier})."""
        assignment = fixed_assignment(self.fixed, "search space", searchable=True)
        return fixed_spec({**assignment, **choices})

    def derive_fixed(self, fixed_weights: torch.Tensor | None) -> str:
        """The genotype's `fixed`: each searched group on its strongest multiplier under
        `fixed_weights` ([searched groups, multipliers])."""
        if not self.searched_fixed:
            return self.fixed
        return self.fixed_with({group: self.multipliers[int(row.argmax())]
                                for group, row in zip(self.searched_fixed, fixed_weights,
                                                      strict=True)})

    def one_hot_fixed(self, fixed: str, *, like: torch.Tensor) -> torch.Tensor | None:
        """[searched groups, multipliers] weights selecting a genotype's fixed multipliers
        (None when no group is searched)."""
        if not self.searched_fixed:
            return None
        chosen = fixed_assignment(fixed)
        weights = torch.zeros(len(self.searched_fixed), len(self.multipliers), dtype=like.dtype,
                              device=like.device)
        for row, group in enumerate(self.searched_fixed):
            if chosen[group] not in self.multipliers:
                raise SearchSpaceError(f"fixed layers '{fixed}': the {group} multiplier "
                                       f"'{chosen[group]}' is not in the searched set "
                                       f"({', '.join(self.multipliers)})")
            weights[row, self.multipliers.index(chosen[group])] = 1.0
        return weights

    @property
    def columns(self) -> tuple[str, ...]:
        """Every full op name the cost table prices: each op, each conv op on each multiplier."""
        if not self.factorised:
            return self.ops
        names = []
        for op in self.ops:
            variants = self.multipliers if op in self.conv_ops else (None,)
            names += [self.op_name(op, m) for m in variants]
        return tuple(names)

    def multiplier_shape(self, num_edges: int) -> tuple[int, int, int]:
        """Shape of one cell type's multiplier logits: [edges or 1, conv ops or 1, mults]."""
        edges = num_edges if self.granularity == "edge" else 1
        ops = 1 if self.granularity == "network" else len(self.conv_ops)
        return edges, ops, len(self.multipliers)

    def expand_multiplier_weights(self, weights: torch.Tensor, num_edges: int) -> torch.Tensor:
        """[edges, conv ops, multipliers] view of a granularity-shaped weight table."""
        return weights.expand(num_edges, len(self.conv_ops), len(self.multipliers))

    def effective_costs(self, column_costs: torch.Tensor,
                        multiplier_weights: torch.Tensor | None) -> torch.Tensor:
        """[edges, ops] expected cost of each op: a conv op's cost is the mean of its
        multiplier variants' costs under `multiplier_weights` ([edges, conv ops, mults])."""
        if not self.factorised:
            return column_costs
        parts, start = [], 0
        conv_index = {op: k for k, op in enumerate(self.conv_ops)}
        for op in self.ops:
            if op in conv_index:
                width = len(self.multipliers)
                variants = column_costs[:, start:start + width]
                parts.append((variants * multiplier_weights[:, conv_index[op]]).sum(-1))
            else:
                width = 1
                parts.append(column_costs[:, start])
            start += width
        return torch.stack(parts, dim=1)

    def without_none(self, op_weights: torch.Tensor) -> torch.Tensor:
        """[edges, ops] weights with `none` zeroed and each row renormalised (the derivation
        never keeps `none`; an all-zero row stays zero)."""
        kept = op_weights * self._none_mask(op_weights)
        return kept / kept.sum(-1, keepdim=True).clamp_min(1e-12)

    def edge_strength(self, op_weights: torch.Tensor, edge_weights: torch.Tensor | None
                      ) -> torch.Tensor:
        """[edges] what the derivation ranks an edge by: its strongest non-`none` op weight,
        times the PC-DARTS edge weight when given."""
        strength = (op_weights * self._none_mask(op_weights)).amax(-1)
        return strength if edge_weights is None else strength * edge_weights

    def _none_mask(self, like: torch.Tensor) -> torch.Tensor:
        return torch.tensor([name != NONE_OP for name in self.ops], dtype=like.dtype,
                            device=like.device)

    def derive_cell(self, op_weights: torch.Tensor, multiplier_weights: torch.Tensor | None,
                    steps: int = topology.STEPS, max_parameter_free: int | None = None
                    ) -> list[tuple[str, int]]:
        """The DARTS derivation of one cell from its [edges, ops] weights: per node, the two
        incoming edges whose strongest non-`none` op weighs most, each with that op; a conv op
        of the factorised form then takes its edge's strongest multiplier (`op@m`; `float`
        gives the plain op) under `multiplier_weights` ([edges, conv ops, multipliers]).
        `max_parameter_free` (P-DARTS's cap against skip/pool collapse): while the cell keeps
        more parameter-free ops, the weakest kept one is struck from its edge and the cell
        derived again (that edge then competes with its next op)."""
        weights = op_weights.cpu().tolist()
        while True:
            picks = self._strongest_edges(weights, steps)
            free = sorted((weights[edge][k], edge, k) for edge, k, _ in picks
                          if self._parameter_free(self.ops[k]))
            if max_parameter_free is None or len(free) <= max_parameter_free or free[0][0] < 0:
                break
            _, edge, k = free[0]
            weights[edge][k] = -1.0  # below every weight: never the edge's strongest again
        return [(self._derived_name(self.ops[k], edge, multiplier_weights), source)
                for edge, k, source in picks]

    def _strongest_edges(self, weights, steps) -> list[tuple[int, int, int]]:
        """(edge, op index, source state) the DARTS derivation keeps, node by node."""
        usable = [k for k, name in enumerate(self.ops) if name != NONE_OP]
        picks = []
        for node, start in enumerate(topology.edge_offsets(steps)):
            rows = weights[start:start + topology.num_inputs(node)]
            best_op = [max(usable, key=lambda k, row=row: row[k]) for row in rows]
            strength = [row[k] for row, k in zip(rows, best_op, strict=True)]
            kept = sorted(range(len(rows)), key=lambda j: -strength[j])
            picks += [(start + j, best_op[j], j) for j in kept[:topology.GENOTYPE_INPUTS_PER_NODE]]
        return picks

    @staticmethod
    def _parameter_free(name: str) -> bool:
        return split_op_name(name)[0] in PARAMETER_FREE_PRIMITIVES

    def _derived_name(self, op: str, edge: int, multiplier_weights) -> str:
        if op not in self.conv_ops:
            return op
        row = multiplier_weights[edge, self.conv_ops.index(op)]
        return self.op_name(op, self.multipliers[int(row.argmax())])

    def one_hot(self, cell_edges, steps: int = topology.STEPS, *, like: torch.Tensor):
        """(op weights [edges, ops], multiplier weights [edges, conv ops, multipliers] or
        None) that select a genotype cell: one on its edges' ops and multipliers, zero
        elsewhere; in `like`'s dtype and device."""
        zeros = dict(dtype=like.dtype, device=like.device)
        edges = topology.num_edges(steps)
        ops = torch.zeros(edges, len(self.ops), **zeros)
        mults = (torch.zeros(edges, len(self.conv_ops), len(self.multipliers), **zeros)
                 if self.conv_ops else None)
        for (name, _), edge in zip(cell_edges, topology.genotype_edge_indices(cell_edges),
                                   strict=True):
            base, multiplier = split_op_name(name)
            ops[edge, self.ops.index(base if self.factorised else name)] = 1.0
            if base in self.conv_ops:
                m = self.multipliers.index(multiplier or FLOAT)
                mults[edge, self.conv_ops.index(base), m] = 1.0
        return ops, mults

    def sample_genotype(self, seed: int, steps: int = topology.STEPS) -> Genotype:
        """A cell pair drawn uniformly from this space: per node two distinct inputs, each
        with a random op other than 'none' (the DARTS derivation never picks 'none') and, for
        a conv op of the factorised space, a random multiplier of the set."""
        rng = random.Random(seed)
        ops = [name for name in self.ops if name != NONE_OP]

        def edge_op():
            op = rng.choice(ops)
            return self.op_name(op, rng.choice(self.multipliers)) if op in self.conv_ops else op

        def cell():
            pairs = topology.GENOTYPE_INPUTS_PER_NODE
            return [(edge_op(), source) for node in range(steps)
                    for source in sorted(rng.sample(range(topology.num_inputs(node)), pairs))]

        concat = topology.concat(steps, multiplier=steps)
        normal, reduce = cell(), cell()
        fixed = self.fixed_with({group: rng.choice(self.multipliers)
                                 for group in self.searched_fixed})
        return Genotype(normal, concat, reduce, concat, fixed)

    def describe(self) -> str:
        if not self.factorised:
            return f"flat: {len(self.ops)} candidates per edge ({', '.join(self.ops)})"
        searched = (f"; the {', '.join(self.searched_fixed)} layers each on one of them"
                    if self.searched_fixed else "")
        return (f"factorised: {len(self.ops)} ops per edge ({', '.join(self.ops)}); each conv "
                f"op on one of {len(self.multipliers)} multipliers "
                f"({', '.join(self.multipliers)}), one distribution per {self.granularity}"
                f"{searched}")
