"""Discrete networks built from a genotype: the CIFAR-style and ImageNet-style DARTS networks,
their auxiliary heads and drop path. Ops named `op@multiplier` run emulated on that multiplier,
as the `emulation` settings (approx.Emulation) say; `net.emulating(...)` switches them later."""

from __future__ import annotations

import torch
import torch.nn as nn

import topology
from approx import DEFAULT_EMULATION, EmulatedNetwork, Emulation
from backbones.genotype import ResNetGenotype
from backbones.resnet import ResNetCIFAR
from genotypes import CLASSIFIER, FLOAT_FIXED, PREPROCESS, REDUCE_SKIP, STEM, Genotype
from operations import (
    Identity,
    build_op,
    cifar_stem,
    classifier,
    fixed_conv_factory,
    preprocess_ops,
)


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples of a path with probability `drop_prob`, rescaling the kept ones."""
    if drop_prob <= 0.0:
        return x
    keep_prob = 1.0 - drop_prob
    mask = torch.empty(x.size(0), 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep_prob)
    return x / keep_prob * mask


def is_fixed_layer(name: str) -> bool:
    """A layer (profile name) outside the cells' ops (`cells.<i>.ops.<j>...`): the stem, the
    preprocessing, the pooling and the classifier, which no alpha controls."""
    parts = name.split(".")
    return not (len(parts) > 2 and parts[0] == "cells" and parts[2] == "ops")


class Cell(nn.Module):
    def __init__(self, genotype: Genotype, C_prev_prev, C_prev, C, reduction, reduction_prev,
                 emulation: Emulation = DEFAULT_EMULATION):
        super().__init__()
        self.reduction = reduction
        self.preprocess0, self.preprocess1 = preprocess_ops(
            C_prev_prev, C_prev, C, reduction_prev,
            conv=fixed_conv_factory(genotype.fixed, PREPROCESS, emulation),
            reduce_conv=fixed_conv_factory(genotype.fixed, REDUCE_SKIP, emulation))
        edges = genotype.reduce if reduction else genotype.normal
        self.concat = list(genotype.reduce_concat if reduction else genotype.normal_concat)
        self.multiplier = len(self.concat)
        self.steps = topology.genotype_steps(edges)
        self.indices = [index for _, index in edges]
        self.ops = nn.ModuleList(
            build_op(name, C, topology.edge_stride(reduction, index), True, emulation,
                     genotype.fixed)
            for name, index in edges
        )

    def forward(self, s0, s1, drop_prob: float = 0.0):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(self.steps):
            node_sum = 0
            for edge in topology.genotype_positions(node):
                op = self.ops[edge]
                h = op(states[self.indices[edge]])
                if self.training and drop_prob > 0 and not isinstance(op, Identity):
                    h = drop_path(h, drop_prob)
                node_sum = node_sum + h
            states.append(node_sum)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHeadCIFAR(nn.Module):
    """Auxiliary classifier on 8x8 feature maps (DARTS)."""

    def __init__(self, C, num_classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(C, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class AuxiliaryHeadImageNet(AuxiliaryHeadCIFAR):
    """Auxiliary classifier on 14x14 feature maps (DARTS ImageNet: pool stride 2)."""

    def __init__(self, C, num_classes):
        super().__init__(C, num_classes)
        self.features[1] = nn.AvgPool2d(5, stride=2, padding=0, count_include_pad=False)


class _CellStack(EmulatedNetwork, nn.Module):
    """The cells (`topology.cell_layouts`: reductions at 1/3 and 2/3 depth), global pooling
    and a classifier. The convs outside the cells' ops (and the classifier) run on
    `genotype.fixed`'s multiplier; `int8_deployed` says the network is priced as an int8
    network (energy_estimator) unless they are float32."""

    def __init__(self, C, C_stem, num_classes, layers, auxiliary, genotype, emulation,
                 reduction_prev, auxiliary_head):
        super().__init__()
        self.emulation = emulation
        self.int8_deployed = genotype.fixed != FLOAT_FIXED
        self.drop_path_prob = 0.0
        self._auxiliary = auxiliary
        self._auxiliary_cell = topology.auxiliary_cell(layers)
        self.cells = nn.ModuleList()
        self.auxiliary_head = None
        layouts = topology.cell_layouts(C, layers, C_stem, len(genotype.normal_concat),
                                        len(genotype.reduce_concat),
                                        reduction_prev=reduction_prev)
        for layout in layouts:
            self.cells.append(Cell(genotype, layout.C_prev_prev, layout.C_prev, layout.C,
                                   layout.reduction, layout.reduction_prev, emulation))
            if auxiliary and layout.index == self._auxiliary_cell:
                self.auxiliary_head = auxiliary_head(layout.C_out, num_classes)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = classifier(layouts[-1].C_out, num_classes,
                                     fixed_conv_factory(genotype.fixed, CLASSIFIER, emulation))

    def stem_forward(self, x):
        raise NotImplementedError

    def _lay_out(self, channels_last: bool) -> None:
        """Weights (here) and inputs (in forward) channels-last, or not: channels-last runs a
        CPU training step about 25 % faster (oneDNN's native layout)."""
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.to(memory_format=self.memory_format)

    def forward(self, x):
        """Logits, or (logits, auxiliary logits) in training mode with an auxiliary head."""
        s0, s1 = self.stem_forward(x.contiguous(memory_format=self.memory_format))
        logits_aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self._auxiliary_cell and self.auxiliary_head is not None and self.training:
                logits_aux = self.auxiliary_head(s1)
        logits = self.classifier(torch.flatten(self.global_pooling(s1), 1))
        return (logits, logits_aux) if logits_aux is not None else logits


class NetworkCIFAR(_CellStack):
    def __init__(self, C, num_classes, layers, auxiliary, genotype, stem_multiplier=3, *,
                 emulation: Emulation = DEFAULT_EMULATION, channels_last=True):
        C_stem = stem_multiplier * C
        super().__init__(C, C_stem, num_classes, layers, auxiliary, genotype, emulation,
                         reduction_prev=False, auxiliary_head=AuxiliaryHeadCIFAR)
        self.stem = cifar_stem(C_stem, fixed_conv_factory(genotype.fixed, STEM, emulation))
        self._lay_out(channels_last)

    def stem_forward(self, x):
        s = self.stem(x)
        return s, s


class NetworkImageNet(_CellStack):
    """The DARTS ImageNet network (224x224 input, two stride-2 stems)."""

    def __init__(self, C, num_classes, layers, auxiliary, genotype, *,
                 emulation: Emulation = DEFAULT_EMULATION, channels_last=True):
        super().__init__(C, C, num_classes, layers, auxiliary, genotype, emulation,
                         reduction_prev=True, auxiliary_head=AuxiliaryHeadImageNet)
        self.stem0 = nn.Sequential(
            nn.Conv2d(3, C // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C),
        )
        self.stem1 = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C),
        )
        self._lay_out(channels_last)

    def stem_forward(self, x):
        s0 = self.stem0(x)
        return s0, self.stem1(s0)


def build_network(genotype, C, num_classes, layers, auxiliary, *,
                  emulation: Emulation = DEFAULT_EMULATION):
    """The discrete network of any genotype kind: DARTS's `NetworkCIFAR(C, num_classes,
    layers, auxiliary, genotype)` for a cell genotype, a `backbones.resnet.ResNetCIFAR` for a
    backbone (C, layers and auxiliary do not apply: the genotype fixes its widths and depth);
    both emulate their approximate convs as `emulation` says."""
    if isinstance(genotype, ResNetGenotype):
        return ResNetCIFAR(genotype, num_classes, emulation=emulation)
    return NetworkCIFAR(C, num_classes, layers, auxiliary, genotype, emulation=emulation)
