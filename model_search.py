"""The DARTS supernet: MixedOp, search cell, and the Network holding the architecture weights.

`Network(C, num_classes, layers, criterion, ...)` keeps the DARTS signature. Its two alpha
tables (`alphas_normal`, `alphas_reduce`, shape [num_edges, num_candidates]) are kept apart
from the network weights: `weights()` yields the weights only, `alphas()` the two tables.
The candidate set may hold approximate variants (`sep_conv_3x3@mul8u_197B`); each candidate's
energy per image on each edge comes from the cost tables the network receives (`costs`, built by
`search.cost_tables.supernet_costs`), so `expected_energy_uj()` is a cheap differentiable
function of the alphas. The cell layout and the edge indexing are `topology`'s (DARTS's).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F

import topology
from approx import DEFAULT_EMULATION, EmulatedNetwork, Emulation
from approx.sharing import share, shared_codes
from genotypes import Genotype
from kernels.convgrad import memory_format_of
from operations import LeadingReLU, cifar_stem, make_lean, preprocess_ops
from search import cost_tables
from search.candidates import build_candidate
from search.params import AlphaWeightSplit
from search.space import NONE_OP, SearchSpace
from topology import num_edges  # noqa: F401  (re-exported: part of the interface)


class MixedOp(nn.Module):
    """Softmax-weighted sum of every candidate op on one edge.

    The `none` op is not run: its output is zero, so its term `w * 0` adds nothing to the
    sum or to any gradient (its weight still enters the softmax, which is computed outside).
    Ops starting with a ReLU read `x_relu` (one ReLU shared by every op reading `x`), and the
    terms are accumulated in place into `out` (a node's running sum) by `addcmul_`, which
    saves only what backward needs: no per-op product tensor is allocated.
    """

    def __init__(self, C, stride, space, emulation: Emulation = DEFAULT_EMULATION,
                 partial_channels=1):
        """`space`: a SearchSpace, or a sequence of candidate names (the flat space)."""
        super().__init__()
        if not isinstance(space, SearchSpace):
            space = SearchSpace(tuple(space))
        self.candidates = space.ops
        self.partial_channels = partial_channels
        self.stride = stride
        ops, self._mixtures = [], {}
        for k, name in enumerate(self.candidates):
            op, mixture = build_candidate(name, C // partial_channels, stride, space, emulation)
            ops.append(op)
            if mixture is not None:
                self._mixtures[k] = mixture
        self._ops = nn.ModuleList(ops)
        self._active = [k for k, name in enumerate(self.candidates) if name != NONE_OP]
        self.needs_relu = any(isinstance(self._ops[k], LeadingReLU) for k in self._active)
        # conv op k reads row `_mixture_rows[k]` of the edge's multiplier weights
        self._mixture_rows = {k: row for row, k in enumerate(self._mixtures)}

    def forward(self, x, weights, x_relu=None, out=None, edge_weight=None, x_part=None,
                multiplier_weights=None):
        """sum_k weights[k] * op_k(x) (times `edge_weight`), added to `out` in place if given.

        Factorised space: conv op k runs on the mixture of multipliers weighted by row k of
        `multiplier_weights` ([conv ops, multipliers]). PC-DARTS (partial_channels > 1): the
        ops read `x_part`, x's first C/K channels (`first_channels`, sliced here if None), and
        `x_relu` is the ReLU of that part."""
        for k, mixture in self._mixtures.items():
            mixture.weights = multiplier_weights[self._mixture_rows[k]]
        if self.partial_channels > 1:
            return _accumulate(out, self._partial_forward(x, weights, x_relu, x_part),
                               edge_weight)
        if x_relu is None and self.needs_relu:
            x_relu = F.relu(x)
        return self._mixed_sum(x, weights, x_relu, out)

    def _partial_forward(self, x, weights, x_relu, x_part):
        """PC-DARTS: the ops see the first C/K channels, the rest passes by (max-pooled when
        the edge reduces), then the channels are shuffled by K."""
        part = x.shape[1] // self.partial_channels
        if x_part is None:
            x_part = first_channels(x, part)
        if x_relu is None and self.needs_relu:
            x_relu = F.relu(x_part)
        mixed = self._mixed_sum(x_part, weights, x_relu, None)
        rest = x[:, part:]
        if self.stride > 1:
            rest = F.max_pool2d(rest, self.stride, self.stride)
        return channel_shuffle(torch.cat([mixed, rest], dim=1), self.partial_channels)

    def _mixed_sum(self, x, weights, x_relu, out):
        for k in self._active:
            op = self._ops[k]
            term = op.after_relu(x_relu) if isinstance(op, LeadingReLU) else op(x)
            out = _accumulate(out, term, weights[k])
        return out


def _accumulate(out, term, weight):
    """out + weight * term, in place into `out` (None: a new tensor; weight None: 1)."""
    if weight is None:
        return term if out is None else out.add_(term)
    return term * weight if out is None else out.addcmul_(term, weight)


def first_channels(x, count):
    """x's first `count` channels as a dense tensor in x's memory format: the ops of a
    PC-DARTS edge read them many times, and a channel slice of a channels-last map is strided
    (slower in every kernel, and a new tensor for each op that densifies it)."""
    return x[:, :count].contiguous(memory_format=memory_format_of(x))


def channel_shuffle(x, groups):
    """Interleave `groups` channel blocks (ShuffleNet), keeping x's memory format."""
    batch, channels, height, width = x.shape
    shuffled = x.view(batch, groups, channels // groups, height, width).transpose(1, 2)
    return shuffled.reshape(batch, channels, height, width).contiguous(
        memory_format=memory_format_of(x))


class SearchCell(nn.Module):
    """A DARTS search cell: `steps` nodes, each the sum of MixedOps over all earlier states.

    Every state's ReLU (and with PC-DARTS its channel part) is computed once and shared by all
    ops reading it."""

    def __init__(self, steps, multiplier, C_prev_prev, C_prev, C, reduction, reduction_prev,
                 space: SearchSpace, emulation: Emulation = DEFAULT_EMULATION,
                 partial_channels=1):
        super().__init__()
        self.reduction = reduction
        self._steps = steps
        self._multiplier = multiplier
        self._offsets = topology.edge_offsets(steps)
        self.preprocess0, self.preprocess1 = preprocess_ops(C_prev_prev, C_prev, C,
                                                            reduction_prev, affine=False)
        self.relu = nn.ReLU(inplace=False)
        self._ops = nn.ModuleList(
            MixedOp(C, topology.edge_stride(reduction, source), space, emulation,
                    partial_channels)
            for _, source in topology.edges(steps))
        self._needs_relu = self._ops[0].needs_relu
        self._part = C // partial_channels if partial_channels > 1 else None

    def forward(self, s0, s1, weights, edge_weights=None, multiplier_weights=None):
        """`edge_weights` (PC-DARTS edge normalisation): one weight per edge, or None;
        `multiplier_weights` (factorised space): [edges, conv ops, multipliers], or None."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        with shared_codes():
            op_inputs = [self._op_inputs(s) for s in states]
            for i, offset in enumerate(self._offsets):  # node i reads every state so far
                node = None
                for j, (h, (h_part, h_relu)) in enumerate(zip(states, op_inputs, strict=True)):
                    edge = offset + j
                    node = self._ops[edge](
                        h, weights[edge], h_relu, node,
                        None if edge_weights is None else edge_weights[edge], h_part,
                        None if multiplier_weights is None else multiplier_weights[edge])
                states.append(node)
                if i + 1 < self._steps:  # the last node feeds no edge of this cell
                    op_inputs.append(self._op_inputs(node))
        return torch.cat(states[-self._multiplier:], dim=1)

    def _op_inputs(self, state):
        """(PC-DARTS channel part or None, shared ReLU or None) of a state, read by every op
        on its edges; approximate convs reading the ReLU quantise it once (approx.sharing)."""
        part = None if self._part is None else first_channels(state, self._part)
        relu = share(self.relu(state if part is None else part)) if self._needs_relu else None
        return part, relu


def _check_partial_channels(C, partial_channels):
    if partial_channels < 1 or C % partial_channels:
        raise ValueError(f"partial_channels={partial_channels} must be >= 1 and divide the "
                         f"channel count C={C}")


class Network(AlphaWeightSplit, EmulatedNetwork, nn.Module):
    """The supernet. `candidates`: the op candidates of every edge; `multipliers`: the
    multiplier set of the factorised space (empty: flat candidates, see search/space.py).

    `costs`: its `SupernetCosts`, priced by the caller with `search.cost_tables.supernet_costs`
    on the network that `train.py` will build from the derived genotype, so that the expected
    energy, the budgets and the derived genotype's energy are all in deployed units. Without
    `costs` the tables are priced through the same helper at the supernet's own size (with
    `energy_table` and `energy_objective`). `emulation`: the approx.Emulation settings of its
    approximate convs (library, mode, search rank cap)."""

    def __init__(self, C, num_classes, layers, criterion, steps=topology.STEPS,
                 multiplier=topology.MULTIPLIER, stem_multiplier=topology.STEM_MULTIPLIER,
                 candidates=None, input_size=32, energy_table=None, *,
                 emulation: Emulation = DEFAULT_EMULATION, multipliers=(),
                 multiplier_granularity="edge", energy_objective="total", costs=None,
                 channels_last=True, partial_channels=1):
        super().__init__()
        _check_partial_channels(C, partial_channels)
        self.partial_channels = partial_channels
        self.space = SearchSpace.of(candidates, multipliers, multiplier_granularity)
        self.candidates = self.space.ops
        self.emulation = emulation
        self._options = dict(channels_last=channels_last, partial_channels=partial_channels,
                             emulation=emulation, multipliers=self.space.multipliers,
                             multiplier_granularity=multiplier_granularity)
        self._args = dict(C=C, num_classes=num_classes, layers=layers, steps=steps,
                          multiplier=multiplier, stem_multiplier=stem_multiplier,
                          input_size=input_size)
        self.criterion = criterion
        self._steps = steps
        self._multiplier = multiplier
        self._build_layers(C, num_classes, layers, steps, multiplier, stem_multiplier, emulation,
                           input_size)
        self._init_alphas(topology.num_edges(steps))
        if costs is None:
            costs = cost_tables.supernet_costs(self.space.columns, C, num_classes, layers, steps,
                                               multiplier, stem_multiplier, input_size,
                                               energy_table, energy_objective,
                                               emulation=emulation)
        self.costs = cost_tables.checked(costs, self.space.columns, steps)
        self._reference_energy_uj = self.uniform_energy_uj()
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.to(memory_format=self.memory_format)
        make_lean(self.cells)

    def _build_layers(self, C, num_classes, layers, steps, multiplier, stem_multiplier,
                      emulation, input_size):
        self.stem = cifar_stem(stem_multiplier * C)
        layouts = topology.cell_layouts(C, layers, stem_multiplier * C, multiplier,
                                        input_size=input_size)
        self.cells = nn.ModuleList(
            SearchCell(steps, multiplier, cell.C_prev_prev, cell.C_prev, cell.C, cell.reduction,
                       cell.reduction_prev, self.space, emulation, self.partial_channels)
            for cell in layouts)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(layouts[-1].C_out, num_classes)

    def _init_alphas(self, edges: int) -> None:
        """The op alphas, the factorised space's multiplier alphas and PC-DARTS's betas."""
        shape = (edges, len(self.candidates))
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(shape))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(shape))
        if self.space.conv_ops:
            mult_shape = self.space.multiplier_shape(edges)
            self.multiplier_alphas_normal = nn.Parameter(1e-3 * torch.randn(mult_shape))
            if self.space.granularity != "network":  # one table shared by both cell types
                self.multiplier_alphas_reduce = nn.Parameter(1e-3 * torch.randn(mult_shape))
        if self.partial_channels > 1:  # PC-DARTS edge normalisation
            self.betas_normal = nn.Parameter(1e-3 * torch.randn(edges))
            self.betas_reduce = nn.Parameter(1e-3 * torch.randn(edges))

    # --- forward and loss -------------------------------------------------------------
    def forward(self, x):
        weights = self._fixed_weights or self._mixture_weights()
        s0 = s1 = self.stem(x.contiguous(memory_format=self.memory_format))
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, *weights[cell.reduction])
        return self.classifier(self.global_pooling(s1).flatten(1))

    _fixed_weights = None  # set inside `discretised()`

    def _mixture_weights(self) -> dict:
        """{reduction: (op weights, PC-DARTS edge weights, multiplier weights)} per cell type."""
        return {reduction: (F.softmax(getattr(self, f"alphas_{cell}"), dim=-1),
                            self._edge_weights(getattr(self, f"betas_{cell}", None)),
                            self.multiplier_weights(cell))
                for reduction, cell in ((False, "normal"), (True, "reduce"))}

    @contextmanager
    def discretised(self, genotype: Genotype):
        """Within this block the supernet computes `genotype`'s network with its weights:
        one-hot op and multiplier weights on the genotype's edges, zero on the others."""
        fixed = {}
        for reduction, cell in ((False, "normal"), (True, "reduce")):
            ops, mults = self.space.one_hot(getattr(genotype, cell), self._steps,
                                            like=self.alphas_normal)
            edge_weights = None if self.partial_channels == 1 else ops.amax(dim=1)
            fixed[reduction] = (ops, edge_weights, mults)
        self._fixed_weights = fixed
        try:
            yield self
        finally:
            self._fixed_weights = None

    def multiplier_weights(self, cell: str, detach: bool = False) -> torch.Tensor | None:
        """softmax of a cell type's multiplier alphas, [edges, conv ops, multipliers]
        (None in the flat space)."""
        logits = self.multiplier_logits(cell)
        if logits is None:
            return None
        weights = F.softmax(logits.detach() if detach else logits, dim=-1)
        return self.space.expand_multiplier_weights(weights, topology.num_edges(self._steps))

    def multiplier_logits(self, cell: str) -> torch.Tensor | None:
        """The multiplier alphas a cell type reads (one shared table at 'network')."""
        if not self.space.conv_ops:
            return None
        if self.space.granularity == "network":
            return self.multiplier_alphas_normal
        return getattr(self, f"multiplier_alphas_{cell}")

    def _edge_weights(self, betas):
        """PC-DARTS edge normalisation: softmax of the betas over each node's input edges."""
        if betas is None:
            return None
        sizes = [topology.num_inputs(node) for node in range(self._steps)]
        return torch.cat([F.softmax(part, dim=-1) for part in betas.split(sizes)])

    def loss(self, x, y):
        return self.criterion(self(x), y)

    # --- parameter groups -------------------------------------------------------------
    def named_alphas(self):
        """The architecture parameters: the two op tables, the multiplier tables of the
        factorised space, and PC-DARTS's edge betas."""
        yield "alphas_normal", self.alphas_normal
        yield "alphas_reduce", self.alphas_reduce
        if self.space.conv_ops:
            yield "multiplier_alphas_normal", self.multiplier_alphas_normal
            if self.space.granularity != "network":
                yield "multiplier_alphas_reduce", self.multiplier_alphas_reduce
        if self.partial_channels > 1:
            yield "betas_normal", self.betas_normal
            yield "betas_reduce", self.betas_reduce

    def new(self):
        """A fresh supernet (new weights) with a copy of these alphas and the same costs."""
        copy = Network(criterion=self.criterion, candidates=self.candidates, costs=self.costs,
                       **self._args, **self._options)
        copy = copy.to(self.alphas_normal.device, self.alphas_normal.dtype)
        with torch.no_grad():
            for mine, theirs in zip(copy.alphas(), self.alphas(), strict=True):
                mine.copy_(theirs)
        return copy

    def alpha_softmax(self) -> dict:
        """{'normal': table, 'reduce': table}: detached softmax(alpha) [num_edges, num_cand.]."""
        return {name.removeprefix("alphas_"): F.softmax(alpha.detach(), dim=-1)
                for name, alpha in self.named_alphas() if name.startswith("alphas_")}

    # --- energy -----------------------------------------------------------------------
    def expected_energy_uj(self, alphas_normal=None, alphas_reduce=None, *,
                           uniform: bool = False):
        """E(alpha): expected energy per image (µJ) of the deployed network, differentiable
        in the alphas; op logits may be given (e.g. one-hot), `uniform`: at all-zero alphas
        (the loss normaliser)."""
        total = self.costs.fixed_uj
        given = {"normal": alphas_normal, "reduce": alphas_reduce}
        for cell in ("normal", "reduce"):
            logits = getattr(self, f"alphas_{cell}") if given[cell] is None else given[cell]
            mult = self.multiplier_weights(cell)
            if uniform:
                logits = torch.zeros_like(logits)
                mult = None if mult is None else torch.full_like(mult, 1.0 / mult.shape[-1])
            table = getattr(self.costs, cell).to(device=logits.device, dtype=logits.dtype)
            op_costs = self.space.effective_costs(table, mult)
            total = total + (F.softmax(logits, dim=-1) * op_costs).sum()
        return total

    def uniform_energy_uj(self) -> float:
        with torch.no_grad():
            return float(self.expected_energy_uj(uniform=True))

    def reference_energy_uj(self) -> float:
        """E_ref: the expected energy at uniform alphas (all zeros), the loss normaliser."""
        return self._reference_energy_uj

    def genotype_energy_uj(self, genotype=None) -> float:
        """Energy per image (µJ, deployed size) of a derived genotype (default: `genotype()`)."""
        genotype = self.genotype() if genotype is None else genotype
        return cost_tables.genotype_energy_uj(self.costs, genotype, self.space.columns)

    # --- discrete architecture --------------------------------------------------------
    def genotype(self) -> Genotype:
        """The DARTS derivation: per node, the two incoming edges whose strongest non-`none`
        op has the largest softmax weight, each with that op; in the factorised space a conv
        op then takes its edge's strongest multiplier (`op@m`; `float` gives the plain op)."""
        tables = self.alpha_softmax()
        if self.partial_channels > 1:  # PC-DARTS: edges ranked by op weight * edge weight
            for cell in tables:
                betas = getattr(self, f"betas_{cell}").detach()
                tables[cell] = tables[cell] * self._edge_weights(betas).unsqueeze(1)
        concat = topology.concat(self._steps, self._multiplier)
        derived = {cell: self.space.derive_cell(tables[cell], self.multiplier_weights(cell, True),
                                                self._steps) for cell in tables}
        return Genotype(normal=derived["normal"], normal_concat=concat, reduce=derived["reduce"],
                        reduce_concat=concat)
