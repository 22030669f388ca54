"""ApproxConv2d: an nn.Conv2d whose products come from an approximate multiplier.

Every emulated conv (ApproxConv2d, approx.mixed.MixedApproxConv2d) derives from EmulatedConv2d,
which holds the emulation mode, the rank and the activation-scale observer: buffer `act_max`,
an exponential moving average (momentum OBSERVER_MOMENTUM) of the batch's max|x|, updated in
training mode and frozen in eval mode, where it gives the calibrated scale act_max / levels, so
an evaluated prediction never depends on the rest of its batch. An EMA rather than a running
max: activations shrink or grow as the weights train, and a running max would keep the early
training peak (a coarser scale) for good; momentum 0.1 is BatchNorm's, so the observer settles
over the same steps as the running statistics it is evaluated with. Training itself quantises
with the batch's own max (the contract's scale, shared by every conv reading the tensor).
"""

from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from approx.conv import approx_conv2d_scaled, check_mode
from approx.lowrank import surrogate_rank
from approx.multiplier import Multiplier
from approx.quantize import levels
from approx.registry import load_multiplier

OBSERVER_MOMENTUM = 0.1


class EmulatedConv2d(nn.Conv2d):
    """The common part of emulated convs: mode, rank, the act_max observer, float_forward."""

    _float_forward = False  # set by `float_forward()`: shapes only, e.g. for cost profiling

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=False, *, mode: str = "lowrank", rank: int | None = None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias)
        self.mode = check_mode(mode)
        self.rank = rank
        self.register_buffer("act_max", torch.zeros(()))

    def calibrated_scale(self, signed: bool) -> torch.Tensor | None:
        """The frozen activation scale in eval mode; None (the batch's max|x|) in training and
        while the observer has seen nothing (act_max 0, e.g. a never-trained layer)."""
        if self.training or not bool(self.act_max > 0):
            return None
        return self.act_max / levels(signed)

    def observe(self, x_scale: torch.Tensor, signed: bool) -> None:
        """Fold the scale a training forward used into act_max (the first one initialises it)."""
        if not self.training:
            return
        with torch.no_grad():
            peak = x_scale.to(self.act_max.dtype) * levels(signed)
            blended = torch.lerp(self.act_max, peak, OBSERVER_MOMENTUM)
            self.act_max.copy_(torch.where(self.act_max > 0, blended, peak))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        key = prefix + "act_max"
        if key in missing_keys:  # a checkpoint from before the observer: unset (batch scale)
            missing_keys.remove(key)
            self.act_max.zero_()


class ApproxConv2d(EmulatedConv2d):
    """nn.Conv2d (cost counters see a Conv2d) emulating `multiplier`, mode 'lowrank'/'exact'."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=False, *, multiplier: str | Multiplier, mode: str = "lowrank",
                 rank: int | None = None, lut_dir: str | Path | None = None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, mode=mode, rank=rank)
        self.multiplier = load_multiplier(multiplier, lut_dir=lut_dir)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if EmulatedConv2d._float_forward:
            return super().forward(x)
        signed = self.multiplier.signed
        out, x_scale = approx_conv2d_scaled(
            x, self.weight, self.multiplier, self.bias, self.stride, self.padding, self.dilation,
            self.groups, self.mode, self.rank, self.calibrated_scale(signed))
        self.observe(x_scale, signed)
        return out

    def set_rank_cap(self, cap: int | None, truncate_low_rank: bool = False) -> None:
        self.rank = None if cap is None else surrogate_rank(self.multiplier, cap,
                                                            truncate_low_rank)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, multiplier={self.multiplier.name}, mode={self.mode}"


def emulated_convs(model: nn.Module) -> list[EmulatedConv2d]:
    return [m for m in model.modules() if isinstance(m, EmulatedConv2d)]


def set_emulation_mode(model: nn.Module, mode: str) -> int:
    """Switch every emulated conv in `model` to `mode`; returns how many were switched."""
    check_mode(mode)
    layers = emulated_convs(model)
    for layer in layers:
        layer.mode = mode
    return len(layers)


def cap_emulation_rank(model: nn.Module, cap: int | None, truncate_low_rank: bool = False) -> int:
    """Limit the low-rank mode of every emulated conv in `model` to `cap` terms (None: each
    multiplier's own rank); returns how many were set. The cap is a cheaper search-time
    surrogate for multipliers whose error is not exactly low-rank (EvoApproxLib tables,
    Mitchell); designs of true rank <= approx.lowrank.MAX_RANK (truncation, BAM, DRUM,
    Kulkarni) keep their true rank, so stay exactly emulated, unless `truncate_low_rank`."""
    if cap is not None and cap < 0:
        raise ValueError(f"approximate-conv rank cap {cap} must be >= 0 (-1 on the command line: "
                         f"no cap)")
    layers = emulated_convs(model)
    for layer in layers:
        layer.set_rank_cap(cap, truncate_low_rank)
    return len(layers)


@contextmanager
def float_forward():
    """Within this block every emulated conv runs as a plain float nn.Conv2d: same shapes and
    attributes (cost counters read those), none of the emulation's cost. Not for training."""
    previous = EmulatedConv2d._float_forward
    EmulatedConv2d._float_forward = True
    try:
        yield
    finally:
        EmulatedConv2d._float_forward = previous
