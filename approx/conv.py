"""Emulated approximate convolution: `approx_conv2d` (exact LUT sum or fast low-rank mode).

Forward follows the GUIDE contract: operands quantised to 8-bit codes, products taken from the
multiplier's table, rescaled. Backward is straight-through: the gradient of the float convolution
of the dequantised operands with respect to x, weight (and bias).
"""

from functools import cache

import torch

from approx.exact_kernel import exact_lut_conv
from approx.geometry import Geometry
from approx.lowrank import resolve_rank
from approx.lowrank_conv import activation_terms, lowrank_conv
from approx.multiplier import Multiplier
from approx.quantize import Quantized, quantize_activations, quantize_weights
from approx.registry import load_multiplier
from approx.sharing import cached
from convgrad import conv2d_backward

MODES = ("exact", "lowrank")


@cache
def float_table(multiplier: Multiplier, device: torch.device) -> torch.Tensor:
    return multiplier.lut.to(device=device, dtype=torch.float32)


def activation_codes(x: torch.Tensor, signed: bool) -> tuple[Quantized, torch.Tensor]:
    """The activation's codes and scale, and its codes in bfloat16 (kept for backward)."""
    xq = quantize_activations(x.float(), signed)
    return xq, xq.value.to(torch.bfloat16)


def emulate(x, weight, multiplier: Multiplier, geometry: Geometry, mode: str, rank):
    """The forward value (no bias), the activation's scale and bfloat16 codes, the dequantised
    weight. The activation's codes and low-rank terms are shared (approx.sharing). The
    emulation runs in float32 even under autocast (bfloat16 would blur the table's error)."""
    with torch.autocast(x.device.type, enabled=False):
        return _emulate(x, weight, multiplier, geometry, mode, rank)


def _emulate(x, weight, multiplier: Multiplier, geometry: Geometry, mode: str, rank):
    xq, saved_codes = cached(x, ("codes", multiplier.signed),
                             lambda: activation_codes(x, multiplier.signed))
    wq = quantize_weights(weight.float(), multiplier.signed)
    if mode == "exact":
        out = exact_lut_conv(float_table(multiplier, x.device), xq, wq, weight, geometry)
    else:
        rank = resolve_rank(multiplier, rank)
        x_terms = cached(x, ("terms", multiplier, rank),
                         lambda: activation_terms(xq, multiplier, rank))
        out = lowrank_conv(xq, x_terms, wq, multiplier, geometry)
    return out.to(x.dtype), xq.scale, saved_codes, wq.dequantized().to(weight.dtype)


class ApproxConvFunction(torch.autograd.Function):
    """Approximate forward, straight-through backward (float conv of dequantised operands).

    The activation is saved as its 8-bit codes in bfloat16 (integers up to 256 are exact
    there) plus the scale, half the memory of the dequantised float32 tensor; backward
    rebuilds codes * scale, the same float32 values."""

    @staticmethod
    def forward(ctx, x, weight, bias, multiplier, geometry, mode, rank):
        out, x_scale, x_codes, w_deq = emulate(x, weight, multiplier, geometry, mode, rank)
        ctx.save_for_backward(x_codes, x_scale, w_deq)
        ctx.x_dtype = x.dtype
        ctx.geometry = geometry
        ctx.bias_sizes = None if bias is None else list(bias.shape)
        return out if bias is None else out + bias.view(1, -1, 1, 1)

    @staticmethod
    def backward(ctx, grad_out):
        x_codes, x_scale, w_deq = ctx.saved_tensors
        x_deq = (x_codes.float() * x_scale).to(ctx.x_dtype)
        g = ctx.geometry
        grad_x, grad_w = conv2d_backward(grad_out, x_deq, w_deq, g.stride, g.padding,
                                         g.dilation, g.groups, need_x=ctx.needs_input_grad[0],
                                         need_w=ctx.needs_input_grad[1])
        grad_b = None if ctx.bias_sizes is None else grad_out.sum((0, 2, 3))
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
