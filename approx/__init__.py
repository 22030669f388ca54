"""Approximate 8x8 multipliers: catalogue, built-in designs, table I/O, emulated convolution."""

from approx.builtin import builtin_names
from approx.errors import MultiplierError
from approx.multiplier import Multiplier
from approx.registry import available_multipliers, load_multiplier

__all__ = [
    "Multiplier",
    "MultiplierError",
    "available_multipliers",
    "builtin_names",
    "load_multiplier",
]
