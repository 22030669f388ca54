"""The layer groups of a trained network, and moving groups to other multipliers.

Every emulated conv (`approx.ApproxConv2d`) is in exactly one group. A cell network
(model.NetworkCIFAR / NetworkImageNet) has:
- `stem`: the stem's convs; `preprocess`: every cell's 1x1 ReLUConvBN preprocessing;
- `reduce_skip`: every FactorizedReduce's convs (s0's preprocessing after a reduction cell and
  a reduction cell's stride-2 skip_connect);
- `<normal|reduce> <edge> <op>`, e.g. `normal c_{k-2}->0 sep_conv_3x3`: one op of the genotype
  (edge labels of topology.edge_labels) in every cell of that type;
- `classifier`: the 1x1-conv classifier (operations.ConvClassifier).
Any other network (a ResNet backbone), and any conv outside these places, gets one group per
conv, named by its module path. Float layers (nn.Conv2d, nn.Linear) have no multiplier to
change and are in no group (`float_layers`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch.nn as nn

import topology
from approx import ApproxConv2d, Multiplier
from genotypes import CLASSIFIER, PREPROCESS, REDUCE_SKIP, STEM, Genotype, split_op_name
from operations import FactorizedReduce

# the groups outside the cells' ops are the genotype's fixed-layer groups (Genotype.fixed)
# top-level module -> group (NetworkImageNet's two stems are one group)
FIXED_GROUPS = {"stem": STEM, "stem0": STEM, "stem1": STEM, "classifier": CLASSIFIER}
FIRST, LAST = STEM, CLASSIFIER  # listed first and last; the rest in module order


@dataclass(frozen=True)
class Group:
    """A named set of emulated convs that always move together."""

    name: str
    layers: tuple[str, ...]  # the convs' module paths
    convs: tuple[ApproxConv2d, ...] = field(repr=False, compare=False)

    @property
    def multiplier(self) -> str:
        """The multiplier(s) its convs run on now ('+'-joined when they differ)."""
        return "+".join(sorted({conv.multiplier.name for conv in self.convs}))


def layer_groups(model: nn.Module, genotype=None) -> list[Group]:
    """The groups of `model` (module docstring): the stem, then the others in module order,
    the classifier last; `genotype` names the cell ops (without it every conv is its own
    group)."""
    namer = _CellNamer(model, genotype) if isinstance(genotype, Genotype) else None
    members: dict[str, list[tuple[str, ApproxConv2d]]] = {}
    reducers = {name for name, module in model.named_modules()
                if isinstance(module, FactorizedReduce)}
    for name, module in model.named_modules():
        if isinstance(module, ApproxConv2d):
            group = namer.group_of(name, reducers) if namer else name
            members.setdefault(group, []).append((name, module))
    order = sorted(members, key=lambda group: (group != FIRST) + (group == LAST))
    return [Group(group, tuple(n for n, _ in members[group]), tuple(c for _, c in members[group]))
            for group in order]


def float_layers(model: nn.Module) -> list[str]:
    """The module paths of the float convs and linear layers (in no group)."""
    return [name for name, module in model.named_modules()
            if isinstance(module, (nn.Conv2d, nn.Linear)) and not isinstance(module, ApproxConv2d)]


CELL_KINDS = ("normal", "reduce")


def op_group_names(cell_edges) -> list[str]:
    """The group name of each op of one cell type's genotype edges, without the cell kind
    (`c_{k-2}->0 sep_conv_3x3`), in genotype order."""
    labels = topology.edge_labels(topology.genotype_steps(cell_edges))
    return [f"{labels[edge]} {split_op_name(op)[0]}" for edge, (op, _) in
            zip(topology.genotype_edge_indices(cell_edges), cell_edges, strict=True)]


def cell_op_groups(genotype: Genotype) -> list[tuple[str, str | None]]:
    """(group name, multiplier or None) of every op of the genotype's cells, normal first:
    `("normal c_{k-2}->0 sep_conv_3x3", "drum4")`, `("normal 0->2 skip_connect", None)`."""
    return [(f"{kind} {name}", split_op_name(op)[1])
            for kind in CELL_KINDS
            for name, (op, _) in zip(op_group_names(getattr(genotype, kind)),
                                     getattr(genotype, kind), strict=True)]


class _CellNamer:
    """The group name of a conv of a cell network, from its module path."""

    def __init__(self, model: nn.Module, genotype: Genotype):
        self.reduction = [cell.reduction for cell in getattr(model, "cells", [])]
        self.ops = {kind: op_group_names(getattr(genotype, kind)) for kind in CELL_KINDS}

    def group_of(self, name: str, reducers: set[str]) -> str:
        parts = name.split(".")
        if parts[0] in FIXED_GROUPS:
            return FIXED_GROUPS[parts[0]]
        if parts[0] != "cells" or len(parts) < 4:
            return name
        if any(".".join(parts[:end]) in reducers for end in range(3, len(parts))):
            return REDUCE_SKIP
        if parts[2].startswith("preprocess"):
            return PREPROCESS
        if parts[2] == "ops":
            kind = "reduce" if self.reduction[int(parts[1])] else "normal"
            return f"{kind} {self.ops[kind][int(parts[3])]}"
        return name


@contextmanager
def assigned(groups: Iterable[Group], choice: Mapping[str, Multiplier]):
    """Within this block the convs of each group named in `choice` run on that multiplier
    (every other conv as it was); each conv gets its own multiplier back on exit."""
    moved = [(conv, choice[group.name]) for group in groups if group.name in choice
             for conv in group.convs]
    saved = [(conv, conv.multiplier) for conv, _ in moved]
    try:
        for conv, multiplier in moved:
            _bind(conv, multiplier)
        yield
    finally:
        for conv, multiplier in saved:
            _bind(conv, multiplier)


def _bind(conv: ApproxConv2d, multiplier: Multiplier) -> None:
    """Put `conv` on `multiplier` under its current emulation settings (rank included)."""
    conv.multiplier = multiplier
    conv.configure(conv.emulation)
