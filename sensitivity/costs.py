"""Energy per image of the network under a per-group multiplier choice, priced by
energy_estimator.profile on the run's accelerator (the cost model train.py reports with).

The network is profiled as trained and once with every group on each candidate multiplier (the
uniform assignments); a group's energy on a multiplier is the sum of its layers' rows. Every
term of the energy model is per layer, so the energy of any mixed choice is the trained
network's minus each moved group's saving; `profile_uj` prices a choice directly instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch.nn as nn

import energy_estimator
from approx import Multiplier, emulating
from approx.settings import FLOAT_MODE
from export.assignment import cost_by_layer
from sensitivity.groups import Group, assigned


class GroupEnergy:
    """Energies (µJ per image) of the network and of each group as trained and on each
    candidate multiplier."""

    def __init__(self, model: nn.Module, groups: Sequence[Group],
                 multipliers: Sequence[Multiplier], input_size, energy_table=None):
        self.model, self.groups, self.input_size = model, list(groups), tuple(input_size)
        self.table = energy_estimator.load_energy_table(energy_table)
        trained = self._profile({})
        self.trained_uj = trained.energy_uj
        rows = cost_by_layer(trained)
        self.macs = {g.name: sum(rows[name]["macs"] for name in g.layers) for g in self.groups}
        self.as_trained = {g.name: _group_uj(rows, g) for g in self.groups}
        self.uniform_uj: dict[str, float] = {}
        self.on: dict[tuple[str, str], float] = {}  # (group, multiplier) -> µJ
        for multiplier in multipliers:
            report = self._profile(self.uniform(multiplier))
            self.uniform_uj[multiplier.name] = report.energy_uj
            rows = cost_by_layer(report)
            self.on.update({(g.name, multiplier.name): _group_uj(rows, g) for g in self.groups})

    def uniform(self, multiplier: Multiplier) -> dict[str, Multiplier]:
        """The choice that puts every group on `multiplier`."""
        return {group.name: multiplier for group in self.groups}

    def group_uj(self, group: str, multiplier: Multiplier | None) -> float:
        """The group's energy on `multiplier` (None: as trained)."""
        if multiplier is None:
            return self.as_trained[group]
        return self.on[group, multiplier.name]

    def saved_uj(self, group: str, multiplier: Multiplier) -> float:
        """Energy saved by moving `group` alone from its trained multiplier to `multiplier`."""
        return self.as_trained[group] - self.group_uj(group, multiplier)

    def energy_uj(self, choice: Mapping[str, Multiplier]) -> float:
        """The network's energy with the groups of `choice` moved (sum of per-layer terms)."""
        return self.trained_uj - sum(self.saved_uj(g, m) for g, m in choice.items())

    def profile_uj(self, choice: Mapping[str, Multiplier]) -> float:
        """The network's energy with the groups of `choice` moved, profiled anew."""
        return self._profile(choice).energy_uj

    def _profile(self, choice: Mapping[str, Multiplier]) -> energy_estimator.Report:
        # costs depend on shapes and multipliers only: profile the float forward (fast)
        with emulating(self.model, mode=FLOAT_MODE), assigned(self.groups, choice):
            return energy_estimator.profile(self.model, self.input_size, self.table)


def _group_uj(rows: Mapping[str, dict], group: Group) -> float:
    return sum(rows[name]["energy_uj"] for name in group.layers)
