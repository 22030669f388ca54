"""Per-layer operation counts, per input image, gathered by forward hooks on leaf modules.

Every leaf module (no children) that runs gives one `LayerCount` per call, so a module used
twice is counted twice. Counts use per-image sizes (tensor elements / batch size). Rules:
- Conv (any groups, dilation, stride): MACs = output elements x C_in/groups x kernel area
  (padded positions included, as in torch.utils.flop_counter); a bias adds 1 add per output.
- Linear: MACs = output elements x in_features; a bias adds 1 add per output.
- Max pool: window-1 comparisons per output; average pool: window-1 adds + 1 mult per output
  (nominal window, borders not shortened); adaptive pools: 1 add/comparison per input
  element beyond the first of each window, average 1 mult per output.
- BatchNorm (and Group/Layer/Instance norm): 1 mult + 1 add per element (inference scale and
  shift, not folded into the conv; weights: 2 floats per channel, affine or not).
- Activations: 1 operation (counted as an add/comparison) per element.
- Identity, Zero (the `none` op), Dropout, Flatten: nothing. Functional code inside a
  forward (node sums, torch.cat, drop path) is not a module and is not counted.
Operand widths: a conv with a `.multiplier` (approx.ApproxConv2d) has 8-bit weights and
activations (bias 32-bit); in a deployed int8 network (`int8_network`) every layer without
MACs (pools, norms, activations) reads and writes 8-bit codes too; every other layer is
float32. Parameters are counted on a module's
first call only; its weights are read again (weight_bytes) on every call.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch.nn as nn

FLOAT_BITS = 32
INT8_BITS = 8
EXACT_MULTIPLIERS = ("exact", "exact_s", "mul8u_1JJQ", "mul8s_1KV6")
FLOAT_LABEL = "float32"
EXACT_LABEL = "int8 exact"

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU,
               nn.SiLU, nn.Mish, nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid,
               nn.Softplus, nn.Softsign, nn.LogSigmoid, nn.Softmax, nn.LogSoftmax, nn.Threshold)
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
NORMS = BATCH_NORMS + (nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm1d, nn.InstanceNorm2d,
                       nn.InstanceNorm3d)
MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
AVG_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
ADAPTIVE_POOLS = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                  nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
FREE = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
        nn.Flatten, nn.Unflatten)
FREE_CLASS_NAMES = ("Identity", "Zero")  # operations.Identity and operations.Zero


@dataclass(frozen=True)
class LayerCount:
    """Counts of one call of one leaf module, per image."""

    name: str
    type: str
    multiplier: str  # "float32", "int8 exact" or the approximate multiplier's name
    macs: int
    params: int
    weight_bytes: int
    activation_bytes: int  # input + output
    adds: int  # element-wise adds/comparisons outside the MACs
    mults: int  # element-wise mults outside the MACs
    bits: int  # operand width: 32 (float32) or 8 (int8 multiplier)
    relative_energy: float | None = None  # int8 mult energy / exact multiplier's
    power_mw: float | None = None
    outputs: int = 0  # output elements (their bytes are part of activation_bytes)

    @property
    def flops(self) -> int:
        return 2 * self.macs + self.adds + self.mults

    @property
    def bitops(self) -> int:
        return self.macs * self.bits * self.bits


def multiplier_of(module: nn.Module):
    """The approximate multiplier a conv (or linear) layer runs on, or None for float32."""
    return (getattr(module, "multiplier", None) if isinstance(module, (nn.Conv2d, nn.Linear))
            else None)


def multiplier_label(multiplier) -> str:
    if multiplier is None:
        return FLOAT_LABEL
    if multiplier.name in EXACT_MULTIPLIERS or getattr(multiplier, "is_exact", False):
        return EXACT_LABEL
    return multiplier.name


def operation_counts(module: nn.Module, in_elems: int, out_elems: int) -> tuple[int, int, int]:
    """(MACs, element-wise adds, element-wise mults) of one call, per image."""
    if isinstance(module, nn.modules.conv._ConvNd):
        return _conv_counts(module, in_elems, out_elems)
    if isinstance(module, nn.Linear):
        return out_elems * module.in_features, _bias_adds(module, out_elems), 0
    if isinstance(module, ADAPTIVE_POOLS):
        is_avg = "Avg" in type(module).__name__
        return 0, in_elems - out_elems, out_elems if is_avg else 0
    if isinstance(module, MAX_POOLS + AVG_POOLS):
        window = _window(module.kernel_size, module)
        return 0, out_elems * (window - 1), out_elems if isinstance(module, AVG_POOLS) else 0
    if isinstance(module, NORMS):
        return 0, out_elems, out_elems
    if isinstance(module, ACTIVATIONS):
        return 0, out_elems, 0
    return 0, 0, 0


def is_counted_type(module: nn.Module) -> bool:
    known = (nn.modules.conv._ConvNd, nn.Linear) + ADAPTIVE_POOLS + MAX_POOLS + AVG_POOLS
    return isinstance(module, known + NORMS + ACTIVATIONS)


def layer_type(module: nn.Module) -> str:
    """The type a layer is counted and deployed as: its class name, except that a subclass of a
    torch BatchNorm (kernels.lean's layout and lean twins) is that BatchNorm, so that the
    deployment rules (BatchNorm folding) see it as one."""
    base = next((cls for cls in BATCH_NORMS if isinstance(module, cls)), type(module))
    return base.__name__


def is_free(module: nn.Module) -> bool:
    return isinstance(module, FREE) or type(module).__name__ in FREE_CLASS_NAMES


def weight_bytes(module: nn.Module, bits: int) -> int:
    """Bytes of the weights one call reads: int8 weights (+ int32 bias) for a multiplier
    conv, float32 otherwise; BatchNorm reads a scale and a shift per channel."""
    if isinstance(module, BATCH_NORMS):
        return 2 * module.num_features * FLOAT_BITS // 8
    total = 0
    for name, parameter in module.named_parameters(recurse=False):
        width = bits if name == "weight" else FLOAT_BITS
        total += parameter.numel() * width // 8
    return total


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False))


def warn_uncounted(module: nn.Module) -> None:
    warnings.warn(f"energy_estimator: no counting rule for {type(module).__name__}; only its "
                  f"parameters are counted", stacklevel=3)


def _conv_counts(module, in_elems: int, out_elems: int) -> tuple[int, int, int]:
    kernel_area = math.prod(module.kernel_size)
    if module.transposed:
        macs = in_elems * (module.out_channels // module.groups) * kernel_area
    else:
        macs = out_elems * (module.in_channels // module.groups) * kernel_area
    return macs, _bias_adds(module, out_elems), 0


def _bias_adds(module: nn.Module, out_elems: int) -> int:
    return out_elems if getattr(module, "bias", None) is not None else 0


def _window(kernel_size, module: nn.Module) -> int:
    if isinstance(kernel_size, int):
        spatial_dims = int(type(module).__name__[-2])  # MaxPool2d -> 2
        return kernel_size ** spatial_dims
    return math.prod(kernel_size)
