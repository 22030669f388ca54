"""A softmax-weighted mixture of multipliers as one emulated convolution (shared weights).

The emulated output is linear in the truth table, so sum_m w_m emul_m(x, W) over the 8-bit
members is one emulation with the mixed table sum_m w_m LUT_m. In mode 'lowrank' that table's
error is the concatenation of the members' low-rank factors, each member's weight-side factors
scaled by w_m, and the exact-product term is shared; the concatenated activation-side factors
are re-expressed in a basis of their span (approx.mixed_tables), so a mixture costs 1 + R'
convolutions, R' <= the sum of the member ranks, not one full op per multiplier (exact members
have rank 0 and cost nothing). Mode 'exact' runs the existing LUT kernel on the mixed table.
The member "float" adds w_float * conv(x, W) of the unquantised operands. Gradients: w.r.t. the
mixture weights exact (d out / d w_m = emul_m(x, W), low-rank in mode 'lowrank'); w.r.t. x and
W straight-through, the members' STE gradients weighted.
"""

from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import torch

from approx.conv import check_mode, scale_tensor
from approx.geometry import Geometry
from approx.mixed_conv import MixedConvFunction
from approx.mixed_tables import MixturePlan
from approx.module import EmulatedConv2d
from approx.multiplier import Multiplier
from approx.registry import load_multiplier
from approx.settings import DEFAULT_EMULATION, Emulation

FLOAT = "float"

# {id(mixture): weights} of the enclosing `weighted_mixtures` block (a supernet's forward)
_block_weights: ContextVar[Mapping | None] = ContextVar("mixture_weights", default=None)


@contextmanager
def weighted_mixtures(weights: Mapping["MultiplierMixture", torch.Tensor]):
    """Within this block each mixture of `weights` mixes its members with the given weights
    (the mixture objects are not changed: a supernet passes them per forward)."""
    token = _block_weights.set({id(mixture): w for mixture, w in weights.items()})
    try:
        yield
    finally:
        _block_weights.reset(token)


class MultiplierMixture:
    """Members (multiplier specs, or "float") and their current weights, shared by the convs
    of one mixed op. Its weights (1-D, one per member, e.g. a softmax; differentiable) are
    those of the enclosing `weighted_mixtures` block, else `weights` (None means uniform).
    `names` are the multipliers' names, `specs` the specs as given (e.g. 'my_mul.bin:0.21'),
    `multipliers` None for "float"."""

    def __init__(self, specs: Sequence[str | Multiplier], lut_dir: str | Path | None = None):
        if not specs:
            raise ValueError("a multiplier mixture needs at least one member")
        multipliers = [None if spec == FLOAT else load_multiplier(spec, lut_dir=lut_dir)
                       for spec in specs]
        self.multipliers: tuple[Multiplier | None, ...] = tuple(multipliers)
        self.names = tuple(FLOAT if m is None else m.name for m in multipliers)
        # the specs as given (a genotype's op@spec rebuilds the same table and power)
        self.specs = tuple(spec if isinstance(spec, str) else spec.name for spec in specs)
        kinds = {m.signed for m in multipliers if m is not None}
        if len(kinds) > 1:
            signed = [m.name for m in multipliers if m is not None and m.signed]
            unsigned = [m.name for m in multipliers if m is not None and not m.signed]
            raise ValueError(f"a multiplier mixture needs one signedness: signed {signed}, "
                             f"unsigned {unsigned}")
        self.signed = kinds == {True}
        self.weights: torch.Tensor | None = None
        self._plans: dict = {}

    def current_weights(self, device: torch.device) -> torch.Tensor:
        """The block's weights for this mixture, else `weights`, checked (uniform when None)."""
        block = _block_weights.get()
        weights = self.weights if block is None else block.get(id(self), self.weights)
        if weights is None:
            return torch.full((len(self.names),), 1 / len(self.names), device=device)
        if tuple(weights.shape) != (len(self.names),):
            raise ValueError(f"mixture weights of shape {tuple(weights.shape)}, need "
                             f"({len(self.names)},): one per member of {list(self.names)}")
        return weights

    def plan(self, rank_cap: int | str | None,
             truncate_low_rank: bool = False) -> "MixturePlan":
        """The members' ranks and the mixed factor tables for a rank policy (cached)."""
        key = (rank_cap, truncate_low_rank)
        if key not in self._plans:
            self._plans[key] = MixturePlan.of(self.multipliers, self.signed, rank_cap,
                                              truncate_low_rank)
        return self._plans[key]

    def __repr__(self) -> str:
        return f"MultiplierMixture({', '.join(self.names)})"


def mixed_approx_conv2d_scaled(x, weight, mixture: MultiplierMixture, weights=None, bias=None,
                               stride=1, padding=0, dilation=1, groups=1, mode="lowrank",
                               rank=None, x_scale=None, truncate_low_rank=False):
    """mixed_approx_conv2d and the activation scale s_x it used (observers read it)."""
    geometry = Geometry.of(stride, padding, dilation, groups)
    geometry.check(x, weight)
    if weights is None:
        weights = mixture.current_weights(x.device)
    plan = mixture.plan(rank, truncate_low_rank)
    out, used = MixedConvFunction.apply(x, weight, weights, plan, geometry, check_mode(mode),
                                        scale_tensor(x_scale, x))
    return (out if bias is None else out + bias.view(1, -1, 1, 1)), used


def mixed_approx_conv2d(x, weight, mixture: MultiplierMixture, weights=None, bias=None,
                        stride=1, padding=0, dilation=1, groups=1, mode="lowrank", rank=None,
                        x_scale=None):
    """sum_m weights[m] * approx_conv2d(x, weight, member m) (float: F.conv2d) as one emulation.

    `weights` defaults to `mixture.current_weights()`; `rank` caps each member's rank as
    approx.surrogate.surrogate_rank does (None: each member's default rank); the bias is added
    once (the weights are a distribution)."""
    return mixed_approx_conv2d_scaled(x, weight, mixture, weights, bias, stride, padding,
                                      dilation, groups, mode, rank, x_scale)[0]


class MixedApproxConv2d(EmulatedConv2d):
    """nn.Conv2d with one weight emulated on a mixture of multipliers (`mixture.weights`).

    `emulation.rank_cap`: None (each member's default rank) or a search-time rank policy, applied
    per member as approx.surrogate.surrogate_rank does (exactly low-rank members keep their rank
    unless `emulation.truncate_low_rank`)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=False, *, mixture: MultiplierMixture,
                 emulation: Emulation = DEFAULT_EMULATION):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, emulation=emulation)
        self.mixture = mixture
        self.configure(emulation)

    def rank_for(self, emulation: Emulation) -> int | None:
        return emulation.rank_cap

    def emulated_forward(self, x: torch.Tensor) -> torch.Tensor:
        signed = self.mixture.signed
        out, x_scale = mixed_approx_conv2d_scaled(
            x, self.weight, self.mixture, None, self.bias, self.stride, self.padding,
            self.dilation, self.groups, self.mode, self.rank, self.calibrated_scale(signed),
            self.emulation.truncate_low_rank)
        self.observe(x_scale, signed)
        return out

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mixture={list(self.mixture.names)}, mode={self.mode}"
