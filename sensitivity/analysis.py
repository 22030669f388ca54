"""The whole analysis of one trained network as one JSON-ready document: its groups, the
sensitivity table, the greedy assignment, the uniform assignments and any given genotypes'
assignments (sensitivity/compare.py) for comparison."""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch.nn as nn

import data
import genotypes
from approx import Emulation, Multiplier
from approx.settings import DEFAULT_EMULATION
from sensitivity.compare import assignment_of, compared, genotype_of
from sensitivity.costs import GroupEnergy
from sensitivity.greedy import greedy_assignment
from sensitivity.groups import float_layers, layer_groups
from sensitivity.measure import (
    RECALIBRATION_BATCHES,
    Evaluator,
    evaluation_loader,
    recalibration_batches,
    sensitivity,
    uniform,
)


def analyse(model: nn.Module, genotype, dataset: data.Dataset,
            multipliers: Sequence[Multiplier], *, tolerance: float, n_test: int | None = None,
            mode: str = "exact", energy_table=None, compare: Sequence[tuple[str, object]] = (),
            emulation: Emulation = DEFAULT_EMULATION,
            recalibrate: int = RECALIBRATION_BATCHES) -> dict:
    """The sensitivity document of `model` (module docstring); `model` is left as it was.
    `compare`: (label, genotype) pairs whose multipliers are applied to `model`'s weights,
    resolved in `emulation`'s library; `recalibrate`: batches of training images on which
    each evaluation re-estimates the BatchNorm statistics (0: the trained ones)."""
    started = time.time()
    groups = layer_groups(model, genotype)
    choices = [(label, assignment_of(other, genotype, groups, emulation, label))
               for label, other in compare]  # a misfit fails before any evaluation
    energy = GroupEnergy(model, groups, multipliers, (3, *dataset.test.images.shape[-2:]),
                         energy_table)
    evaluator = Evaluator(model, groups, evaluation_loader(dataset, n_test), mode,
                          recalibration_batches(dataset, recalibrate))
    trained_accuracy = evaluator.accuracy({})
    table = sensitivity(evaluator, energy, multipliers, trained_accuracy)
    greedy = greedy_assignment(evaluator, energy, multipliers, table, trained_accuracy,
                               tolerance)
    if isinstance(genotype, genotypes.Genotype):  # the assignment as a genotype train.py retrains
        greedy["genotype"] = genotypes.to_dict(genotype_of(greedy["assignment"], genotype))
    return {
        "dataset": dataset.name, "test_images": len(evaluator.loader.labels), "mode": mode,
        "recalibration_images": sum(len(x) for x in evaluator.recalibration),
        "accelerator": energy.table.name, "tolerance": tolerance,
        "multipliers": [m.name for m in multipliers],
        "energy_model": "energy_estimator.profile of the network, per image",
        "trained": {"accuracy": trained_accuracy, "energy_uj": energy.trained_uj},
        "groups": [{"name": g.name, "multiplier": g.multiplier, "layers": list(g.layers),
                    "macs": energy.macs[g.name], "energy_uj": energy.as_trained[g.name]}
                   for g in groups],
        "float_layers": float_layers(model),
        "sensitivity": table,
        "greedy": greedy,
        "uniform": uniform(evaluator, energy, multipliers, trained_accuracy),
        "compared": [compared(evaluator, energy, label, choice, trained_accuracy)
                     for label, choice in choices],
        "evaluations": evaluator.count,
        "elapsed_s": time.time() - started,
    }
