"""Candidate operations of the DARTS cell space and their approximate-multiplier variants.

`OPS[name](C, stride, affine)` builds a float32 op. `build_op('sep_conv_3x3@drum4', C, stride,
affine, lut_dir)` builds the same op with every convolution emulated on that 8-bit multiplier
(`@exact` = exact int8 arithmetic). Every block takes a `conv` factory with the signature of
`nn.Conv2d`, so the float and the approximate variants share one definition.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

import torch
import torch.nn as nn

from approx import ApproxConv2d, load_multiplier
from genotypes import CONV_PRIMITIVES, PRIMITIVES, split_op_name

ConvFactory = Callable[..., nn.Conv2d]


class OperationError(ValueError):
    """An unknown op or multiplier name in a candidate set or genotype."""


class LeadingReLU:
    """Mixin of ops whose first step is a ReLU: `after_relu(relu_x)` runs the rest, so a
    supernet can compute one ReLU per tensor and share it among every op reading it."""

    def after_relu(self, x):
        for module in list(self)[1:]:
            x = module(x)
        return x


class ReLUConvBN(LeadingReLU, nn.Sequential):
    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True, conv=nn.Conv2d):
        super().__init__(
            nn.ReLU(inplace=False),
            conv(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
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
            nn.BatchNorm2d(C_out, affine=affine),
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
    """Halve the resolution with two offset stride-2 1x1 convs, concatenated."""

    def __init__(self, C_in, C_out, affine=True, conv=nn.Conv2d):
        super().__init__()
        if C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even C_out, got {C_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = conv(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = conv(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x):
        return self.after_relu(self.relu(x))

    def after_relu(self, x):
        out = torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1)
        return self.bn(out)


def _skip(C, stride, affine, conv=nn.Conv2d):
    return Identity() if stride == 1 else FactorizedReduce(C, C, affine, conv)


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


def conv_factory(multiplier: str | None, lut_dir=None) -> ConvFactory:
    """`nn.Conv2d` for float32, else an `ApproxConv2d` bound to the named multiplier."""
    if multiplier is None:
        return nn.Conv2d
    try:
        resolved = load_multiplier(multiplier, lut_dir=lut_dir)
    except ValueError as error:
        raise OperationError(str(error)) from None
    return functools.partial(ApproxConv2d, multiplier=resolved)


def build_op(name: str, C: int, stride: int, affine: bool, lut_dir=None) -> nn.Module:
    """Build `name` (a primitive or `<conv primitive>@<multiplier>`)."""
    base, multiplier = split_op_name(name)
    check_op_name(name, lut_dir)
    return OPS[base](C, stride, affine, conv_factory(multiplier, lut_dir))


def check_op_name(name: str, lut_dir=None) -> None:
    """Raise OperationError for an unknown op or multiplier (the multiplier is loaded)."""
    base, multiplier = split_op_name(name)
    if base not in OPS:
        raise OperationError(f"unknown op '{name}'; valid ops: {', '.join(PRIMITIVES)} "
                             f"(approximate variants: '<conv op>@<multiplier>')")
    if multiplier is not None and base not in CONV_PRIMITIVES:
        raise OperationError(f"op '{name}': only conv ops ({', '.join(CONV_PRIMITIVES)}) "
                             f"run on a multiplier")
    conv_factory(multiplier, lut_dir)


def candidate_ops(primitives: Iterable[str] = PRIMITIVES, multipliers: Iterable[str] = (),
                  lut_dir=None) -> list[str]:
    """The candidate set: the primitives plus `<conv primitive>@<m>` for each multiplier.

    Every name is checked (multipliers are loaded, so a bad name or table fails here,
    before any run directory is written).
    """
    primitives = list(primitives)
    candidates = primitives + [f"{p}@{m}" for m in multipliers
                               for p in primitives if p in CONV_PRIMITIVES]
    for name in candidates:
        check_op_name(name, lut_dir)
    if len(set(candidates)) != len(candidates):
        raise OperationError(f"duplicate candidate ops in {candidates}")
    return candidates
