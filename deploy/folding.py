"""BatchNorm folding: a conv followed by an eval-mode BatchNorm becomes one conv with a bias.

`y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta` is `conv'(x) + b'` with
`w'[o] = w[o] * k[o]`, `b' = (b - mean) * k + beta`, `k = gamma / sqrt(var + eps)`. The deployed
network folds before quantising, so the per-output-channel weight scales see the folded weights.
"""

from __future__ import annotations

import torch
from torch import nn


def batchnorm_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(k, shift) with bn(x) = k * x + shift per channel, from the running statistics."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("deploy: a BatchNorm without running statistics cannot be folded "
                         "(build it with track_running_stats=True)")
    inv_std = torch.rsqrt(bn.running_var.double() + bn.eps)
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(inv_std)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(inv_std)
    k = gamma * inv_std
    return k, beta - bn.running_mean.double() * k


def fold(weight: torch.Tensor, bias: torch.Tensor | None,
         bn: nn.BatchNorm2d | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The folded (weight, bias) of a conv (O, ...) and the BatchNorm after it (None: as is).
    Computed in float64, returned in float32."""
    weight = weight.detach().double()
    bias = None if bias is None else bias.detach().double()
    if bn is None:
        return weight.float(), None if bias is None else bias.float()
    k, shift = batchnorm_affine(bn)
    folded_bias = shift if bias is None else bias * k + shift
    shape = (-1,) + (1,) * (weight.dim() - 1)
    return (weight * k.view(shape)).float(), folded_bias.float()
