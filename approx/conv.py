"""Emulated approximate convolution: `approx_conv2d` (exact LUT sum or fast low-rank mode).

Forward follows the GUIDE contract: operands quantised to 8-bit codes, products taken from the
multiplier's table, rescaled. Backward is straight-through: the gradient of the float convolution
of the dequantised operands with respect to x, weight (and bias).
"""

from functools import cache

import torch
import torch.nn.functional as F

from approx.exact_kernel import exact_lut_conv
from approx.geometry import Geometry
from approx.lowrank import factor_tables, resolve_rank
from approx.multiplier import Multiplier
from approx.quantize import Quantized, quantize_activations, quantize_weights, sign_extend
from approx.registry import load_multiplier

MODES = ("exact", "lowrank")


@cache
def float_table(multiplier: Multiplier, device: torch.device) -> torch.Tensor:
    return multiplier.lut.to(device=device, dtype=torch.float32)


def feature_table(q: Quantized, factors: torch.Tensor) -> torch.Tensor:
    """Sign-extended rows [value(code), U_1(code), ..., U_R(code)] for Quantized.sign_index."""
    values = torch.arange(256, device=factors.device, dtype=factors.dtype)
    if q.sign is None:
        values = torch.where(values >= 128, values - 256, values)  # int8 bit patterns
    return sign_extend(torch.cat([values.unsqueeze(1), factors], dim=1), q.sign is None)


def features(q: Quantized, factors: torch.Tensor) -> torch.Tensor:
    """Channels (c, r) = [sign*code, sign*U_r(code)], gathered channels-last: (N, C*(R+1), h, w)."""
    rows = q.sign_index().permute(0, 2, 3, 1)  # (N, h, w, C)
    gathered = F.embedding(rows, feature_table(q, factors))  # (N, h, w, C, R+1)
    batch, height, width = gathered.shape[:3]
    return gathered.view(batch, height, width, -1).permute(0, 3, 1, 2)


def lowrank_conv(multiplier, xq: Quantized, wq: Quantized, geometry: Geometry, rank: int):
    """s_x s_w [conv(x_q, w_q) + sum_r conv(U_r(a) sign x, V_r(b) sign w)] as one convolution."""
    u, v = factor_tables(multiplier, rank, xq.value.device, xq.value.dtype)
    x_features, w_features = features(xq, u), features(wq, v).contiguous()
    if is_depthwise(wq.value, geometry) and rank > 0:
        out = depthwise_feature_conv(x_features, w_features, geometry, rank + 1)
    else:
        out = F.conv2d(x_features, w_features, **geometry.conv_kwargs())
    return out * (xq.scale * wq.scale.view(1, -1, 1, 1))


def is_depthwise(weight: torch.Tensor, geometry: Geometry) -> bool:
    return weight.shape[1] == 1 and weight.shape[0] == geometry.groups


def depthwise_feature_conv(x_features, w_features, geometry: Geometry, terms: int):
    """The depthwise case of the feature convolution: each of the C * terms feature channels
    convolved on its own (one depthwise conv), then the terms of each channel summed; oneDNN
    runs this ~2.5x faster than the grouped conv with `terms` inputs per group."""
    channels, _, kh, kw = w_features.shape
    kwargs = {**geometry.conv_kwargs(), "groups": channels * terms}
    out = F.conv2d(x_features, w_features.reshape(channels * terms, 1, kh, kw), **kwargs)
    batch, _, height, width = out.shape
    return out.view(batch, channels, terms, height, width).sum(2)


def emulate(x, weight, multiplier: Multiplier, geometry: Geometry, mode: str, rank):
    """The forward value (no bias), the activation codes and scale, the dequantised weight."""
    xq = quantize_activations(x.float(), multiplier.signed)
    wq = quantize_weights(weight.float(), multiplier.signed)
    if mode == "exact":
        table = float_table(multiplier, x.device)
        out = exact_lut_conv(table, xq, wq, weight, geometry)
    else:
        out = lowrank_conv(multiplier, xq, wq, geometry, resolve_rank(multiplier, rank))
    return out.to(x.dtype), xq, wq.dequantized().to(weight.dtype)


class ApproxConvFunction(torch.autograd.Function):
    """Approximate forward, straight-through backward (float conv of dequantised operands).

    The activation is saved as its 8-bit codes in bfloat16 (integers up to 256 are exact
    there) plus the scale, half the memory of the dequantised float32 tensor; backward
    rebuilds codes * scale, the same float32 values."""

    @staticmethod
    def forward(ctx, x, weight, bias, multiplier, geometry, mode, rank):
        out, xq, w_deq = emulate(x, weight, multiplier, geometry, mode, rank)
        ctx.save_for_backward(xq.value.to(torch.bfloat16), xq.scale, w_deq)
        ctx.x_dtype = x.dtype
        ctx.geometry = geometry
        ctx.bias_sizes = None if bias is None else list(bias.shape)
        return out if bias is None else out + bias.view(1, -1, 1, 1)

    @staticmethod
    def backward(ctx, grad_out):
        x_codes, x_scale, w_deq = ctx.saved_tensors
        x_deq = (x_codes.float() * x_scale).to(ctx.x_dtype)
        g = ctx.geometry
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.bias_sizes is not None]
        grad_x, grad_w, grad_b = torch.ops.aten.convolution_backward(
            grad_out, x_deq, w_deq, ctx.bias_sizes, list(g.stride), list(g.padding),
            list(g.dilation), False, [0, 0], g.groups, mask,
        )
        return grad_x, grad_w, grad_b, None, None, None, None


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}: choose 'exact' (LUT sum) or 'lowrank' (fast emulation)")
    return mode


def approx_conv2d(x, weight, multiplier, bias=None, stride=1, padding=0, dilation=1, groups=1,
                  mode="exact", rank=None):
    """F.conv2d with every product taken from `multiplier` (a Multiplier or a spec string).

    mode 'exact' equals the contract's LUT sum up to float32 accumulation; 'lowrank' replaces
    LUT - a*b by its rank-`rank` SVD (default: the multiplier's rank, see approx.lowrank).
    Signed tables: zero padding is a code-0 activation and contributes LUT[0, b] in exact mode.
    """
    multiplier = load_multiplier(multiplier)
    geometry = Geometry.of(stride, padding, dilation, groups)
    geometry.check(x, weight)
    return ApproxConvFunction.apply(x, weight, bias, multiplier, geometry, check_mode(mode), rank)
