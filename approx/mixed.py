"""Stand-in (replaced by the mixed-table kernel): a conv on a softmax mixture of multipliers.

forward(x) = sum_m w_m * emulation_m(x, W) with one weight tensor W shared by all members;
`float` is a plain float32 conv. Reference semantics only: one emulation per member.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from approx.conv import approx_conv2d
from approx.registry import load_multiplier

FLOAT = "float"


class MultiplierMixture:
    """The members of a mixture and their current weights (set by the caller each forward)."""

    def __init__(self, names: Sequence[str], lut_dir=None):
        self.names = tuple(names)
        self.multipliers = tuple(None if name == FLOAT else load_multiplier(name, lut_dir=lut_dir)
                                 for name in self.names)
        self.weights: torch.Tensor | None = None


class MixedApproxConv2d(nn.Conv2d):
    def __init__(self, *args, mixture: MultiplierMixture, mode: str = "lowrank",
                 rank: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.mixture, self.mode, self.rank = mixture, mode, rank

    def forward(self, x):
        weights = self.mixture.weights
        out = None
        for w, multiplier in zip(weights, self.mixture.multipliers, strict=True):
            if multiplier is None:
                term = F.conv2d(x, self.weight, self.bias, self.stride, self.padding,
                                self.dilation, self.groups)
            else:
                term = approx_conv2d(x, self.weight, multiplier, self.bias, self.stride,
                                     self.padding, self.dilation, self.groups, self.mode,
                                     self.rank)
            out = term * w if out is None else out + term * w
        return out
