"""The DARTS supernet: MixedOp, search cell, and the Network computing with given weights.

`Network(C, num_classes, layers, criterion, ...)` keeps the DARTS signature; `forward(x,
weights)` takes the architecture weights in, as pt.darts's controller passes them. The alpha
tables, their weights and the derived genotype are its `architecture`'s
(search/architecture.py), the expected and genotype energy its `energy` model's
(search/energy_model.py, cost tables priced on the network `train.py` builds); the network
keeps DARTS's `alphas()`/`weights()` split and reads those two for the architect. The
candidate set may hold approximate variants (`sep_conv_3x3@mul8u_197B`) or, in the factorised
space, a multiplier mixture per conv op. The cell layout and the edge indexing are
`topology`'s (DARTS's).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

import topology
from approx import (
    DEFAULT_EMULATION,
    EmulatedNetwork,
    Emulation,
    MixedApproxConv2d,
    MultiplierMixture,
)
from approx.mixed import weighted_mixtures
from approx.sharing import share, shared_codes
from genotypes import CLASSIFIER, FLOAT_FIXED, PREPROCESS, REDUCE_SKIP, STEM, Genotype
from kernels.convgrad import memory_format_of
from operations import (
    LeadingReLU,
    cifar_stem,
    classifier,
    fixed_conv_factory,
    make_lean,
    preprocess_ops,
)
from search import cost_tables, one_shot
from search.architecture import FIXED_KEY, Architecture, CellWeights
from search.candidates import build_candidate
from search.energy_model import SupernetEnergy
from search.params import AlphaWeightSplit
from search.space import NONE_OP, SearchSpace
from topology import num_edges  # noqa: F401  (re-exported: part of the interface)


class StateInputs(NamedTuple):
    """A cell state as the ops on its edges read it: the state `x`, its PC-DARTS channel part
    (None without partial channels) and the ReLU of the part or the state, shared by every
    op starting with a ReLU (None when no op does)."""

    x: torch.Tensor
    part: torch.Tensor | None = None
    relu: torch.Tensor | None = None


class MixedOp(nn.Module):
    """Softmax-weighted sum of every candidate op on one edge.

    The `none` op is not run: its output is zero, so its term `w * 0` adds nothing to the
    sum or to any gradient (its weight still enters the softmax, which is computed outside).
    Ops starting with a ReLU read the state's shared ReLU, and the terms are accumulated in
    place into `out` (a node's running sum) by `addcmul_`, which saves only what backward
    needs: no per-op product tensor is allocated.
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

    def forward(self, x, weights, out=None):
        """sum_k w_k op_k(x), added to `out` in place if given. `x`: a tensor or a state's
        `StateInputs`; `weights`: the op weights [ops], or one edge's `CellWeights` (op
        weights, PC-DARTS edge weight scaling the sum, multiplier weights [conv ops,
        multipliers] that conv op k's multiplier mixture reads from row k)."""
        state = x if isinstance(x, StateInputs) else StateInputs(x)
        edge = weights if isinstance(weights, CellWeights) else CellWeights(weights, None, None)
        mixtures = {} if edge.multipliers is None else {
            mixture: edge.multipliers[row] for row, mixture in enumerate(self._mixtures.values())}
        with weighted_mixtures(mixtures):
            if self.partial_channels > 1:
                return _accumulate(out, self._partial_forward(state, edge.ops), edge.edges)
            return self._mixed_sum(self._with_relu(state.x, state.relu), edge.ops, out)

    def _with_relu(self, x, relu):
        return StateInputs(x, None, F.relu(x) if relu is None and self.needs_relu else relu)

    def _partial_forward(self, state: StateInputs, weights):
        """PC-DARTS: the ops see the first C/K channels, the rest passes by (max-pooled when
        the edge reduces), then the channels are shuffled by K."""
        x = state.x
        part = x.shape[1] // self.partial_channels
        x_part = first_channels(x, part) if state.part is None else state.part
        mixed = self._mixed_sum(self._with_relu(x_part, state.relu), weights, None)
        rest = x[:, part:]
        if self.stride > 1:
            rest = F.max_pool2d(rest, self.stride, self.stride)
        return channel_shuffle(torch.cat([mixed, rest], dim=1), self.partial_channels)

    def _mixed_sum(self, state: StateInputs, weights, out):
        for k in self._active:
            op = self._ops[k]
            term = op.after_relu(state.relu) if isinstance(op, LeadingReLU) else op(state.x)
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
    ops reading it. `layout`: its channels and place (topology.CellLayout); `shape`: the
    network's NetworkShape (nodes per cell, nodes concatenated)."""

    def __init__(self, layout: topology.CellLayout, shape: topology.NetworkShape,
                 space: SearchSpace, emulation: Emulation = DEFAULT_EMULATION,
                 partial_channels=1, fixed_convs=None):
        """`fixed_convs`: fixed-layer group -> conv factory (default: `space.fixed_base`'s)."""
        super().__init__()
        C, steps = layout.C, shape.steps
        self.reduction = layout.reduction
        self._steps = steps
        self._multiplier = shape.multiplier
        self._offsets = topology.edge_offsets(steps)
        fixed_convs = fixed_convs or functools.partial(fixed_conv_factory, space.fixed_base,
                                                       emulation=emulation)
        self.preprocess0, self.preprocess1 = preprocess_ops(
            layout.C_prev_prev, layout.C_prev, C, layout.reduction_prev, affine=False,
            conv=fixed_convs(PREPROCESS), reduce_conv=fixed_convs(REDUCE_SKIP))
        self.relu = nn.ReLU(inplace=False)
        self._ops = nn.ModuleList(
            MixedOp(C, topology.edge_stride(layout.reduction, source), space, emulation,
                    partial_channels)
            for _, source in topology.edges(steps))
        self._needs_relu = self._ops[0].needs_relu
        self._part = C // partial_channels if partial_channels > 1 else None

    def forward(self, s0, s1, weights: CellWeights):
        """The cell's output for the inputs s0, s1 under its cell type's `weights`."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        with shared_codes():
            op_inputs = [self._op_inputs(s) for s in states]
            for i, offset in enumerate(self._offsets):  # node i reads every state so far
                node = None
                for j, inputs in enumerate(op_inputs):
                    edge = offset + j
                    node = self._ops[edge](inputs, weights.edge(edge), node)
                states.append(node)
                if i + 1 < self._steps:  # the last node feeds no edge of this cell
                    op_inputs.append(self._op_inputs(node))
        return torch.cat(states[-self._multiplier:], dim=1)

    def _op_inputs(self, state) -> StateInputs:
        """The state with its PC-DARTS channel part and shared ReLU, read by every op on its
        edges; approximate convs reading the ReLU quantise it once (approx.sharing)."""
        part = None if self._part is None else first_channels(state, self._part)
        relu = share(self.relu(state if part is None else part)) if self._needs_relu else None
        return StateInputs(state, part, relu)


def _check_partial_channels(C, partial_channels):
    if partial_channels < 1 or C % partial_channels:
        raise ValueError(f"partial_channels={partial_channels} must be >= 1 and divide the "
                         f"channel count C={C}")


@dataclass(frozen=True)
class SupernetOptions:
    """The keyword options of `Network` beyond DARTS's: the candidate space (`candidates`,
    default PRIMITIVES; `multipliers` of the factorised space and their granularity), the
    image side, PC-DARTS's K, the approx.Emulation of its approximate convs, the memory
    format, its energy model (`energy`, a SupernetEnergy priced by the caller on the
    network `train.py` will build; None: priced at the supernet's own size) and how a forward
    sees the multipliers (`multiplier_sampling`, search/sampling.py); `max_parameter_free`:
    the derivation's cap on skip/pool ops in the normal cell (None: no cap)."""

    candidates: Sequence[str] | None = None
    multipliers: Sequence[str] = ()
    multiplier_granularity: str = "edge"
    input_size: int = 32
    partial_channels: int = 1
    emulation: Emulation = DEFAULT_EMULATION
    channels_last: bool = True
    energy: SupernetEnergy | None = None
    fixed_multiplier: str = FLOAT_FIXED  # of the stem, preprocessing, classifier
    multiplier_sampling: str = "mixture"
    max_parameter_free: int | None = None

    def space(self) -> SearchSpace:
        return SearchSpace.of(self.candidates, self.multipliers, self.multiplier_granularity,
                              self.fixed_multiplier)


class Network(AlphaWeightSplit, EmulatedNetwork, nn.Module):
    """The supernet (DARTS's signature; `options`: the fields of SupernetOptions). It holds
    its `architecture` (search/architecture.py: the alpha tables, their weights, the derived
    genotype) and its `energy` model (search/energy_model.py); `forward(x, weights)` computes
    with the given architecture weights, by default the architecture's softmax."""

    def __init__(self, C, num_classes, layers, criterion, steps=topology.STEPS,
                 multiplier=topology.MULTIPLIER, stem_multiplier=topology.STEM_MULTIPLIER,
                 **options):
        super().__init__()
        self.options = SupernetOptions(**options)
        self.shape = topology.NetworkShape(C, num_classes, layers, steps, multiplier,
                                           stem_multiplier, self.options.input_size)
        _check_partial_channels(C, self.options.partial_channels)
        self.partial_channels = self.options.partial_channels
        self.space = self.options.space()
        self.candidates = self.space.ops
        self.emulation = self.options.emulation
        self.criterion = criterion
        self._build_layers()
        self.architecture = Architecture(self.space, steps, multiplier, self.partial_channels,
                                         self.options.multiplier_sampling,
                                         self.options.max_parameter_free)
        energy = self.options.energy or SupernetEnergy.priced(self.space, self.shape,
                                                              emulation=self.emulation)
        cost_tables.checked(energy.costs, self.space.columns, steps)
        self.energy = energy
        self._reference_energy_uj = energy.uniform_uj()
        self.memory_format = (torch.channels_last if self.options.channels_last
                              else torch.contiguous_format)
        self.to(memory_format=self.memory_format)
        make_lean(self.cells)
        self.register_load_state_dict_pre_hook(_nest_alpha_keys)

    def _build_layers(self):
        shape = self.shape
        # a searched fixed-layer group: every conv of it mixes the multiplier set, weighted
        # per forward by the group's row of the architecture's fixed table
        self._fixed_mixtures = {group: MultiplierMixture(self.space.multipliers,
                                                         lut_dir=self.emulation.lut_dir)
                                for group in self.space.searched_fixed}
        self.stem = cifar_stem(shape.stem_multiplier * shape.C, self._fixed_conv(STEM))
        layouts = shape.layouts()
        self.cells = nn.ModuleList(
            SearchCell(cell, shape, self.space, self.emulation, self.partial_channels,
                       self._fixed_conv)
            for cell in layouts)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = classifier(layouts[-1].C_out, shape.num_classes,
                                     self._fixed_conv(CLASSIFIER))

    def _fixed_conv(self, group: str):
        """The conv factory of a fixed-layer group: its mixture when searched, else the
        multiplier `fixed` names."""
        if group in self._fixed_mixtures:
            return functools.partial(MixedApproxConv2d, mixture=self._fixed_mixtures[group],
                                     emulation=self.emulation)
        return fixed_conv_factory(self.space.fixed_base, group, emulation=self.emulation)

    def __getattr__(self, name):
        """DARTS's `model.alphas_normal`: the architecture's tables read through the network."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name.startswith(ALPHA_PREFIXES):
                return getattr(super().__getattr__("architecture"), name)
            raise

    # --- forward and loss -------------------------------------------------------------
    def forward(self, x, weights: dict[bool, CellWeights] | None = None):
        """Logits of `x` under `weights` ({reduction: CellWeights}; default: the
        architecture's `forward_weights`: the mixture, or sampled multipliers)."""
        if weights is None:
            weights = self.architecture.forward_weights(self.training)
        fixed = {mixture: row for mixture, row in zip(
            self._fixed_mixtures.values(), weights.get(FIXED_KEY, ()), strict=False)}
        with weighted_mixtures(fixed):
            s0 = s1 = self.stem(x.contiguous(memory_format=self.memory_format))
            for cell in self.cells:
                s0, s1 = s1, cell(s0, s1, weights[cell.reduction])
            return self.classifier(self.global_pooling(s1).flatten(1))

    def loss(self, x, y):
        return self.criterion(self(x), y)

    # --- the architecture and its energy ----------------------------------------------
    def named_alphas(self):
        """The architecture parameters (op tables, multiplier tables, PC-DARTS betas)."""
        return self.architecture.named_alphas()

    def alpha_softmax(self) -> dict:
        return self.architecture.alpha_softmax()

    def genotype(self) -> Genotype:
        return self.architecture.genotype()

    def expected_energy_uj(self) -> torch.Tensor:
        """E(alpha): expected energy per image (µJ) of the deployed network, differentiable."""
        return self.energy.expected_uj(self.architecture.mixture_weights())

    def reference_energy_uj(self) -> float:
        """E_ref: the expected energy at uniform alphas, the loss normaliser."""
        return self._reference_energy_uj

    def fixed_energy_uj(self) -> float:
        """E_fixed: the energy no alpha controls (stem, preprocessing, classifier; of a
        searched group, its cheapest multiplier's cost)."""
        return self.energy.fixed_floor_uj()

    def genotype_energy_uj(self, genotype=None) -> float:
        """Energy per image (µJ, deployed size) of a genotype (default: the derived one)."""
        return self.energy.genotype_uj(self.genotype() if genotype is None else genotype)

    # --- the rest of the search.supernet.Supernet interface --------------------------------
    def alpha_axes(self, table: str) -> tuple[None, list[str]]:
        return None, list(self.candidates)

    def multiplier_set(self) -> list[str]:
        return list(self.space.multipliers)

    def multiplier_softmax(self) -> dict[str, tuple[torch.Tensor, list[str]]]:
        """{table: (detached [rows, multipliers] softmax, row labels 'edge op')} of the
        multiplier tables ({} in the flat space)."""
        tables = {}
        edges = topology.edge_labels(self.shape.steps)
        for cell, probs in self.architecture.multiplier_softmax().items():
            if cell == FIXED_KEY:
                rows = [f"{group} layers" for group in self.space.searched_fixed]
            else:
                rows = [f"{edges[e] if probs.shape[0] > 1 else cell} "
                        f"{self.space.conv_ops[k] if probs.shape[1] > 1 else 'every conv'}"
                        for e in range(probs.shape[0]) for k in range(probs.shape[1])]
            tables[cell] = (probs.reshape(-1, probs.shape[-1]).cpu(), rows)
        return tables

    def describe(self) -> dict:
        return {"search_space": self.space.describe(),
                "multiplier_set": list(self.space.multipliers)}

    def derived_accuracy(self, genotype, loaders: dict, evaluate) -> dict:
        """One-shot accuracy of `genotype` (search/one_shot.py) on `loaders['test']`."""
        return one_shot.derived_accuracy(self, genotype, loaders["train"], loaders["test"],
                                         evaluate)

    def new(self):
        """A fresh supernet (new weights) with a copy of these alphas and the same energy."""
        shape = self.shape
        options = {**vars(self.options), "energy": self.energy}
        copy = Network(shape.C, shape.num_classes, shape.layers, self.criterion, shape.steps,
                       shape.multiplier, shape.stem_multiplier, **options)
        copy = copy.to(self.alphas_normal.device, self.alphas_normal.dtype)
        copy.architecture.load_state_dict(self.architecture.state_dict())
        return copy


ALPHA_PREFIXES = ("alphas_", "multiplier_alphas_", "betas_")


def _nest_alpha_keys(module, state_dict, prefix, *_):
    """Checkpoints written before the architecture moved out keep loading: their tables
    (`alphas_normal`, ...) become `architecture.alphas_normal`."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        name = key[len(prefix):]
        if name.startswith(ALPHA_PREFIXES):
            state_dict[f"{prefix}architecture.{name}"] = state_dict.pop(key)
