"""The mixed-table emulated convolution: forward, exact mixture-weight gradient, STE backward.

Forward: 1 + R' float convolutions of the basis terms (approx.mixed_tables), shared across convs
reading the same tensor (approx.sharing), plus w_float * conv(x, W) for a "float" member.
Backward: x and W get the members' straight-through gradients, weighted (one conv backward of
the weighted dequantised operands); the mixture weights get <grad, emul_m(x, W)> per member,
from 1 + R' weight gradients of the basis terms (exact mode: one LUT sum per member).
"""

import torch
import torch.nn.functional as F

from approx.conv import emulation_scope, scale_key, shared_codes_of
from approx.exact_kernel import exact_lut_conv
from approx.geometry import Geometry
from approx.lowrank_conv import (
    stacked_terms,
    stacked_weight,
    table_terms,
    term_convs,
)
from approx.mixed_tables import MixturePlan
from approx.quantize import Quantized, quantize_activations, quantize_weights
from approx.sharing import cached
from kernels.convgrad import conv2d_backward, memory_format_of


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


def stacks_terms(x: torch.Tensor, weight: torch.Tensor, geometry: Geometry) -> bool:
    """A stride-1, ungrouped 1x1 conv of a channels-last map: its 1 + R' basis terms run as one
    conv over the stacked terms (approx.lowrank_conv.stacked_terms): one gather of whole table
    rows instead of R' gathers of single values, and one GEMM over C (1 + R') channels instead
    of 1 + R' small ones. Depthwise convs keep the per-term form (stacked as a grouped conv they
    ran 3x slower on oneDNN's AVX2 kernels). bench/mixed_conv_forms.py compares the two forms in
    the default search step."""
    return (tuple(weight.shape[2:]) == (1, 1) and geometry.groups == 1
            and geometry.stride == (1, 1) and memory_format_of(x) == torch.channels_last)


def stacked_basis_terms(x, xq, plan: MixturePlan, x_scale) -> torch.Tensor:
    """stacked_terms of x for the plan's basis, shared like basis_terms."""
    tables = plan.tables(x.device)
    return cached(x, ("stacked basis terms", plan.ranked, scale_key(x_scale)),
                  lambda: stacked_terms(xq, tables["stacked"], tables["zero_sign"]))


def eight_bit_forward(x, weight, xq, wq, mix, plan: MixturePlan, geometry, mode, x_scale):
    tables = plan.tables(x.device)
    mix8 = mix.index_select(0, tables["eight_bit"])
    if mode == "exact":
        lut = torch.tensordot(mix8, tables["luts"], 1)
        return exact_lut_conv(lut, xq, wq, weight, geometry)
    w_terms = mixed_weight_terms(wq, tables, xq.scale, mix8)
    if stacks_terms(x, weight, geometry):
        return F.conv2d(stacked_basis_terms(x, xq, plan, x_scale), stacked_weight(w_terms),
                        **geometry.conv_kwargs())
    x_terms = basis_terms(x, xq, plan, x_scale)
    return term_convs(x_terms[0], x_terms[1:], w_terms, geometry)


def running_members(mix: torch.Tensor, plan: MixturePlan) -> tuple[torch.Tensor, MixturePlan]:
    """(weights, plan) of the members a forward must run: all of them, or for a one-hot
    mixture (a sampled multiplier: exact zeros elsewhere) its member alone."""
    if mix.numel() == 1 or int(torch.count_nonzero(mix)) != 1:
        return mix, plan
    position = int(mix.abs().argmax())
    return mix[position:position + 1], plan.alone(position)


def mixed_forward(x, weight, mix, plan: MixturePlan, geometry: Geometry, mode, x_scale):
    """(output without bias, activation scale, bfloat16 codes, dequantised weight)."""
    xq, codes = shared_codes_of(x, plan.signed, x_scale)
    wq = quantize_weights(weight.float(), plan.signed)
    mix, plan = running_members(mix, plan)
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
    weight_grads = basis_weight_grads(grad, xq, weight, tables, geometry)
    # (1 + R', O, C/groups, kh, kw)
    coded = coded_weight_terms(wq, tables, xq.scale)  # (O, C/groups, kh, kw, 1 + R', members)
    member_dots8 = torch.einsum("ocyxjm,jocyx->m", coded, weight_grads)
    return dots.index_copy_(0, tables["eight_bit"], member_dots8)


def basis_weight_grads(grad, xq: Quantized, weight, tables: dict,
                       geometry: Geometry) -> torch.Tensor:
    """(1 + R', O, C/groups, kh, kw): the weight gradient of each basis term's convolution."""
    g = geometry
    if stacks_depthwise_gradients(xq.value, weight, geometry):
        return depthwise_basis_weight_grads(grad, xq, weight, tables, geometry)
    if stacks_terms(xq.value, weight, geometry):
        stacked = stacked_terms(xq, tables["stacked"], tables["zero_sign"])
        # the stacked weight's values do not enter its gradient: only its shape is needed
        stacked_weight_shape = weight.new_empty(weight.shape[0], stacked.shape[1], 1, 1,
                                                dtype=torch.float32)
        grads = conv2d_backward(grad, stacked, stacked_weight_shape, g.stride, g.padding,
                                g.dilation, g.groups, need_x=False, need_w=True)[1]
        return grads.view(weight.shape[0], weight.shape[1], -1, 1, 1).permute(2, 0, 1, 3, 4)
    return torch.stack([
        conv2d_backward(grad, x_term, weight.float(), g.stride, g.padding, g.dilation, g.groups,
                        need_x=False, need_w=True)[1]
        for x_term in [xq.value, *table_terms(xq, tables["activation"], tables["zero_sign"])]
    ])


def stacks_depthwise_gradients(x: torch.Tensor, weight: torch.Tensor,
                               geometry: Geometry) -> bool:
    """A depthwise conv (one filter per channel) of a channels-last map: its 1 + R' basis-term
    weight gradients come from one depthwise weight gradient over the stacked terms
    (`depthwise_basis_weight_grads`): one gather and one backward call instead of R' gathers
    and 1 + R' backward calls (the polyphase ones of a dilated kernel included)."""
    return (weight.shape[1] == 1 and geometry.groups == x.shape[1] == weight.shape[0]
            and memory_format_of(x) == torch.channels_last)


def depthwise_basis_weight_grads(grad, xq: Quantized, weight, tables: dict,
                                 geometry: Geometry) -> torch.Tensor:
    """(1 + R', C, 1, kh, kw) of a depthwise conv: the weight gradient of the depthwise conv of
    the stacked terms (C (1 + R') channels, channel c (1 + R') + t holding term t of channel c:
    approx.lowrank_conv.stacked_terms) against the output gradient repeated the same way."""
    g = geometry
    stacked = stacked_terms(xq, tables["stacked"], tables["zero_sign"])
    batch, channels, height, width = grad.shape
    terms = stacked.shape[1] // channels
    repeated = (grad.permute(0, 2, 3, 1).unsqueeze(-1)
                .expand(batch, height, width, channels, terms)
                .reshape(batch, height, width, channels * terms).permute(0, 3, 1, 2))
    # as in basis_weight_grads, only the weight's shape enters its gradient
    weight_shape = weight.new_empty(channels * terms, 1, *weight.shape[2:], dtype=torch.float32)
    grads = conv2d_backward(repeated, stacked, weight_shape, g.stride, g.padding, g.dilation,
                            channels * terms, need_x=False, need_w=True)[1]
    return grads.reshape(channels, terms, *weight.shape[1:]).transpose(0, 1)


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
        w_eff = w_deq * total.to(w_deq.dtype)
        # 8-bit STE weight gradient: s_x * total * dW(codes, grad), the codes converted once;
        # an input gradient alone (an alpha step) reads only x's shape and layout
        x_eff = (codes.to(grad_out.dtype) if need_w
                 else torch.empty_like(codes, dtype=grad_out.dtype))
        grad_w_factor = scale * total
        if plan.float_index is not None:  # the float member's own STE: its float conv
            share = mix[plan.float_index]
            w_eff = w_eff + weight * share.to(weight.dtype)
            if need_w:
                x_eff = (codes.float() * grad_w_factor + x.float() * share).to(ctx.x_dtype)
                grad_w_factor = None
        grad_x = grad_w = grad_mix = None
        if need_x or need_w:
            grad_x, grad_w = conv2d_backward(grad_out, x_eff, w_eff, g.stride, g.padding,
                                             g.dilation, g.groups, need_x=need_x, need_w=need_w)
            if grad_x is not None:
                grad_x = grad_x.to(ctx.x_dtype)
            if grad_w is not None and grad_w_factor is not None:
                grad_w = grad_w * grad_w_factor.to(grad_w.dtype)
        if need_mix:
            xq = saved_activation(codes, scale, x, plan.signed)
            grad_mix = member_dots(grad_out, xq, x, weight, plan, g, ctx.mode)
            grad_mix = grad_mix.to(ctx.mix_dtype)
        return grad_x, grad_w, grad_mix, None, None, None, None
