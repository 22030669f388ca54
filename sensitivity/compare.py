"""Another genotype's multipliers on the trained network's weights (`--compare GENOTYPE`).

A search derives a per-layer multiplier assignment (`sep_conv_3x3@drum4` on one edge, `@exact`
on another); retrained, its accuracy mixes the assignment with the retrain's own noise. Here
the assignment is applied to the weights of the network trained on the same cells with other
multipliers (e.g. exact 8-bit everywhere), without retraining, so it is measured on the same
footing as the greedy and uniform assignments of the sensitivity analysis: same weights,
same test images, same energy model. The genotype must have the run's ops on the run's edges;
only the multipliers may differ. Its fixed layers' multipliers (`fixed`, one or one per group)
go to the stem, preprocess, reduce_skip and classifier groups. `genotype_of` is the inverse: the
genotype of an assignment (e.g. the greedy one), which train.py retrains.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from approx import Emulation, Multiplier
from genotypes import (
    FIXED_LAYER_GROUPS,
    FLOAT_FIXED,
    MULTIPLIER_SEPARATOR,
    Genotype,
    fixed_assignment,
    fixed_spec,
    split_op_name,
)
from sensitivity.costs import GroupEnergy
from sensitivity.groups import CELL_KINDS, Group, cell_op_groups, op_group_names
from sensitivity.measure import Evaluator


class ComparedGenotypeError(ValueError):
    """A --compare genotype that does not fit the run: one line, exit status 2."""


def assignment_of(genotype: Genotype, run_genotype: Genotype, groups: Sequence[Group],
                  emulation: Emulation, source: str) -> dict[str, Multiplier]:
    """{group name: multiplier} that `genotype` gives the run's groups (module docstring)."""
    ops, run_ops = cell_op_groups(genotype), cell_op_groups(run_genotype)
    if sorted(name for name, _ in ops) != sorted(name for name, _ in run_ops):
        differ = sorted({name for name, _ in ops} ^ {name for name, _ in run_ops})
        raise ComparedGenotypeError(
            f"--compare {source}: its cells differ from the run's ({', '.join(differ[:3])}); "
            f"give a genotype with the run's ops on the run's edges (only multipliers differ)")
    specs = {name: multiplier for name, multiplier in ops}
    specs.update(fixed_assignment(genotype.fixed))
    choice = {}
    for group in groups:
        spec = specs.get(group.name)
        if spec is None or spec == FLOAT_FIXED:
            raise ComparedGenotypeError(
                f"--compare {source}: group '{group.name}' has no 8-bit multiplier there "
                f"(float32); give every conv op and 'fixed' a multiplier, e.g. op@exact")
        choice[group.name] = emulation.multiplier(spec)
    return choice


def genotype_of(assignment: Mapping[str, str], run_genotype: Genotype) -> Genotype:
    """`run_genotype` with each group's multiplier of `assignment` ({group name: multiplier
    name}); a group it does not name keeps the run's multiplier."""
    def cell(kind):
        edges = getattr(run_genotype, kind)
        return [(_on(op, assignment.get(f"{kind} {name}")), index) for name, (op, index)
                in zip(op_group_names(edges), edges, strict=True)]
    fixed = fixed_assignment(run_genotype.fixed)
    fixed.update((group, assignment[group]) for group in FIXED_LAYER_GROUPS
                 if group in assignment)
    return run_genotype._replace(normal=cell(CELL_KINDS[0]), reduce=cell(CELL_KINDS[1]),
                                 fixed=fixed_spec(fixed))


def _on(op: str, multiplier: str | None) -> str:
    """The op name `op` on `multiplier` (None: as it is)."""
    return op if multiplier is None else (
        f"{split_op_name(op)[0]}{MULTIPLIER_SEPARATOR}{multiplier}")


def compared(evaluator: Evaluator, energy: GroupEnergy, label: str,
             choice: dict[str, Multiplier], trained_accuracy: float) -> dict:
    """The record of one compared assignment: accuracy and energy on the run's weights."""
    accuracy = evaluator.accuracy(choice)
    energy_uj = energy.profile_uj(choice)
    return {"genotype": label, "assignment": {name: m.name for name, m in choice.items()},
            "moved": sorted(name for name, m in choice.items()
                            if m.name != _trained(evaluator, name)),
            "accuracy": accuracy, "accuracy_drop": trained_accuracy - accuracy,
            "energy_uj": energy_uj, "energy_saved_uj": energy.trained_uj - energy_uj}


def _trained(evaluator: Evaluator, group_name: str) -> str:
    return next(g.multiplier for g in evaluator.groups if g.name == group_name)
