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

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from approx.conv import (
    check_mode,
    emulation_scope,
    float_table,
    scale_key,
    scale_tensor,
    shared_codes_of,
)
from approx.exact_kernel import exact_lut_conv
from approx.geometry import Geometry
from approx.lowrank import resolve_rank, surrogate_rank
from approx.lowrank_conv import table_terms, term_convs
from approx.mixed_tables import Members, factor_basis, mixed_tables
from approx.module import EmulatedConv2d
from approx.multiplier import Multiplier
from approx.quantize import Quantized, quantize_activations, quantize_weights
from approx.registry import load_multiplier
from approx.sharing import cached
from convgrad import conv2d_backward

FLOAT = "float"


class MultiplierMixture:
    """Members (multiplier specs, or "float") and their current weights, shared by the convs
    of one mixed op. Set `weights` (1-D, one per member, e.g. a softmax; differentiable)
    before each forward; None means uniform. `names` are the multipliers' names, `specs` the
    specs as given (e.g. 'my_mul.bin:0.21'), `multipliers` None for "float"."""

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
    """8-bit members (position in the mixture, multiplier, rank) and the float member's
    position; per device, the mixed tables (approx.mixed_tables) and index tensors."""

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
    def convolutions(self) -> int:
        """Float convolutions per forward in mode 'lowrank' (1 + R'; +1 with "float")."""
        terms = 1 + factor_basis(self.ranked, self.signed)[0].shape[1] if self.members else 0
        return terms + (self.float_index is not None)

    @property
    def ranked(self) -> Members:
        return tuple((m, r) for _, m, r in self.members)

    def tables(self, device: torch.device) -> dict:
        """mixed_tables plus the 8-bit members' positions and stacked float LUTs (exact mode)."""
        if device not in self._device_cache:
            positions = torch.tensor([i for i, _, _ in self.members], dtype=torch.long,
                                     device=device)
            tables = {"eight_bit": positions}
            if self.members:
                tables.update(mixed_tables(self.ranked, self.signed, device))
                tables["luts"] = torch.stack([float_table(m, device) for _, m, _ in self.members])
            self._device_cache[device] = tables
        return self._device_cache[device]


def coded_weight_terms(wq, tables: dict, x_scale) -> torch.Tensor:
    """(O, C/groups, kh, kw, 1 + R', members): s_x s_w T_mj(sign(w) b)."""
    coded = F.embedding(wq.sign_index(), tables["weight"])
    coded = coded.unflatten(-1, (tables["terms"], -1))
    return coded * (wq.scale * x_scale).unsqueeze(-1).unsqueeze(-1)


def mixed_weight_terms(wq, tables: dict, x_scale, mix8: torch.Tensor) -> torch.Tensor:
    """(1 + R', O, C/groups, kh, kw): the basis terms' weights B_j = sum_m w_m T_mj."""
    coded = F.embedding(wq.sign_index(), tables["weight"])
    mixed = coded.unflatten(-1, (tables["terms"], -1)) @ mix8
    terms = mixed * (wq.scale * x_scale).unsqueeze(-1)
    return terms.permute(4, 0, 1, 2, 3).contiguous()


def basis_terms(x, xq, plan: MixturePlan, x_scale) -> list[torch.Tensor]:
    """[sign(x) a, sign(x) Q_1(a), ...], shared across convs reading x with the same members."""
    tables = plan.tables(x.device)
    terms = cached(x, ("basis terms", plan.ranked, scale_key(x_scale)),
                   lambda: table_terms(xq, tables["activation"], tables["zero_sign"]))
    return [xq.value, *terms]


def eight_bit_forward(x, weight, xq, wq, mix, plan: MixturePlan, geometry, mode, x_scale):
    tables = plan.tables(x.device)
    mix8 = mix.index_select(0, tables["eight_bit"])
    if mode == "exact":
        lut = torch.tensordot(mix8, tables["luts"], 1)
        return exact_lut_conv(lut, xq, wq, weight, geometry)
    x_terms = basis_terms(x, xq, plan, x_scale)
    w_terms = mixed_weight_terms(wq, tables, xq.scale, mix8)
    return term_convs(x_terms[0], x_terms[1:], w_terms, geometry)


def mixed_forward(x, weight, mix, plan: MixturePlan, geometry: Geometry, mode, x_scale):
    """(output without bias, activation scale, bfloat16 codes, dequantised weight)."""
    xq, codes = shared_codes_of(x, plan.signed, x_scale)
    wq = quantize_weights(weight.float(), plan.signed)
    if plan.members:
        out = eight_bit_forward(x, weight, xq, wq, mix, plan, geometry, mode, x_scale)
    else:
        out = torch.zeros((), device=x.device)
    if plan.float_index is not None:
        plain = F.conv2d(x.float(), weight.float(), **geometry.conv_kwargs())
        out = out + plain * mix[plan.float_index]
    return out.to(x.dtype), xq.scale, codes, wq.dequantized().to(weight.dtype)


def flat(t: torch.Tensor) -> torch.Tensor | None:
    """A 1-D view in memory order (NCHW or channels-last), else None."""
    if t.is_contiguous():
        return t.view(-1)
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return t.permute(0, 2, 3, 1).reshape(-1)
    return None


def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum(a * b) without a product tensor when both share a memory order."""
    fa, fb = flat(a), flat(b)
    same_order = fa is not None and fb is not None and a.stride() == b.stride()
    return torch.dot(fa, fb) if same_order else torch.mul(a, b).sum()


def member_dots(grad, xq: Quantized, x, weight, plan: MixturePlan, geometry,
                mode) -> torch.Tensor:
    """<grad, emul_m(x, W)> for every member m: the exact gradient w.r.t. the mixture weights.
    Low-rank: <grad, conv(X_j, K)> = <K, dW_j> with dW_j the weight gradient of basis term j,
    so 1 + R' weight gradients serve every member."""
    grad = grad.float()
    dots = torch.zeros(plan.size, device=grad.device)
    if plan.float_index is not None:
        plain = F.conv2d(x.float(), weight.float(), **geometry.conv_kwargs())
        dots[plan.float_index] = dot(grad, plain)
    if not plan.members:
        return dots
    wq = quantize_weights(weight.float(), plan.signed)
    tables = plan.tables(grad.device)
    if mode == "exact":
        for slot, (i, _, _) in enumerate(plan.members):
            member = exact_lut_conv(tables["luts"][slot], xq, wq, weight, geometry)
            dots[i] = dot(grad, member)
        return dots
    g = geometry
    weight_grads = torch.stack([
        conv2d_backward(grad, x_term, weight.float(), g.stride, g.padding, g.dilation, g.groups,
                        need_x=False, need_w=True)[1]
        for x_term in [xq.value, *table_terms(xq, tables["activation"], tables["zero_sign"])]
    ])  # (1 + R', O, C/groups, kh, kw)
    coded = coded_weight_terms(wq, tables, xq.scale)  # (O, C/groups, kh, kw, 1 + R', members)
    member_dots8 = torch.einsum("ocyxjm,jocyx->m", coded, weight_grads)
    return dots.index_copy_(0, tables["eight_bit"], member_dots8)


def needs_source(plan: MixturePlan, mode: str, x: torch.Tensor) -> bool:
    """Whether the codes alone cannot rebuild the activation terms: exact mode (sign-magnitude
    tables read sign(x)) or tables whose code 0 keeps the sign of x."""
    return bool(plan.members) and (mode == "exact" or plan.tables(x.device)["zero_sign"])


def saved_activation(codes, scale, x, signed: bool) -> Quantized:
    """The forward's activation codes again: from x when it was kept, else from the codes."""
    if x is not None:
        return quantize_activations(x.float(), signed, scale)
    value = codes.float()
    return Quantized(value, value, scale, signed)


class MixedConvFunction(torch.autograd.Function):
    """Mixed-table forward; exact mixture-weight gradient; straight-through x, W gradients."""

    @staticmethod
    def forward(ctx, x, weight, mix, plan, geometry, mode, x_scale):
        mix32 = mix.detach().float()
        with emulation_scope(x):
            out, used_scale, codes, w_deq = mixed_forward(x, weight, mix32, plan, geometry, mode,
                                                          x_scale)
        need_mix = ctx.needs_input_grad[2]
        keep_x = plan.float_index is not None or (need_mix and needs_source(plan, mode, x))
        ctx.save_for_backward(codes, used_scale, w_deq, mix32, x if keep_x else None,
                              weight if keep_x or need_mix else None)
        ctx.plan, ctx.geometry, ctx.mode, ctx.x_dtype = plan, geometry, mode, x.dtype
        ctx.mix_dtype = mix.dtype
        used_scale = used_scale.clone()  # an output of its own (a given scale is an input)
        ctx.mark_non_differentiable(used_scale)
        return out, used_scale

    @staticmethod
    def backward(ctx, grad_out, _grad_scale):
        codes, scale, w_deq, mix, x, weight = ctx.saved_tensors
        plan, g = ctx.plan, ctx.geometry
        need_x, need_w, need_mix = ctx.needs_input_grad[:3]
        total = mix.index_select(0, plan.tables(mix.device)["eight_bit"]).sum()
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
            xq = saved_activation(codes, scale, x, plan.signed)
            grad_mix = member_dots(grad_out, xq, x, weight, plan, g, ctx.mode)
            grad_mix = grad_mix.to(ctx.mix_dtype)
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
    """nn.Conv2d with one weight emulated on a mixture of multipliers (`mixture.weights`).

    `rank`: None (each member's default rank) or a search-time cap, applied per member as
    approx.lowrank.surrogate_rank does (exactly low-rank members keep their rank unless
    `truncate_low_rank`); cap_emulation_rank sets both."""

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

