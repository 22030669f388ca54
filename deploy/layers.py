"""The layers of a deployed network: a conv (or the classifier, as a 1x1 conv) with BatchNorm
folded in, its input ReLU fused, and, on a multiplier, 8-bit integer arithmetic.

`DeployedConv2d` on a multiplier: the input (after the fused ReLU) becomes 8-bit codes with the
layer's calibrated activation scale `s_x` (approx.quantize: per tensor, codes clamped to the
range), the folded weights become per-output-channel codes (scale `s_w[o]`), the bias an int32
code at scale `s_x * s_w[o]`; output = (accumulator + bias code) * s_x * s_w[o]. Without a
multiplier (a layer float32 by choice) it is the folded float conv. While `calibrating` it runs
in float and records the peak |input| (deploy.calibration).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from approx.geometry import Geometry
from approx.multiplier import Multiplier
from approx.quantize import Quantized, levels, quantize_activations, quantize_weights
from deploy.integer import INT32_LIMIT, accumulate


class DeployedConv2d(nn.Module):
    """One deployed conv: folded `weight` and `bias`, `relu_input`, `multiplier` (None: float),
    `name` (the source conv's module path), `act_scale` (calibrated s_x)."""

    def __init__(self, name: str, weight: torch.Tensor, bias: torch.Tensor | None,
                 geometry: Geometry, multiplier: Multiplier | None, relu_input: bool):
        super().__init__()
        self.name, self.geometry, self.multiplier = name, geometry, multiplier
        self.relu_input = relu_input
        self.kind = "conv"  # "linear" for the classifier (DeployedLinear)
        self.register_buffer("weight", weight.detach().float().clone())
        if bias is None:
            bias = torch.zeros(weight.shape[0], device=weight.device)
        self.register_buffer("bias", bias.detach().float().clone())
        # peak |input| over the calibration set; negative until calibrated
        self.register_buffer("act_peak", torch.full((), -1.0, dtype=torch.float64,
                                                    device=weight.device))
        self.calibrating = False

    @property
    def signed(self) -> bool:
        return bool(self.multiplier is not None and self.multiplier.signed)

    @property
    def act_scale(self) -> torch.Tensor:
        """s_x = calibrated peak |input| / code levels (float32, as the quantiser uses it); an
        input that was 0 on every calibration image gets peak 1 (its codes stay 0)."""
        if self.multiplier is None:
            raise ValueError(f"deploy: layer {self.name} is float32 and has no activation scale")
        if bool(self.act_peak < 0):
            raise ValueError(f"deploy: layer {self.name} is not calibrated; run "
                             "deploy.calibrate(net, images) first")
        peak = torch.where(self.act_peak > 0, self.act_peak, 1.0)
        return (peak / levels(self.signed)).float()

    def weight_codes(self) -> Quantized:
        """Per-output-channel codes of the folded weights (approx.quantize)."""
        return quantize_weights(self.weight, self.signed)

    def weight_scale(self) -> torch.Tensor:
        """s_w[o] (float32, shape (O,)); an all-zero channel (codes 0) takes the largest scale
        of the others (1 if none), so that its bias has a unit like theirs."""
        scale = self.weight_codes().scale.reshape(-1)
        fallback = scale.max() if bool(scale.max() > 0) else torch.ones_like(scale.max())
        return torch.where(scale > 0, scale, fallback)

    def bias_codes(self) -> torch.Tensor:
        """The int32 bias codes round(bias / (s_x * s_w[o])), as float64 integers."""
        codes = (self.bias.double() / self.accumulator_scale()).round()
        return codes.clamp(-INT32_LIMIT, INT32_LIMIT - 1)

    def accumulator_scale(self) -> torch.Tensor:
        """s_x * s_w[o] per output channel (float64): the value of one accumulator unit."""
        return self.act_scale.double() * self.weight_scale().double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.relu_input:
            x = F.relu(x)
        if self.calibrating:
            self.act_peak.copy_(torch.maximum(self.act_peak, x.detach().abs().amax().double()))
        if self.multiplier is None or self.calibrating:
            return F.conv2d(x, self.weight, self.bias, **self.geometry.conv_kwargs())
        return self.integer_forward(x)

    def integer_forward(self, x: torch.Tensor) -> torch.Tensor:
        xq = quantize_activations(x.float(), self.signed, self.act_scale)
        acc = accumulate(xq, self.weight_codes(), self.weight.shape, self.multiplier,
                         self.geometry, self.name)
        view = (1, -1, 1, 1)
        out = (acc + self.bias_codes().view(view)) * self.accumulator_scale().view(view)
        return out.to(x.dtype)

    def extra_repr(self) -> str:
        arithmetic = "float32" if self.multiplier is None else self.multiplier.name
        return (f"{self.name}: {tuple(self.weight.shape)}, {self.geometry}, "
                f"relu_input={self.relu_input}, {arithmetic}")


class DeployedLinear(nn.Module):
    """The classifier: a DeployedConv2d on (N, C, 1, 1), flattened back to (N, O)."""

    def __init__(self, conv: DeployedConv2d):
        super().__init__()
        self.conv = conv
        conv.kind = "linear"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.reshape(*x.shape, 1, 1)).flatten(1)
