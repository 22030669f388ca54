"""The candidate ops of a supernet edge, as the search runs them.

`build_candidate` takes an op from the registry (`operations.OPS` / `build_op`) with
non-affine BatchNorms (DARTS); in the factorised space a conv op's convolutions mix the
multiplier set (`approx.MultiplierMixture`, its weights set per forward by the MixedOp); pooling
ops are followed by a non-affine BatchNorm (DARTS's search cell), and average pooling runs as
`ConvAvgPool2d`. The discrete networks (model.py) build their ops from the registry directly.
"""

from __future__ import annotations

import functools

import torch
import torch.nn as nn
import torch.nn.functional as F

from approx import MixedApproxConv2d, MultiplierMixture
from approx.settings import Emulation
from genotypes import split_op_name
from operations import OPS, build_op
from search.space import SearchSpace


def build_candidate(name, C, stride, space: SearchSpace, emulation: Emulation):
    """The op `name` on one edge, and its MultiplierMixture when its convs mix multipliers;
    its emulated convs run as `emulation` says."""
    mixture = None
    if name in space.conv_ops:
        mixture = MultiplierMixture(space.multipliers, lut_dir=emulation.lut_dir)
        op = OPS[name](C, stride, False, functools.partial(MixedApproxConv2d, mixture=mixture,
                                                           emulation=emulation))
    else:
        op = build_op(name, C, stride, affine=False, emulation=emulation)
    if isinstance(op, nn.AvgPool2d):
        op = ConvAvgPool2d(op.kernel_size, op.stride, op.padding)
    if "pool" in split_op_name(name)[0]:
        op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
    return op, mixture


class ConvAvgPool2d(nn.AvgPool2d):
    """avg_pool (count_include_pad=False) as a depthwise box-filter convolution divided by the
    count of real pixels: the same values up to float rounding, but oneDNN's depthwise
    convolution and its input gradient run ~10x faster than aten's avg_pool2d backward on the
    CPU (elsewhere aten's avg_pool2d runs)."""

    def __init__(self, kernel_size, stride, padding):
        super().__init__(kernel_size, stride, padding, count_include_pad=False)

    def forward(self, x):
        if x.device.type != "cpu":
            return super().forward(x)
        kernel = torch.ones(x.shape[1], 1, self.kernel_size, self.kernel_size,
                            device=x.device, dtype=x.dtype)
        sums = F.conv2d(x, kernel, stride=self.stride, padding=self.padding, groups=x.shape[1])
        counts = F.conv2d(torch.ones_like(x[:1, :1]), kernel[:1], stride=self.stride,
                          padding=self.padding)
        return sums / counts


