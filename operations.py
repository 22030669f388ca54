"""Candidate operations of the DARTS cell space and their approximate-multiplier variants.

`OPS[name](C, stride, affine)` builds a float32 op. `build_op('sep_conv_3x3@drum4', C, stride,
affine, emulation)` builds the same op with every convolution emulated on that 8-bit multiplier
(`@exact` = exact int8 arithmetic) as the `approx.Emulation` settings say (library, mode, rank
cap). Every block takes a `conv` factory with the signature of `nn.Conv2d`, so the float and
the approximate variants share one definition. The supernet's memory-lean and CPU-fast
twins of these layers live in kernels/lean.py (`make_lean` here names the blocks to fuse).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

import torch
import torch.nn as nn

import topology
from approx import DEFAULT_EMULATION, ApproxConv2d, Emulation, MixedApproxConv2d, MultiplierMixture
from approx.mixed import FLOAT
from genotypes import (
    CONV_PRIMITIVES,
    PRIMITIVES,
    REDUCE_SKIP,
    fixed_multiplier,
    op_name_problem,
    split_op_name,
)
from kernels import lean
from kernels.lean import LayoutBatchNorm2d, LeadingReLU, StridedPointwiseConv2d

ConvFactory = Callable[..., nn.Conv2d]


class OperationError(ValueError):
    """An unknown op or multiplier name in a candidate set or genotype."""


class ReLUConvBN(LeadingReLU, nn.Sequential):
    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True, conv=nn.Conv2d):
        super().__init__(
            nn.ReLU(inplace=False),
            conv(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            LayoutBatchNorm2d(C_out, affine=affine),
        )


class DilConv(LeadingReLU, nn.Sequential):
    """ReLU, depthwise dilated conv, pointwise conv, BN."""

    def __init__(self, C_in, C_out, kernel_size, stride, padding, dilation, affine=True,
                 conv=nn.Conv2d):
        super().__init__(
            nn.ReLU(inplace=False),
            conv(C_in, C_in, kernel_size, stride=stride, padding=padding, dilation=dilation,
                 groups=C_in, bias=False),
            conv(C_in, C_out, 1, padding=0, bias=False),
            LayoutBatchNorm2d(C_out, affine=affine),
        )


class SepConv(LeadingReLU, nn.Sequential):
    """Two stacked DilConv blocks with dilation 1 (the DARTS separable convolution)."""

    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True, conv=nn.Conv2d):
        super().__init__(
            DilConv(C_in, C_in, kernel_size, stride, padding, 1, affine, conv),
            DilConv(C_in, C_out, kernel_size, 1, padding, 1, affine, conv),
        )

    def after_relu(self, x):
        return self[1](self[0].after_relu(x))


class Identity(nn.Module):
    def forward(self, x):
        return x


class Zero(nn.Module):
    """The `none` op: a zero tensor of the output shape."""

    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(LeadingReLU, nn.Module):
    """Halve the resolution with two offset stride-2 1x1 convs, concatenated (float convs are
    StridedPointwiseConv2d; approximate ones route their backward through convgrad)."""

    def __init__(self, C_in, C_out, affine=True, conv=nn.Conv2d):
        super().__init__()
        if C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even C_out, got {C_out}")
        conv = StridedPointwiseConv2d if conv is nn.Conv2d else conv
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = conv(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = conv(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = LayoutBatchNorm2d(C_out, affine=affine)

    def forward(self, x):
        return self.after_relu(self.relu(x))

    def after_relu(self, x):
        out = torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1)
        return self.bn(out)


def _skip(C, stride, affine, conv=nn.Conv2d):
    return Identity() if stride == 1 else FactorizedReduce(C, C, affine, conv)


def cifar_stem(C_out: int, conv: ConvFactory = nn.Conv2d) -> nn.Sequential:
    """The stem of the CIFAR-style networks: a 3x3 conv of the RGB image and a BatchNorm."""
    return nn.Sequential(conv(3, C_out, 3, padding=1, bias=False), LayoutBatchNorm2d(C_out))


def preprocess_ops(C_prev_prev: int, C_prev: int, C: int, reduction_prev: bool,
                   affine: bool = True, conv: ConvFactory = nn.Conv2d,
                   reduce_conv: ConvFactory | None = None) -> tuple[nn.Module, nn.Module]:
    """The ops bringing a cell's inputs s0 and s1 to its C channels: 1x1 ReLUConvBNs on
    `conv`, s0's a FactorizedReduce on `reduce_conv` (default `conv`) where
    `topology.preprocess0_stride` halves it (after a reduction)."""
    if topology.preprocess0_stride(reduction_prev) == 2:
        preprocess0 = FactorizedReduce(C_prev_prev, C, affine=affine, conv=reduce_conv or conv)
    else:
        preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=affine, conv=conv)
    return preprocess0, ReLUConvBN(C_prev, C, 1, 1, 0, affine=affine, conv=conv)


class ConvClassifier(nn.Module):
    """A linear classifier computed as a 1x1 conv, so that it runs on a multiplier."""

    def __init__(self, C_in: int, num_classes: int, conv: ConvFactory):
        super().__init__()
        self.conv = conv(C_in, num_classes, 1, bias=True)

    @property
    def in_features(self) -> int:
        """nn.Linear's interface: the features read (the conv's input channels)."""
        return self.conv.in_channels

    @property
    def out_features(self) -> int:
        return self.conv.out_channels

    def forward(self, x):
        return self.conv(x[:, :, None, None]).flatten(1)


def classifier(C_in: int, num_classes: int, conv: ConvFactory = nn.Conv2d) -> nn.Module:
    """The networks' classifier: nn.Linear in float32, else a ConvClassifier on `conv`."""
    return nn.Linear(C_in, num_classes) if conv is nn.Conv2d else ConvClassifier(
        C_in, num_classes, conv)


def fixed_conv_factory(fixed: str, group: str,
                       emulation: Emulation = DEFAULT_EMULATION) -> ConvFactory:
    """The conv factory of one group of the layers outside the cells' ops under a genotype's
    `fixed` (genotypes.FIXED_LAYER_GROUPS)."""
    multiplier = fixed_multiplier(fixed, group)
    return conv_factory(None if multiplier == FLOAT else multiplier, emulation)


OPS: dict[str, Callable[..., nn.Module]] = {
    "none": lambda C, stride, affine, conv=nn.Conv2d: Zero(stride),
    "avg_pool_3x3": lambda C, stride, affine, conv=nn.Conv2d: nn.AvgPool2d(
        3, stride=stride, padding=1, count_include_pad=False),
    "max_pool_3x3": lambda C, stride, affine, conv=nn.Conv2d: nn.MaxPool2d(
        3, stride=stride, padding=1),
    "skip_connect": _skip,
    "sep_conv_3x3": lambda C, stride, affine, conv=nn.Conv2d: SepConv(
        C, C, 3, stride, 1, affine, conv),
    "sep_conv_5x5": lambda C, stride, affine, conv=nn.Conv2d: SepConv(
        C, C, 5, stride, 2, affine, conv),
    "dil_conv_3x3": lambda C, stride, affine, conv=nn.Conv2d: DilConv(
        C, C, 3, stride, 2, 2, affine, conv),
    "dil_conv_5x5": lambda C, stride, affine, conv=nn.Conv2d: DilConv(
        C, C, 5, stride, 4, 2, affine, conv),
}
assert set(OPS) == set(PRIMITIVES), "OPS and genotypes.PRIMITIVES must name the same ops"


def conv_factory(multiplier: str | MultiplierMixture | None,
                 emulation: Emulation = DEFAULT_EMULATION) -> ConvFactory:
    """`nn.Conv2d` for float32, an `ApproxConv2d` bound to the named multiplier (a spec, e.g.
    `my_mul.bin:0.21`, resolved in `emulation`'s library), or a `MixedApproxConv2d` reading a
    `MultiplierMixture`; the emulated convs run as `emulation` says."""
    if multiplier is None:
        return nn.Conv2d
    if isinstance(multiplier, MultiplierMixture):
        return functools.partial(MixedApproxConv2d, mixture=multiplier, emulation=emulation)
    try:
        resolved = emulation.multiplier(multiplier)
    except ValueError as error:
        raise OperationError(str(error)) from None
    return functools.partial(ApproxConv2d, multiplier=resolved, emulation=emulation)


def build_op(name: str, C: int, stride: int, affine: bool,
             emulation: Emulation = DEFAULT_EMULATION, fixed: str = FLOAT) -> nn.Module:
    """Build `name` (a primitive or `<conv primitive>@<multiplier>`); a reducing
    `skip_connect` (FactorizedReduce) runs on the `fixed` layers' multiplier."""
    base, multiplier = split_op_name(name)
    check_op_name(name, emulation)
    if base == "skip_connect":
        return OPS[base](C, stride, affine, fixed_conv_factory(fixed, REDUCE_SKIP, emulation))
    return OPS[base](C, stride, affine, conv_factory(multiplier, emulation))


def check_op_name(name: str, emulation: Emulation = DEFAULT_EMULATION) -> None:
    """Raise OperationError for an unknown op or multiplier (the multiplier is loaded)."""
    problem = op_name_problem(name)
    if problem:
        raise OperationError(problem)
    conv_factory(split_op_name(name)[1], emulation)


def check_multipliers(names: Iterable[str], emulation: Emulation = DEFAULT_EMULATION) -> None:
    """Raise OperationError for a multiplier set member that cannot be loaded ('float', a
    float32 conv, is always valid)."""
    for name in names:
        if name != FLOAT:
            conv_factory(name, emulation)


def candidate_ops(primitives: Iterable[str] = PRIMITIVES, multipliers: Iterable[str] = (),
                  emulation: Emulation = DEFAULT_EMULATION) -> list[str]:
    """The candidate set: the primitives plus `<conv primitive>@<m>` for each multiplier.

    Every name is checked (multipliers are loaded, so a bad name or table fails here,
    before any run directory is written).
    """
    primitives = list(primitives)
    candidates = primitives + [f"{p}@{m}" for m in multipliers
                               for p in primitives if p in CONV_PRIMITIVES]
    for name in candidates:
        check_op_name(name, emulation)
    if len(set(candidates)) != len(candidates):
        raise OperationError(f"duplicate candidate ops in {candidates}")
    return candidates


def make_lean(module: nn.Module) -> nn.Module:
    """kernels.lean.make_lean of `module`, fusing the ReLU + depthwise conv that opens the
    second half of each SepConv (it reads the first half's lean BatchNorm output)."""
    return lean.make_lean(module, [op[1] for op in module.modules() if isinstance(op, SepConv)])
