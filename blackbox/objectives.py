"""The two objectives of a black-box candidate: its proxy accuracy and its deployed energy.

Energy is read from the same energy model the differentiable search optimises
(`search.cell_cli.deployed_energy`: the search's energy objective, on the network
train.py builds, at the deployed size), so the fronts of every strategy share one energy
axis. Accuracy is the short training proxy (search/proxy.py) on the
search's own split; the held-out test accuracy of the same trained network is recorded
beside it, for the report only (no strategy ever sees it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

import topology
from search import cell_cli
from search.energy_model import SupernetEnergy
from search.proxy import ProxyData, ProxyRecipe, accuracy_on, train_network
from search.space import SearchSpace


@dataclass
class Problem:
    """Everything a candidate is scored with: the space's energy model, the proxy's data and
    recipe, the held-out images, the device and the emulation of the convs."""

    energy: SupernetEnergy
    proxy_data: ProxyData
    recipe: ProxyRecipe
    test_images: object  # data.ImageData
    device: torch.device
    emulation: object  # approx.Emulation

    @property
    def space(self) -> SearchSpace:
        return self.energy.space

    def energy_uj(self, genotype) -> float:
        return self.energy.genotype_uj(genotype)

    def evaluate(self, genotype) -> dict:
        """`val_acc` (the proxy, what strategies optimise), `test_acc` (held out) and
        `energy_uj` of a candidate."""
        network = train_network(genotype, self.proxy_data, self.recipe, device=self.device,
                                emulation=self.emulation)
        score = {name: accuracy_on(network, images, self.proxy_data, self.recipe.batch_size,
                                   self.device)
                 for name, images in (("val_acc", self.proxy_data.val),
                                      ("test_acc", self.test_images))}
        return {**score, "energy_uj": self.energy_uj(genotype)}

    def max_energy_uj(self) -> float:
        """The energy of the costliest genotype of the space: per node, the two input edges
        whose costliest op costs most (a fixed reference for hypervolumes)."""
        costs = self.energy.costs
        total = costs.fixed_uj
        for table in (costs.normal, costs.reduce):
            per_edge = table.max(dim=1).values.tolist()
            for node, start in enumerate(topology.edge_offsets(costs.steps)):
                inputs = sorted(per_edge[start:start + topology.num_inputs(node)], reverse=True)
                total += sum(inputs[:topology.GENOTYPE_INPUTS_PER_NODE])
        return total


def build_problem(args, dataset, device, emulation, energy_table) -> Problem:
    """The problem of a search's settings (train_search.py's flags) on `dataset`."""
    space_args = cell_cli.check(args, emulation)
    energy = cell_cli.deployed_energy(args, space_args, dataset.num_classes,
                                      dataset.train.images.shape[-1], energy_table, emulation)
    proxy_data = ProxyData.of_search(dataset, args.train_portion, args.data_seed,
                                     args.val_images)
    recipe = ProxyRecipe.from_settings(args, args.proxy_epochs)
    return Problem(energy, proxy_data, recipe, dataset.test, device, emulation)
