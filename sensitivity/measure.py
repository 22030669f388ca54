"""Test accuracy of the network under a per-group multiplier choice, and the sensitivity
table: each group alone on each candidate multiplier (everything else as trained), with its
accuracy drop against the network as trained and the energy it saves.

Evaluation is the final evaluation of train.py (`test_acc` of results.json): eval mode, no
grad, batched, the emulated convs in mode `exact` (their real truth tables) unless told
otherwise, activation scales calibrated during training (a prediction never depends on the
rest of its batch).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from contextlib import nullcontext

import torch
import torch.nn as nn

import data
from approx import Multiplier, emulating
from sensitivity.costs import GroupEnergy
from sensitivity.groups import Group, assigned
from sensitivity.recalibrate import recalibrated_batchnorm

EVAL_BATCH = 256
# batches of EVAL_BATCH training images for the BatchNorm re-estimation: enough to match the
# trained statistics (docs/multiplier_where.md)
RECALIBRATION_BATCHES = 4


def evaluation_loader(dataset: data.Dataset, n_test: int | None = None,
                      batch_size: int = EVAL_BATCH) -> data.BatchLoader:
    """The run's test images (its first `n_test`, given), normalised, in order."""
    test = dataset.test if n_test is None else dataset.test.subset(slice(0, n_test))
    return data.BatchLoader(test, batch_size, mean=dataset.mean, std=dataset.std, train=False)


def recalibration_batches(dataset: data.Dataset, batches: int,
                          batch_size: int = EVAL_BATCH) -> list[torch.Tensor]:
    """`batches` batches of the run's training images, normalised and augmented as training
    augments them (random crop and flip, a fixed seed): the statistics the BatchNorm layers
    were trained with. Without the augmentation the exact twin of docs/multiplier_where.md
    lost 1.8 points (0.8945 -> 0.877); with it, none."""
    loader = data.BatchLoader(dataset.train, batch_size, mean=dataset.mean, std=dataset.std,
                              train=True)
    return [x for x, _ in itertools.islice(loader, batches)]


class Evaluator:
    """Accuracy of `model` on `loader` with the groups of a choice moved, in `mode`, with the
    BatchNorm statistics re-estimated on `recalibration` batches for each choice when given
    (sensitivity/recalibrate.py); `count` says how many evaluations ran."""

    def __init__(self, model: nn.Module, groups: Sequence[Group], loader: data.BatchLoader,
                 mode: str = "exact", recalibration: Sequence[torch.Tensor] = ()):
        self.model, self.groups, self.loader, self.mode = model, list(groups), loader, mode
        self.recalibration = list(recalibration)
        self.count = 0

    @torch.no_grad()
    def logits(self, choice: Mapping[str, Multiplier]) -> torch.Tensor:
        """The logits of every test image (in order) with `choice` applied."""
        self.model.eval()
        with emulating(self.model, mode=self.mode), assigned(self.groups, choice), \
                self._statistics():
            return torch.cat([self.model(x) for x, _ in self.loader])

    def _statistics(self):
        if not self.recalibration:
            return nullcontext()
        return recalibrated_batchnorm(self.model, self.recalibration)

    def accuracy(self, choice: Mapping[str, Multiplier]) -> float:
        """Top-1 accuracy (fraction of the test images) with `choice` applied."""
        self.count += 1
        predicted = self.logits(choice).argmax(dim=1)
        return (predicted == self.loader.labels).float().mean().item()


def sensitivity(evaluator: Evaluator, energy: GroupEnergy, multipliers: Sequence[Multiplier],
                trained_accuracy: float) -> list[dict]:
    """One record per (group, multiplier): that group alone moved to that multiplier."""
    records = []
    for group in evaluator.groups:
        for multiplier in multipliers:
            accuracy = evaluator.accuracy({group.name: multiplier})
            records.append({"group": group.name, "multiplier": multiplier.name,
                            "accuracy": accuracy, "accuracy_drop": trained_accuracy - accuracy,
                            "energy_saved_uj": energy.saved_uj(group.name, multiplier)})
    return records


def uniform(evaluator: Evaluator, energy: GroupEnergy, multipliers: Sequence[Multiplier],
            trained_accuracy: float) -> list[dict]:
    """One record per multiplier: every group on it."""
    records = []
    for multiplier in multipliers:
        accuracy = evaluator.accuracy(energy.uniform(multiplier))
        records.append({"multiplier": multiplier.name, "accuracy": accuracy,
                        "accuracy_drop": trained_accuracy - accuracy,
                        "energy_uj": energy.uniform_uj[multiplier.name]})
    return records
