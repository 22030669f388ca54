"""8-bit quantisation of convolution operands per the GUIDE contract (sign-magnitude or int8).

Both forms come from one signed code, `value = round(v / s)` clamped to +-levels: torch.round
is odd-symmetric, so for sign-magnitude tables `value = sign(v) * round(|v| / s)` exactly.
The LUT index and the sign of v are derived from it only when a caller asks (exact mode).
"""

from functools import cached_property

import torch

UNSIGNED_LEVELS = 255
SIGNED_LEVELS = 127


def levels(signed: bool) -> int:
    """Largest code magnitude: 127 for int8 tables, 255 for sign-magnitude ones."""
    return SIGNED_LEVELS if signed else UNSIGNED_LEVELS


class Quantized:
    """Integer codes of a tensor: `value * scale` dequantises; `index` addresses the LUT."""

    def __init__(self, source: torch.Tensor, value: torch.Tensor, scale: torch.Tensor,
                 signed: bool):
        self.source = source  # the quantised tensor (detached): sign(v) for sign-magnitude
        self.value = value  # round(v / scale) as a float tensor (signed integer values)
        self.scale = scale  # broadcastable against v; zero scale makes every code zero
        self.signed = signed

    @cached_property
    def sign(self) -> torch.Tensor | None:
        """sign(v) for sign-magnitude (unsigned) multipliers, else None. It differs from
        sign(value) where a nonzero v rounds to code 0, which still selects LUT[0, b]."""
        return None if self.signed else torch.sign(self.source)

    @cached_property
    def index(self) -> torch.Tensor:
        """LUT index: magnitude 0..255 (unsigned) or the int8 bit pattern (signed)."""
        codes = self.value.long()  # NaN codes become some valid index; the scale is NaN
        return codes & 255 if self.signed else codes.abs().clamp_(0, 255)

    def dequantized(self) -> torch.Tensor:
        return self.value * self.scale

    def batch_slice(self, batch: slice) -> "Quantized":
        return Quantized(self.source[batch], self.value[batch], self.scale, self.signed)

    @property
    def rows_per_code_set(self) -> int:
        """Rows of a sign-extended table: 3 x 256 (sign -1, 0, +1) for sign-magnitude, else 256."""
        return 256 if self.signed else 3 * 256

    def sign_index(self) -> torch.Tensor:
        """Row in a sign-extended table: (sign + 1) * 256 + magnitude, or the bit pattern."""
        if self.signed:
            return self.index
        return (self.sign.long() + 1) * 256 + self.index

    @property
    def padding_index(self) -> int:
        """Row of a zero (padding) activation: sign 0, or code 0 for signed tables."""
        return 0 if self.signed else 256


def sign_extend(table: torch.Tensor, signed: bool) -> torch.Tensor:
    """Rows indexed like Quantized.sign_index: [-table; 0; table] for sign-magnitude tables."""
    if signed:
        return table
    return torch.cat([-table, torch.zeros_like(table), table])


def quantize(v: torch.Tensor, signed: bool, per_channel: bool,
             scale: torch.Tensor | None = None) -> Quantized:
    """Unsigned: a = round(|v| / s), s = max|v| / 255; signed: round(v / s), s = max|v| / 127.

    The max runs over the whole tensor, or over each output channel (dim 0) when per_channel.
    A given `scale` (calibrated) replaces the max-derived one; codes are clamped to the range.
    """
    top = levels(signed)
    v = v.detach()
    calibrated = scale is not None
    if not calibrated:
        if per_channel:
            peak = v.abs().amax(dim=tuple(range(1, v.dim())), keepdim=True)
        else:
            peak = v.abs().amax()
        scale = peak / top
    safe_scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # v == 0 where scale is 0
    value = torch.div(v, safe_scale).round_().clamp_(-top, top)
    if calibrated:
        value.mul_(scale > 0)  # a zero calibrated scale makes every code zero
    return Quantized(v, value, scale, signed)


def quantize_activations(x: torch.Tensor, signed: bool,
                         scale: torch.Tensor | None = None) -> Quantized:
    """Per-tensor scale for activations: max|x| / levels, or the given (calibrated) `scale`."""
    return quantize(x, signed, per_channel=False, scale=scale)


def quantize_weights(weight: torch.Tensor, signed: bool) -> Quantized:
    """Per-output-channel scale for weights (O, C/groups, kh, kw)."""
    return quantize(weight, signed, per_channel=True)
