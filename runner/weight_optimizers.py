"""The optimiser of the weights (the supernet's, a retrained network's): DARTS's SGD with
momentum, or AdamW.

On the embedded `shapes` task the default search gives its weights about 650 steps, and with
SGD (lr 0.1, momentum 0.9) the supernet sat near chance for a varying part of them: after the
20 warm-up epochs (260 float steps) seed 3 was at 0.33 validation accuracy, and at 0.70 with
AdamW (lr 3e-3) from the same start (docs/supernet_stability.md). Per-parameter step
sizes suit a supernet whose convs feed BatchNorms without affine parameters, where the
effective SGD step of a conv depends on its weights' norm. AdamW's weight decay is decoupled
(Loshchilov & Hutter, 2019). CIFAR keeps DARTS's SGD, and the retrain SGD by default.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

WEIGHT_OPTIMIZERS = ("sgd", "adamw")


def weight_optimizer(name: str, params: Iterable[torch.nn.Parameter], learning_rate: float,
                     momentum: float, weight_decay: float) -> torch.optim.Optimizer:
    """`name`'s optimiser of `params` (`momentum` is SGD's; AdamW keeps its own betas)."""
    if name == "sgd":
        return torch.optim.SGD(params, learning_rate, momentum=momentum,
                               weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, learning_rate, weight_decay=weight_decay)
    raise ValueError(f"--weight_optimizer {name!r}: choose one of {', '.join(WEIGHT_OPTIMIZERS)}")


def default_learning_rate(rates, name: str) -> float:
    """A dataset's default learning rate: one number, or one per optimiser ({name: lr})."""
    return rates[name] if isinstance(rates, dict) else rates
