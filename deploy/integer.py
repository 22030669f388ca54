"""Integer arithmetic of a deployed layer: 8-bit codes in, the int32 accumulator out.

The accumulator of output channel o is `sum_taps LUT[a, b]` (signed tables) or
`sum_taps sign(x) sign(w) LUT[a, b]` (sign-magnitude), the products read from the multiplier's
table exactly as approx's exact mode does (approx.exact_kernel), but summed with unit scales in
a float type that holds every partial sum exactly: float32 where taps * max|LUT| < 2^24 (every
layer of the DARTS networks up to ~250 input channels per group), else float64 (< 2^53). The
caller adds its int32 bias and rescales once by `s_x * s_w[o]`, as integer hardware does. A sum
outside the int32 range is an error (real 32-bit accumulators would wrap).
"""

from __future__ import annotations

import functools

import torch

from approx.exact_kernel import exact_lut_conv
from approx.geometry import Geometry
from approx.multiplier import Multiplier
from approx.quantize import Quantized

INT32_LIMIT = 2**31


FLOAT32_EXACT = 2**24  # every integer of smaller magnitude is a float32


@functools.cache
def integer_table(multiplier: Multiplier, device: torch.device,
                  dtype: torch.dtype) -> torch.Tensor:
    """The multiplier's products as a float table (exact integers)."""
    return multiplier.lut.to(device=device, dtype=dtype)


def sum_dtype(multiplier: Multiplier, weight_shape: torch.Size) -> torch.dtype:
    """float32 where no partial sum of one output can reach 2^24, else float64."""
    taps = weight_shape[1:].numel()
    bound = taps * int(multiplier.lut.abs().max())
    return torch.float32 if bound < FLOAT32_EXACT else torch.float64


def unit_scaled(q: Quantized, dtype: torch.dtype) -> Quantized:
    """The same codes with scale 1: the kernel then sums raw integer products."""
    ones = torch.ones_like(torch.as_tensor(q.scale), dtype=dtype)
    return Quantized(q.source, q.value, ones, q.signed)


def accumulate(xq: Quantized, wq: Quantized, weight_shape: torch.Size, multiplier: Multiplier,
               geometry: Geometry, layer: str) -> torch.Tensor:
    """The int32 accumulators (N, O, Ho, Wo) as exact integers (float32 or float64)."""
    probe = torch.empty(weight_shape, device="meta")  # exact_lut_conv reads only its shape
    dtype = sum_dtype(multiplier, weight_shape)
    acc = exact_lut_conv(integer_table(multiplier, xq.value.device, dtype),
                         unit_scaled(xq, dtype), unit_scaled(wq, dtype), probe, geometry)
    if acc.numel() and float(acc.abs().max()) >= INT32_LIMIT:
        raise OverflowError(f"deploy: layer {layer} overflows its 32-bit accumulator")
    return acc
