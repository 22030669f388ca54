"""BatchNorm statistics re-estimated for a moved multiplier, without retraining (`--recalibrate`).

A multiplier whose products are biased (bam4_4 always rounds down, by 13.6 % on average) shifts
and scales the outputs of the convs on it. A network evaluated with the BatchNorm running
statistics of its training multiplier then sees each such output off-centre: the measured drop
mixes the multiplier's noise, which no retraining removes, with its bias, which the first
training steps (or BatchNorm folding at deployment from re-estimated statistics) absorb. Here
each BatchNorm layer's running mean and variance are re-estimated on a few batches of training
images with the moved multipliers in place (no gradient, no weight changes, the convs'
calibrated activation scales kept), as post-training quantisation re-estimates them after
folding (Nagel et al., "A White Paper on Neural Network Quantization", 2021, sec. 3.2); the
original statistics come back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager

import torch
import torch.nn as nn


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@contextmanager
def recalibrated_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]):
    """Within this block `model`'s BatchNorm running statistics are those of `batches` (their
    cumulative average over the batches), the model in eval mode; restored on exit."""
    layers = batchnorm_layers(model)
    saved = [(layer.momentum, layer.running_mean.clone(), layer.running_var.clone(),
              layer.num_batches_tracked.clone()) for layer in layers]
    try:
        model.eval()
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None  # the cumulative average over the batches
            layer.train()  # only BatchNorm: the convs keep their calibrated activation scales
        with torch.no_grad():
            for x in batches:
                model(x)
        model.eval()
        yield
    finally:
        for layer, (momentum, mean, var, count) in zip(layers, saved, strict=True):
            layer.momentum = momentum
            layer.running_mean.copy_(mean)
            layer.running_var.copy_(var)
            layer.num_batches_tracked.copy_(count)
        model.eval()
