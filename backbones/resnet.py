"""The discrete CIFAR-style ResNet of a `ResNetGenotype`: stem conv, stages of basic blocks,
global average pooling and a linear classifier. Each conv is `operations.conv_factory` of its
multiplier (float32 `nn.Conv2d`, or an emulated `approx.ApproxConv2d`); BatchNorm, ReLU,
pooling and the classifier run in float32. The supernet builds the same blocks with mixed
convs and channel masks (`mask`), so that costs and structure are defined once."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from approx import DEFAULT_EMULATION, EmulatedNetwork, Emulation
from backbones.genotype import FLOAT, ResNetGenotype
from operations import conv_factory


def zero_pad_shortcut(x, stride: int, extra_channels: int):
    """He et al.'s shortcut A: subsample by the stride and append zero channels (no weights,
    no arithmetic; appended, not centred, so that the supernet's channel masks stay prefixes)."""
    if stride > 1:
        x = x[:, :, ::stride, ::stride]
    return F.pad(x, (0, 0, 0, 0, 0, extra_channels)) if extra_channels else x


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU. `convs` are the conv factories of conv1,
    conv2 and the projection (shortcut B); `mask` runs after every BatchNorm (the supernet's
    width mask, Identity otherwise)."""

    def __init__(self, C_in, C_out, stride, shortcut, convs, mask: nn.Module | None = None):
        super().__init__()
        self.conv1 = convs[0](C_in, C_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(C_out)
        self.relu1 = nn.ReLU()
        self.conv2 = convs[1](C_out, C_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(C_out)
        self.mask = mask if mask is not None else nn.Identity()
        self.shortcut = None  # identity, or (A) zero padding: `self.padding`
        self.padding = (stride, C_out - C_in) if stride != 1 or C_in != C_out else None
        if self.padding and shortcut == "B":
            self.shortcut = nn.Sequential(OrderedDict(
                conv=convs[2](C_in, C_out, 1, stride=stride, bias=False),
                bn=nn.BatchNorm2d(C_out)))
            self.padding = None
        self.relu2 = nn.ReLU()

    def forward(self, x):
        out = self.relu1(self.mask(self.bn1(self.conv1(x))))
        out = self.mask(self.bn2(self.conv2(out)))
        if self.shortcut is not None:
            shortcut = self.mask(self.shortcut(x))
        else:
            shortcut = x if self.padding is None else zero_pad_shortcut(x, *self.padding)
        return self.relu2(out + shortcut)


def stem(C_out: int, conv, mask: nn.Module | None = None) -> nn.Sequential:
    parts = [("conv", conv(3, C_out, 3, stride=1, padding=1, bias=False)),
             ("bn", nn.BatchNorm2d(C_out))]
    if mask is not None:
        parts.append(("mask", mask))
    return nn.Sequential(OrderedDict([*parts, ("relu", nn.ReLU())]))


def head(C_in: int, num_classes: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict(pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
                                     classifier=nn.Linear(C_in, num_classes)))


def factory(multiplier: str, emulation: Emulation = DEFAULT_EMULATION):
    """The conv factory of a genotype's multiplier entry (`float`: nn.Conv2d)."""
    return conv_factory(None if multiplier == FLOAT else multiplier, emulation)


class ResNetCIFAR(EmulatedNetwork, nn.Module):
    """The network of a ResNetGenotype; module names match `genotype.layers()`."""

    def __init__(self, genotype: ResNetGenotype, num_classes: int, *,
                 emulation: Emulation = DEFAULT_EMULATION, channels_last: bool = True):
        super().__init__()
        self.genotype = genotype
        self.emulation = emulation
        self.drop_path_prob = 0.0  # set by train.py; a ResNet has no drop path
        convs = {layer.name: factory(m, emulation)
                 for layer, m in zip(genotype.layers(), genotype.multipliers, strict=True)}
        self.stem = stem(genotype.widths[0], convs["stem.conv"])
        previous = genotype.widths[0]
        for s, (count, width) in enumerate(zip(genotype.blocks, genotype.widths, strict=True)):
            blocks = []
            for b in range(count):
                prefix = f"stage{s + 1}.{b}"
                block_convs = [convs.get(f"{prefix}.{name}")
                               for name in ("conv1", "conv2", "shortcut.conv")]
                stride = 2 if s > 0 and b == 0 else 1
                blocks.append(BasicBlock(previous, width, stride, genotype.shortcut, block_convs))
                previous = width
            self.add_module(f"stage{s + 1}", nn.Sequential(*blocks))
        self.head = head(previous, num_classes)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.to(memory_format=self.memory_format)

    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, f"stage{s + 1}") for s in range(self.genotype.stages)]

    def forward(self, x):
        x = self.stem(x.contiguous(memory_format=self.memory_format))
        for stage in self.stages():
            x = stage(x)
        return self.head(x)
