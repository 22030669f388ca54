"""The candidate ops of a supernet edge, as the search runs them.

`build_candidate` takes an op from the registry (`operations.OPS` / `build_op`) with
non-affine BatchNorms (DARTS); in the factorised space a conv op's convolutions mix the
multiplier set (`approx.MultiplierMixture`, weighted per forward by the MixedOp); pooling
ops are followed by a non-affine BatchNorm (DARTS's search cell), and average pooling runs as
`kernels.lean.ConvAvgPool2d`. The discrete networks (model.py) build their ops from the
registry directly.
"""

from __future__ import annotations

import functools

import torch.nn as nn

from approx import MixedApproxConv2d, MultiplierMixture
from approx.settings import Emulation
from genotypes import split_op_name
from kernels.lean import ConvAvgPool2d
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
        op = build_op(name, C, stride, affine=False, emulation=emulation,
                      fixed=space.fixed_base)
    if isinstance(op, nn.AvgPool2d):
        op = ConvAvgPool2d(op.kernel_size, op.stride, op.padding)
    if "pool" in split_op_name(name)[0]:
        op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
    return op, mixture
