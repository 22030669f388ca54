"""ApproxConv2d: an nn.Conv2d whose products come from an approximate multiplier."""

from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from approx.conv import approx_conv2d, check_mode
from approx.lowrank import default_rank
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


def cap_emulation_rank(model: nn.Module, cap: int | None) -> int:
    """Limit the low-rank mode of every ApproxConv2d in `model` to `cap` terms (None: each
    multiplier's own rank); returns how many were set. A layer keeps its multiplier's rank
    when that is smaller, so designs of true rank <= cap (truncation, BAM, DRUM) stay
    exactly emulated: a cheaper search-time surrogate for the rest (EvoApproxLib tables)."""
    if cap is not None and cap < 0:
        raise ValueError(f"approximate-conv rank cap {cap} must be >= 0 (-1 on the command line: "
                         f"no cap)")
    layers = [m for m in model.modules() if isinstance(m, ApproxConv2d)]
    for layer in layers:
        layer.rank = None if cap is None else min(default_rank(layer.multiplier), cap)
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
