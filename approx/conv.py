"""Emulated approximate convolution: `approx_conv2d` (exact LUT sum or fast low-rank mode).

Forward follows the GUIDE contract: operands quantised to 8-bit codes (activations with the
tensor's own scale or a given, calibrated one), products taken from the multiplier's table,
rescaled. Backward is straight-through: the gradient of the float convolution
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
from kernels.convgrad import conv2d_backward

MODES = ("exact", "lowrank")


@cache
def float_table(multiplier: Multiplier, device: torch.device) -> torch.Tensor:
    return multiplier.lut.to(device=device, dtype=torch.float32)


def activation_codes(x: torch.Tensor, signed: bool,
                     scale: torch.Tensor | None = None) -> tuple[Quantized, torch.Tensor]:
    """The activation's codes and scale, and its codes in bfloat16 (kept for backward)."""
    xq = quantize_activations(x.float(), signed, scale)
    return xq, xq.value.to(torch.bfloat16)


def scale_tensor(x_scale, x: torch.Tensor) -> torch.Tensor | None:
    """A given activation scale as a 0-d float32 tensor on x's device (None: max|x| derived)."""
    if x_scale is None:
        return None
    return torch.as_tensor(x_scale, dtype=torch.float32, device=x.device).detach().reshape(())


def scale_key(x_scale: torch.Tensor | None) -> float | None:
    """What the sharing cache knows a scale by (its value: codes differ per scale)."""
    return None if x_scale is None else float(x_scale)


def shared_codes_of(x: torch.Tensor, signed: bool, x_scale: torch.Tensor | None):
    """(Quantized, bfloat16 codes) of x, shared across convs reading x (approx.sharing)."""
    return cached(x, ("codes", signed, scale_key(x_scale)),
                  lambda: activation_codes(x, signed, x_scale))


def shared_terms_of(x: torch.Tensor, xq: Quantized, multiplier: Multiplier, rank: int,
                    x_scale: torch.Tensor | None) -> list[torch.Tensor]:
    """The low-rank activation terms of x for `multiplier` at `rank`, shared like its codes."""
    return cached(x, ("terms", multiplier, rank, scale_key(x_scale)),
                  lambda: activation_terms(xq, multiplier, rank))


def emulate(x, weight, multiplier: Multiplier, geometry: Geometry, mode: str, rank,
            x_scale=None):
    """The forward value (no bias), the activation's scale and bfloat16 codes, the dequantised
    weight. The activation's codes and low-rank terms are shared (approx.sharing). The
    emulation runs in float32 even under autocast (bfloat16 would blur the table's error)."""
    with emulation_scope(x):
        return _emulate(x, weight, multiplier, geometry, mode, rank, x_scale)


def emulation_scope(x: torch.Tensor):
    """Emulation runs in float32 even under autocast (bfloat16 would blur the table's error)."""
    return torch.autocast(x.device.type, enabled=False)


def _emulate(x, weight, multiplier: Multiplier, geometry: Geometry, mode: str, rank, x_scale):
    xq, saved_codes = shared_codes_of(x, multiplier.signed, x_scale)
    wq = quantize_weights(weight.float(), multiplier.signed)
    if mode == "exact":
        out = exact_lut_conv(float_table(multiplier, x.device), xq, wq, weight, geometry)
    else:
        rank = resolve_rank(multiplier, rank)
        x_terms = shared_terms_of(x, xq, multiplier, rank, x_scale)
        out = lowrank_conv(xq, x_terms, wq, multiplier, geometry)
    return out.to(x.dtype), xq.scale, saved_codes, wq.dequantized().to(weight.dtype)


class ApproxConvFunction(torch.autograd.Function):
    """Approximate forward, straight-through backward (float conv of dequantised operands).

    The activation is saved as its 8-bit codes in bfloat16 (integers up to 256 are exact
    there) plus the scale, half the memory of the dequantised float32 tensor; backward
    rebuilds codes * scale, the same float32 values."""

    @staticmethod
    def forward(ctx, x, weight, bias, multiplier, geometry, mode, rank, x_scale):
        out, x_scale, x_codes, w_deq = emulate(x, weight, multiplier, geometry, mode, rank,
                                               x_scale)
        ctx.save_for_backward(x_codes, x_scale, w_deq)
        ctx.x_dtype = x.dtype
        ctx.geometry = geometry
        ctx.bias_sizes = None if bias is None else list(bias.shape)
        used_scale = x_scale.clone()  # an output of its own (the given scale is an input)
        ctx.mark_non_differentiable(used_scale)
        return (out if bias is None else out + bias.view(1, -1, 1, 1)), used_scale

    @staticmethod
    def backward(ctx, grad_out, _grad_scale):
        x_codes, x_scale, w_deq = ctx.saved_tensors
        x_deq = (x_codes.float() * x_scale).to(ctx.x_dtype)
        g = ctx.geometry
        grad_x, grad_w = conv2d_backward(grad_out, x_deq, w_deq, g.stride, g.padding,
                                         g.dilation, g.groups, need_x=ctx.needs_input_grad[0],
                                         need_w=ctx.needs_input_grad[1])
        grad_b = None if ctx.bias_sizes is None else grad_out.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None, None, None


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}: choose 'exact' (LUT sum) or 'lowrank' (fast emulation)")
    return mode


def approx_conv2d(x, weight, multiplier, bias=None, stride=1, padding=0, dilation=1, groups=1,
                  mode="exact", rank=None, x_scale=None):
    """F.conv2d with every product taken from `multiplier` (a Multiplier or a spec string).

    mode 'exact' equals the contract's LUT sum up to float32 accumulation; 'lowrank' replaces
    LUT - a*b by its rank-`rank` SVD (default: the multiplier's rank, see approx.lowrank).
    `x_scale` (a float or tensor): a calibrated activation scale s_x used instead of
    max|x| / levels; codes are then clamped to the code range.
    Signed tables: zero padding is a code-0 activation and contributes LUT[0, b] in exact mode.
    """
    return approx_conv2d_scaled(x, weight, multiplier, bias, stride, padding, dilation, groups,
                                mode, rank, x_scale)[0]


def approx_conv2d_scaled(x, weight, multiplier, bias=None, stride=1, padding=0, dilation=1,
                         groups=1, mode="exact", rank=None, x_scale=None):
    """approx_conv2d and the activation scale s_x it used (observers read it)."""
    multiplier = load_multiplier(multiplier)
    geometry = Geometry.of(stride, padding, dilation, groups)
    geometry.check(x, weight)
    return ApproxConvFunction.apply(x, weight, bias, multiplier, geometry, check_mode(mode), rank,
                                    scale_tensor(x_scale, x))
