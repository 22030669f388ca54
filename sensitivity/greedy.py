"""A greedy per-group multiplier assignment within an accuracy tolerance, after ALWANN
(Mrazek et al., "ALWANN: Automatic Layer-Wise Approximation of Deep Neural Network
Accelerators without Retraining", ICCAD 2019).

From the network as trained, repeatedly take the move (group -> multiplier) with the most
energy saved per accuracy lost, estimated from the sensitivity table (the energy saved against
the group's current multiplier, the measured single-group drop minus that of its current
multiplier); moves whose estimated loss is not positive come first, the largest saving first.
Apply it, evaluate the whole network, keep it while the accuracy drop from the network as
trained stays within the tolerance, else undo it; every move is tried once at most, and moves
that no longer save energy are dropped. Stops when no move is left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from approx import Multiplier
from sensitivity.costs import GroupEnergy
from sensitivity.measure import Evaluator

# accuracies are fractions of the test set: a drop equal to the tolerance is within it
TOLERANCE_SLACK = 1e-9


def greedy_assignment(evaluator: Evaluator, energy: GroupEnergy,
                      multipliers: Sequence[Multiplier], sensitivity: Sequence[dict],
                      trained_accuracy: float, tolerance: float) -> dict:
    """The kept choice, its accuracy and energy, and every step tried (module docstring)."""
    by_name = {m.name: m for m in multipliers}
    drops = {(r["group"], r["multiplier"]): r["accuracy_drop"] for r in sensitivity}
    moves = [(r["group"], by_name[r["multiplier"]]) for r in sensitivity]
    choice: dict[str, Multiplier] = {}
    accuracy, steps = trained_accuracy, []
    while True:
        moves = [move for move in moves if _saving(energy, choice, *move) > 0]
        if not moves:
            break
        move = max(moves, key=lambda m: _priority(energy, drops, choice, *m))
        moves.remove(move)
        trial = {**choice, move[0]: move[1]}
        trial_accuracy = evaluator.accuracy(trial)
        kept = trained_accuracy - trial_accuracy <= tolerance + TOLERANCE_SLACK
        steps.append({"group": move[0], "multiplier": move[1].name, "accuracy": trial_accuracy,
                      "accuracy_drop": trained_accuracy - trial_accuracy,
                      "energy_uj": energy.energy_uj(trial), "kept": kept})
        if kept:
            choice, accuracy = trial, trial_accuracy
    energy_uj = energy.profile_uj(choice)
    return {"assignment": {g.name: choice[g.name].name if g.name in choice else g.multiplier
                           for g in evaluator.groups},
            "moved": sorted(choice), "accuracy": accuracy,
            "accuracy_drop": trained_accuracy - accuracy, "energy_uj": energy_uj,
            "energy_saved_uj": energy.trained_uj - energy_uj, "steps": steps}


def _saving(energy: GroupEnergy, choice: Mapping[str, Multiplier], group: str,
            multiplier: Multiplier) -> float:
    """Energy saved by moving `group` from its current multiplier to `multiplier`."""
    return energy.group_uj(group, choice.get(group)) - energy.group_uj(group, multiplier)


def _priority(energy: GroupEnergy, drops: Mapping, choice: Mapping[str, Multiplier],
              group: str, multiplier: Multiplier) -> tuple[bool, float]:
    """(free, saving) for a move estimated to lose nothing, else (False, saving per loss)."""
    current = choice.get(group)
    loss = drops[group, multiplier.name] - (0.0 if current is None
                                             else drops[group, current.name])
    saving = _saving(energy, choice, group, multiplier)
    return (True, saving) if loss <= 0 else (False, saving / loss)
