"""A softmax-weighted mixture of multipliers as one emulated convolution (shared weights).

The emulated output is linear in the truth table, so sum_m w_m emul_m(x, W) over the 8-bit
members is one emulation with the mixed table sum_m w_m LUT_m. In mode 'lowrank' that table's
error is the concatenation of the members' low-rank factors, each member's weight-side factors
scaled by w_m, and the exact-product term is shared: 1 + sum of member ranks convolutions in
all, not one full op per multiplier (exact members have rank 0). Mode 'exact' runs the existing
LUT kernel on the mixed table. The member "float" adds w_float * conv(x, W) of the unquantised
operands. Gradients: w.r.t. the mixture weights exact (d out / d w_m = emul_m(x, W), low-rank
in mode 'lowrank'); w.r.t. x and W straight-through, the members' STE gradients weighted.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from approx.conv import (
    check_mode,
    emulation_scope,
    float_table,
    scale_tensor,
    shared_codes_of,
    shared_terms_of,
)
from approx.exact_kernel import exact_lut_conv
from approx.geometry import Geometry
from approx.lowrank import resolve_rank, surrogate_rank
from approx.lowrank_conv import activation_terms, term_convs, terms_from_table, weight_table
from approx.module import EmulatedConv2d
from approx.multiplier import Multiplier
from approx.quantize import quantize_activations, quantize_weights
from approx.registry import load_multiplier
from convgrad import conv2d_backward

FLOAT = "float"


class MultiplierMixture:
    """Members (multiplier specs, or "float") and their current weights, shared by the convs
    of one mixed op. Set `weights` (1-D, one per member, e.g. a softmax; differentiable)
    before each forward; None means uniform."""

    def __init__(self, specs: Sequence[str | Multiplier], lut_dir: str | Path | None = None):
        if not specs:
            raise ValueError("a multiplier mixture needs at least one member")
        multipliers = [None if spec == FLOAT else load_multiplier(spec, lut_dir=lut_dir)
                       for spec in specs]
        self.multipliers: tuple[Multiplier | None, ...] = tuple(multipliers)
        self.names = tuple(FLOAT if m is None else m.name for m in multipliers)
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
        """`weights`, checked (uniform when None)."""
        if self.weights is None:
            return torch.full((len(self.names),), 1 / len(self.names), device=device)
        if tuple(self.weights.shape) != (len(self.names),):
            raise ValueError(f"mixture weights of shape {tuple(self.weights.shape)}, need "
                             f"({len(self.names)},): one per member of {list(self.names)}")
        return self.weights

    def plan(self, rank_cap: int | None, truncate_low_rank: bool = False) -> "MixturePlan":
        """The members' ranks and the mixed factor tables for a rank cap (cached)."""
        key = (rank_cap, truncate_low_rank)
        if key not in self._plans:
            self._plans[key] = MixturePlan.of(self, rank_cap, truncate_low_rank)
        return self._plans[key]

    def __repr__(self) -> str:
        return f"MultiplierMixture({', '.join(self.names)})"


@dataclass(frozen=True, eq=False)
class MixturePlan:
    """8-bit members (position in the mixture, multiplier, rank), the float member's position,
    and, per device, the concatenated weight-side factor table and index tensors."""

    signed: bool
    members: tuple[tuple[int, Multiplier, int], ...]
    float_index: int | None
    size: int
    _device_cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, mixture: MultiplierMixture, rank_cap, truncate_low_rank) -> "MixturePlan":
        members = tuple(
            (i, m, resolve_rank(m, None) if rank_cap is None
             else surrogate_rank(m, rank_cap, truncate_low_rank))
            for i, m in enumerate(mixture.multipliers) if m is not None)
        floats = [i for i, m in enumerate(mixture.multipliers) if m is None]
        return cls(mixture.signed, members, floats[0] if floats else None, len(mixture.names))

    @property
    def eight_bit(self) -> list[int]:
        return [i for i, _, _ in self.members]

    def tables(self, device: torch.device) -> dict:
        """Cached per device: weight table [value(b), V_m1(b)...], column -> member index,
        8-bit member indices, and the stacked float LUTs (exact mode)."""
        if device not in self._device_cache:
            columns = [weight_table(m, r, device, torch.float32)[:, 1:] for _, m, r in self.members]
            values = weight_table(self.members[0][1], 0, device, torch.float32)
            term_member = [i for i, _, r in self.members for _ in range(r)]
            self._device_cache[device] = {
                "weight_table": torch.cat([values, *columns], dim=1).contiguous(),
                "term_member": torch.tensor(term_member, dtype=torch.long, device=device),
                "eight_bit": torch.tensor(self.eight_bit, dtype=torch.long, device=device),
                "luts": torch.stack([float_table(m, device) for _, m, _ in self.members]),
            }
        return self._device_cache[device]

    def column_weights(self, mix: torch.Tensor, tables: dict) -> torch.Tensor:
        """Weight of each weight-table column: the total 8-bit weight, then w_m per term."""
        total = mix.index_select(0, tables["eight_bit"]).sum().view(1)
        return torch.cat([total, mix.index_select(0, tables["term_member"])])

    def member_terms(self, x, xq, x_scale) -> list[torch.Tensor]:
        """Every member's activation terms, concatenated (each shared across convs)."""
        return [t for _, m, r in self.members for t in shared_terms_of(x, xq, m, r, x_scale)]


def eight_bit_forward(x, weight, xq, wq, mix, plan: MixturePlan, geometry, mode, x_scale):
    tables = plan.tables(x.device)
    if mode == "exact":
        lut = torch.tensordot(mix.index_select(0, tables["eight_bit"]), tables["luts"], 1)
        return exact_lut_conv(lut, xq, wq, weight, geometry)
    w_terms = terms_from_table(wq, tables["weight_table"], xq.scale,
                               plan.column_weights(mix, tables))
    return term_convs(xq.value, plan.member_terms(x, xq, x_scale), w_terms, geometry)


def mixed_forward(x, weight, mix, plan: MixturePlan, geometry: Geometry, mode, x_scale):
    """(output without bias, activation scale, bfloat16 codes, dequantised weight)."""
    x32, w32 = x.float(), weight.float()
    xq, codes = shared_codes_of(x, plan.signed, x_scale)
    wq = quantize_weights(w32, plan.signed)
    if plan.members:
        out = eight_bit_forward(x, weight, xq, wq, mix, plan, geometry, mode, x_scale)
    else:
        out = torch.zeros((), device=x.device)
    if plan.float_index is not None:
        out = out + F.conv2d(x32, w32, **geometry.conv_kwargs()) * mix[plan.float_index]
    return out.to(x.dtype), xq.scale, codes, wq.dequantized().to(weight.dtype)


def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.mul(a, b).sum(dtype=torch.float64)


def member_dots(grad, x, weight, x_scale, plan: MixturePlan, geometry, mode) -> torch.Tensor:
    """<grad, emul_m(x, W)> for every member m: the exact gradient w.r.t. the mixture weights."""
    grad = grad.float()
    dots = torch.zeros(plan.size, dtype=torch.float64, device=grad.device)
    if plan.float_index is not None:
        plain = F.conv2d(x.float(), weight.float(), **geometry.conv_kwargs())
        dots[plan.float_index] = dot(grad, plain)
    if not plan.members:
        return dots
    xq = quantize_activations(x.float(), plan.signed, x_scale)
    wq = quantize_weights(weight.float(), plan.signed)
    if mode == "exact":
        for i, m, _ in plan.members:
            dots[i] = dot(grad, exact_lut_conv(float_table(m, x.device), xq, wq, weight, geometry))
        return dots
    tables = plan.tables(x.device)
    w_terms = terms_from_table(wq, tables["weight_table"], xq.scale)
    kwargs = geometry.conv_kwargs()
    dots[tables["eight_bit"]] += dot(grad, F.conv2d(xq.value, w_terms[0], **kwargs))
    column = 1
    for i, m, r in plan.members:
        for x_term in activation_terms(xq, m, r):
            dots[i] += dot(grad, F.conv2d(x_term, w_terms[column], **kwargs))
            column += 1
    return dots


class MixedConvFunction(torch.autograd.Function):
    """Mixed-table forward; exact mixture-weight gradient; straight-through x, W gradients."""

    @staticmethod
    def forward(ctx, x, weight, mix, plan, geometry, mode, x_scale):
        mix32 = mix.detach().float()
        with emulation_scope(x):
            out, used_scale, codes, w_deq = mixed_forward(x, weight, mix32, plan, geometry, mode,
                                                          x_scale)
        keep_inputs = plan.float_index is not None or ctx.needs_input_grad[2]
        ctx.save_for_backward(codes, used_scale, w_deq, mix32, x if keep_inputs else None,
                              weight if keep_inputs else None)
        ctx.plan, ctx.geometry, ctx.mode, ctx.x_dtype = plan, geometry, mode, x.dtype
        used_scale = used_scale.clone()  # an output of its own (a given scale is an input)
        ctx.mark_non_differentiable(used_scale)
        return out, used_scale

    @staticmethod
    def backward(ctx, grad_out, _grad_scale):
        codes, scale, w_deq, mix, x, weight = ctx.saved_tensors
        plan, g = ctx.plan, ctx.geometry
        need_x, need_w, need_mix = ctx.needs_input_grad[:3]
        total = mix[plan.eight_bit].sum() if plan.members else mix.new_zeros(())
        x_eff = (codes.float() * scale).to(ctx.x_dtype)
        w_eff = w_deq * total.to(w_deq.dtype)
        if plan.float_index is not None:  # the float member's own STE: its float conv
            share = mix[plan.float_index]
            w_eff = w_eff + weight * share.to(weight.dtype)
            if need_w:
                x_eff = x_eff * total.to(x_eff.dtype) + x * share.to(x.dtype)
        grad_x = grad_w = grad_mix = None
        if need_x or need_w:
            grad_x, grad_w = conv2d_backward(grad_out, x_eff, w_eff, g.stride, g.padding,
                                             g.dilation, g.groups, need_x=need_x, need_w=need_w)
            if need_w and plan.float_index is None:
                grad_w = grad_w * total.to(grad_w.dtype)
        if need_mix:
            grad_mix = member_dots(grad_out, x, weight, scale, plan, g, ctx.mode)
        return grad_x, grad_w, grad_mix, None, None, None, None


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
    approx.lowrank.surrogate_rank does (None: each member's default rank); the bias is added
    once (the weights are a distribution)."""
    return mixed_approx_conv2d_scaled(x, weight, mixture, weights, bias, stride, padding,
                                      dilation, groups, mode, rank, x_scale)[0]


class MixedApproxConv2d(EmulatedConv2d):
    """nn.Conv2d with one weight emulated on a mixture of multipliers (`mixture.weights`)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=False, *, mixture: MultiplierMixture, mode: str = "lowrank",
                 rank: int | None = None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, mode=mode, rank=rank)
        self.mixture = mixture
        self.truncate_low_rank = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if EmulatedConv2d._float_forward:
            return super().forward(x)
        signed = self.mixture.signed
        out, x_scale = mixed_approx_conv2d_scaled(
            x, self.weight, self.mixture, None, self.bias, self.stride, self.padding,
            self.dilation, self.groups, self.mode, self.rank, self.calibrated_scale(signed),
            self.truncate_low_rank)
        self.observe(x_scale, signed)
        return out

    def set_rank_cap(self, cap: int | None, truncate_low_rank: bool = False) -> None:
        self.rank, self.truncate_low_rank = cap, truncate_low_rank

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mixture={list(self.mixture.names)}, mode={self.mode}"

