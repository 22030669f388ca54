"""One-shot evaluation: the accuracy of a derived genotype computed with the supernet's weights.

At the end of a search the derived (discretised) cell is evaluated on held-out images that
neither the weights nor the alphas saw: the supernet runs one-hot on the genotype's edges,
ops and multipliers (`Network.discretised`), on a copy whose BatchNorm statistics are first
re-estimated on training batches (the discrete network's activations have other statistics
than the mixture's). This is what `--genotype best` ranks searches by.
"""

from __future__ import annotations

import copy
import itertools

import torch
import torch.nn as nn

RECALIBRATION_BATCHES = 8


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


def derived_accuracy(model, genotype, train_loader, test_loader, evaluate) -> dict:
    """`evaluate(net, test_loader, 'derived')` of the supernet discretised to `genotype`."""
    network = copy.deepcopy(model)
    with network.discretised(genotype):
        recalibrate_batch_norm(network, itertools.islice(train_loader, RECALIBRATION_BATCHES))
        return evaluate(network, test_loader, "derived")
