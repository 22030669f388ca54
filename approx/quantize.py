"""8-bit quantisation of convolution operands per the GUIDE contract (sign-magnitude or int8)."""

from typing import NamedTuple

import torch


class Quantized(NamedTuple):
    """Integer codes of a tensor: `value * scale` dequantises; `index` addresses the LUT."""

    value: torch.Tensor  # round(v / scale) as a float tensor (signed integer values)
    index: torch.Tensor  # LUT index: magnitude 0..255 (unsigned) or int8 bit pattern (signed)
    sign: torch.Tensor | None  # sign(v) for sign-magnitude (unsigned) multipliers, else None
    scale: torch.Tensor  # broadcastable against v; zero scale makes every code zero

    def dequantized(self) -> torch.Tensor:
        return self.value * self.scale

    @property
    def rows_per_code_set(self) -> int:
        """Rows of a sign-extended table: 3 x 256 (sign -1, 0, +1) for sign-magnitude, else 256."""
        return 256 if self.sign is None else 3 * 256

    def sign_index(self) -> torch.Tensor:
        """Row in a sign-extended table: (sign + 1) * 256 + magnitude, or the bit pattern."""
        if self.sign is None:
            return self.index
        return (self.sign.long() + 1) * 256 + self.index

    @property
    def padding_index(self) -> int:
        """Row of a zero (padding) activation: sign 0, or code 0 for signed tables."""
        return 0 if self.sign is None else 256


def sign_extend(table: torch.Tensor, signed: bool) -> torch.Tensor:
    """Rows indexed like Quantized.sign_index: [-table; 0; table] for sign-magnitude tables."""
    if signed:
        return table
    return torch.cat([-table, torch.zeros_like(table), table])


def quantize(v: torch.Tensor, signed: bool, per_channel: bool) -> Quantized:
    """Unsigned: a = round(|v| / s), s = max|v| / 255; signed: round(v / s), s = max|v| / 127.

    The max runs over the whole tensor, or over each output channel (dim 0) when per_channel.
    """
    levels = 127 if signed else 255
    magnitude = v.detach().abs()
    if per_channel:
        peak = magnitude.amax(dim=tuple(range(1, v.dim())), keepdim=True)
    else:
        peak = magnitude.amax()
    scale = peak / levels
    safe_scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    if signed:
        value = torch.round(v.detach() / safe_scale).clamp(-levels, levels)
        value = torch.where(scale > 0, value, torch.zeros_like(value))
        return Quantized(value, value.long() & 255, None, scale)
    codes = torch.round(magnitude / safe_scale).clamp(max=levels)
    codes = torch.where(scale > 0, codes, torch.zeros_like(codes))
    sign = torch.sign(v.detach())
    return Quantized(sign * codes, codes.long(), sign, scale)


def quantize_activations(x: torch.Tensor, signed: bool) -> Quantized:
    """Per-tensor scale for activations."""
    return quantize(x, signed, per_channel=False)


def quantize_weights(weight: torch.Tensor, signed: bool) -> Quantized:
    """Per-output-channel scale for weights (O, C/groups, kh, kw)."""
    return quantize(weight, signed, per_channel=True)
