"""One-shot evaluation: the accuracy of a derived genotype computed from the supernet's weights.

At the end of a search the derived (discretised) cell is evaluated on held-out images that
neither the weights nor the alphas saw: a copy of the supernet runs one-hot on the genotype's
edges, ops and multipliers (`Discretised`: the architecture's `one_hot_weights` passed to
every forward), is fine-tuned for one pass over the
weights' training images (a supernet evaluated right after discretisation is near chance
for DARTS: Wang et al., "Rethinking architecture selection in differentiable NAS", ICLR
2021), and its BatchNorm statistics are re-estimated before the evaluation. This is what
`--genotype best` ranks searches by; the supernet itself is not changed.
"""

from __future__ import annotations

import copy
import itertools

import torch
import torch.nn as nn

RECALIBRATION_BATCHES = 8
FINETUNE_LR = 0.01


@torch.no_grad()
def recalibrate_batch_norm(model: nn.Module, batches) -> None:
    """Replace every BatchNorm's running statistics by their mean over `batches`."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
    model.train()
    for x, _ in batches:
        model(x)
    for norm, momentum in zip(norms, saved, strict=True):
        norm.momentum = momentum


class Discretised(nn.Module):
    """A cell supernet computing `genotype`'s network with its own weights: every forward
    passes the architecture's one-hot weights of the genotype (the supernet is unchanged)."""

    def __init__(self, supernet: nn.Module, genotype):
        super().__init__()
        self.supernet = supernet
        self._weights = supernet.architecture.one_hot_weights(genotype)

    def forward(self, x):
        return self.supernet(x, self._weights)

    def loss(self, x, y):
        return self.supernet.criterion(self(x), y)

    def weights(self):
        return self.supernet.weights()


def finetune(network, loader, lr: float = FINETUNE_LR) -> None:
    """One pass of SGD over `loader` on the weights of a discretised supernet."""
    weights = list(network.weights())
    optimizer = torch.optim.SGD(weights, lr, momentum=0.9)
    network.train()
    for x, y in loader:
        optimizer.zero_grad(set_to_none=True)
        network.loss(x, y).backward(inputs=weights)
        nn.utils.clip_grad_norm_(weights, 5.0)
        optimizer.step()


def derived_accuracy(model, genotype, train_loader, test_loader, evaluate) -> dict:
    """`evaluate(net, test_loader, 'derived')` of the supernet discretised to `genotype`,
    after a one-pass fine-tune and BatchNorm re-estimation (on a copy)."""
    network = Discretised(copy.deepcopy(model), genotype)
    finetune(network, train_loader)
    recalibrate_batch_norm(network, itertools.islice(train_loader, RECALIBRATION_BATCHES))
    return evaluate(network, test_loader, "derived")
