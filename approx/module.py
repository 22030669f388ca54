"""ApproxConv2d: an nn.Conv2d whose products come from an approximate multiplier."""

from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from approx.conv import approx_conv2d, check_mode
from approx.multiplier import Multiplier
from approx.registry import load_multiplier


class ApproxConv2d(nn.Conv2d):
    """nn.Conv2d (cost counters see a Conv2d) emulating `multiplier`, mode 'lowrank'/'exact'."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=False, *, multiplier: str | Multiplier, mode: str = "lowrank",
                 rank: int | None = None, lut_dir: str | Path | None = None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias)
        self.multiplier = load_multiplier(multiplier, lut_dir=lut_dir)
        self.mode = check_mode(mode)
        self.rank = rank

    _float_forward = False  # set by `float_forward()`: shapes only, e.g. for cost profiling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if ApproxConv2d._float_forward:
            return super().forward(x)
        return approx_conv2d(x, self.weight, self.multiplier, self.bias, self.stride,
                             self.padding, self.dilation, self.groups, self.mode, self.rank)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, multiplier={self.multiplier.name}, mode={self.mode}"


def set_emulation_mode(model: nn.Module, mode: str) -> int:
    """Switch every ApproxConv2d in `model` to `mode`; returns how many were switched."""
    check_mode(mode)
    layers = [m for m in model.modules() if isinstance(m, ApproxConv2d)]
    for layer in layers:
        layer.mode = mode
    return len(layers)


def set_emulation_rank(model: nn.Module, rank: int | None) -> int:
    """Set the low-rank mode's rank of every ApproxConv2d in `model` (None: the multiplier's
    default); returns how many were set. A small rank is a cheaper search-time surrogate."""
    layers = [m for m in model.modules() if isinstance(m, ApproxConv2d)]
    for layer in layers:
        layer.rank = rank
    return len(layers)


@contextmanager
def float_forward():
    """Within this block every ApproxConv2d runs as a plain float nn.Conv2d: same shapes and
    attributes (cost counters read those), none of the emulation's cost. Not for training."""
    previous = ApproxConv2d._float_forward
    ApproxConv2d._float_forward = True
    try:
        yield
    finally:
        ApproxConv2d._float_forward = previous
