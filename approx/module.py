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

Each conv holds its own `approx.settings.Emulation` (mode, rank cap), given at construction;
`emulating(model, ...)` changes the convs of one model, and of no other, within a block.
"""

from contextlib import contextmanager

import torch
from torch import nn

from approx.conv import approx_conv2d_scaled
from approx.multiplier import Multiplier
from approx.quantize import levels
from approx.settings import DEFAULT_EMULATION, FLOAT_MODE, Emulation
from approx.surrogate import surrogate_rank
from kernels.lean import LeanSwitch, float_conv_forward

OBSERVER_MOMENTUM = 0.1


class EmulatedConv2d(LeanSwitch, nn.Conv2d):
    """The common part of emulated convs: their Emulation settings (mode, rank), the act_max
    observer, and the float mode (nn.Conv2d's values; a depthwise conv's gradients from
    kernels.convgrad while `lean`, see kernels.lean.float_conv_forward)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=False, *, emulation: Emulation = DEFAULT_EMULATION):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias)
        self.register_buffer("act_max", torch.zeros(()))
        self.emulation = emulation
        self.rank: int | None = None

    @property
    def mode(self) -> str:
        return self.emulation.mode

    def configure(self, emulation: Emulation) -> None:
        """Run with `emulation`'s mode and rank cap from now on (the multipliers were resolved
        in its library at construction)."""
        self.emulation = emulation
        self.rank = self.rank_for(emulation)

    def rank_for(self, emulation: Emulation) -> int | None:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.emulation.mode == FLOAT_MODE:
            return float_conv_forward(self, x)
        return self.emulated_forward(x)

    def emulated_forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

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
    """nn.Conv2d (cost counters see a Conv2d) emulating `multiplier` (a spec resolved in
    `emulation.lut_dir`, or a Multiplier) as `emulation` says."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=False, *, multiplier: str | Multiplier,
                 emulation: Emulation = DEFAULT_EMULATION):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, emulation=emulation)
        self.multiplier = emulation.multiplier(multiplier)
        self.configure(emulation)

    def rank_for(self, emulation: Emulation) -> int | None:
        """None (the multiplier's own rank) or the surrogate rank of the search's rank policy."""
        if emulation.rank_cap is None:
            return None
        return surrogate_rank(self.multiplier, emulation.rank_cap, emulation.truncate_low_rank)

    def emulated_forward(self, x: torch.Tensor) -> torch.Tensor:
        signed = self.multiplier.signed
        out, x_scale = approx_conv2d_scaled(
            x, self.weight, self.multiplier, self.bias, self.stride, self.padding, self.dilation,
            self.groups, self.mode, self.rank, self.calibrated_scale(signed))
        self.observe(x_scale, signed)
        return out

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, multiplier={self.multiplier.name}, mode={self.mode}"


def emulated_convs(model: nn.Module) -> list[EmulatedConv2d]:
    return [m for m in model.modules() if isinstance(m, EmulatedConv2d)]


@contextmanager
def emulating(model: nn.Module, *, multiplier: str | Multiplier | None = None, **changes):
    """Within this block the emulated convs of `model`, and of no other model, run with their
    settings changed by `changes` (Emulation fields: `mode`, `rank_cap`, `truncate_low_rank`)
    and, given `multiplier`, every ApproxConv2d on that multiplier instead of its own; each is
    restored on exit. The one way to change emulation after build: a retrain's final
    evaluation on the exact tables and in exact int8, the fidelity benchmark's three
    emulations. Yields the number of convs switched."""
    if "lut_dir" in changes:
        raise ValueError("emulating(): the library (lut_dir) is read at construction")
    layers = emulated_convs(model)
    saved = [(layer.emulation, getattr(layer, "multiplier", None)) for layer in layers]
    try:
        for layer in layers:
            settings = layer.emulation.replace(**changes)
            if multiplier is not None and isinstance(layer, ApproxConv2d):
                layer.multiplier = settings.multiplier(multiplier)
            layer.configure(settings)
        yield len(layers)
    finally:
        for layer, (settings, own_multiplier) in zip(layers, saved, strict=True):
            if own_multiplier is not None:
                layer.multiplier = own_multiplier
            layer.configure(settings)


class EmulatedNetwork:
    """Mixin of the networks (discrete, supernet, backbones). `emulation`: the settings the
    network was built with; `with net.emulating(mode="exact"): ...` switches its convs."""

    emulation: Emulation = DEFAULT_EMULATION

    @contextmanager
    def emulating(self, *, multiplier: str | Multiplier | None = None, **changes):
        """`approx.module.emulating(self, ...)`: this network's convs only, within a block
        (`self.emulation` shows the changed settings meanwhile)."""
        built_with = self.emulation
        with emulating(self, multiplier=multiplier, **changes) as count:
            self.emulation = built_with.replace(**changes)
            try:
                yield count
            finally:
                self.emulation = built_with
