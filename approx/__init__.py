"""Approximate 8x8 multipliers: catalogue, built-in designs, table I/O, emulated convolution."""

from approx.builtin import builtin_names
from approx.conv import approx_conv2d
from approx.errors import MultiplierError
from approx.mixed import MixedApproxConv2d, MultiplierMixture, mixed_approx_conv2d
from approx.module import ApproxConv2d, EmulatedNetwork, emulating
from approx.multiplier import Multiplier
from approx.registry import available_multipliers, load_multiplier
from approx.settings import DEFAULT_EMULATION, Emulation

__all__ = [
    "DEFAULT_EMULATION",
    "ApproxConv2d",
    "EmulatedNetwork",
    "Emulation",
    "MixedApproxConv2d",
    "Multiplier",
    "MultiplierError",
    "MultiplierMixture",
    "approx_conv2d",
    "available_multipliers",
    "builtin_names",
    "emulating",
    "load_multiplier",
    "mixed_approx_conv2d",
]
