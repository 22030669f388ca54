"""Integer arithmetic of a deployed layer: 8-bit codes in, the int32 accumulator out.

The accumulator of output channel o is `sum_taps LUT[a, b]` (signed tables) or
`sum_taps sign(x) sign(w) LUT[a, b]` (sign-magnitude), the products read from the multiplier's
table exactly as approx's exact mode does (approx.exact_kernel), but summed in float64 with unit
scales, which holds every integer sum exactly; the caller adds its int32 bias and rescales
once by `s_x * s_w[o]`, as integer hardware does. A sum outside the int32 range is an error
(real 32-bit accumulators would wrap).
"""

from __future__ import annotations

import functools

import torch

from approx.exact_kernel import exact_lut_conv
from approx.geometry import Geometry
from approx.multiplier import Multiplier
from approx.quantize import Quantized

INT32_LIMIT = 2**31


@functools.cache
def integer_table(multiplier: Multiplier, device: torch.device) -> torch.Tensor:
    """The multiplier's products as a float64 table (exact integers)."""
    return multiplier.lut.to(device=device, dtype=torch.float64)


def unit_scaled(q: Quantized) -> Quantized:
    """The same codes with scale 1 (float64): the kernel then sums raw integer products."""
    ones = torch.ones_like(torch.as_tensor(q.scale), dtype=torch.float64)
    return Quantized(q.source, q.value, ones, q.signed)


def accumulate(xq: Quantized, wq: Quantized, weight_shape: torch.Size, multiplier: Multiplier,
               geometry: Geometry, layer: str) -> torch.Tensor:
    """The int32 accumulators (N, O, Ho, Wo) as exact integers in float64."""
    probe = torch.empty(weight_shape, device="meta")  # exact_lut_conv reads only its shape
    acc = exact_lut_conv(integer_table(multiplier, xq.value.device), unit_scaled(xq),
                         unit_scaled(wq), probe, geometry)
    if acc.numel() and float(acc.abs().max()) >= INT32_LIMIT:
        raise OverflowError(f"deploy: layer {layer} overflows its 32-bit accumulator")
    return acc
