"""The short training proxy: how good is a genotype, judged without a full retrain.

`proxy_accuracy` trains the discrete network of a genotype (`model.NetworkCIFAR`, through
`model.build_network`, so a backbone genotype works too) from scratch for a few
epochs on the search's weights split and returns its accuracy on the search's validation
split (`ProxyData.of_search`: the split `train_search.py` trains the weights and the alphas
on). The recipe is SGD with momentum and a per-step cosine learning rate, no auxiliary head,
no drop path, no cutout. Everything is seeded by the recipe (the network's initialisation
in a forked RNG, the batch order by the loader's seed), so one genotype always gets the same
score and the caller's RNG is left alone. A candidate whose training diverges is not an
error: it simply scores what its network predicts (about chance).

The black-box strategies (blackbox/) score each candidate with it; anything that must rank
genotypes cheaply (e.g. several searches' results) can call it with the same recipe.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn as nn

import data
from approx.settings import DEFAULT_EMULATION, Emulation
from model import build_network
from runner.skeleton import evaluate


@dataclass(frozen=True)
class ProxyRecipe:
    """How a candidate is trained: epochs, SGD settings, network size, seed."""

    epochs: int = 1
    batch_size: int = 128
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    init_channels: int = 8
    layers: int = 5
    seed: int = 2

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"proxy recipe: epochs ({self.epochs}) and batch size "
                             f"({self.batch_size}) must be at least 1 (--proxy_epochs)")

    @classmethod
    def from_settings(cls, settings, epochs: int, batch_size: int | None = None) -> ProxyRecipe:
        """The recipe of a search's settings (an argparse namespace: its weight flags and
        network size), trained for `epochs`, at `batch_size` where given (else the search's).
        The recipe trains by SGD: a search whose weights train by another optimiser leaves the
        recipe its own SGD learning rate."""
        values = {f.name: getattr(settings, f.name) for f in fields(cls)
                  if f.name != "epochs" and getattr(settings, f.name, None) is not None}
        if getattr(settings, "weight_optimizer", "sgd") != "sgd":
            values.pop("learning_rate", None)
        if batch_size is not None:
            values["batch_size"] = batch_size
        return cls(epochs=epochs, **values)


@dataclass(frozen=True)
class ProxyData:
    """The images a proxy trains on and scores on, and how they are normalised."""

    train: data.ImageData
    val: data.ImageData
    num_classes: int
    mean: tuple
    std: tuple

    @classmethod
    def of_search(cls, dataset: data.Dataset, train_portion: float, data_seed: int,
                  val_images: int | None = None) -> ProxyData:
        """The search's split: the weights' part to train, the first `val_images` of the
        alphas' part (all of it: None) to score, as train_search.py splits them."""
        weights_part, alphas_part = data.search_split(dataset.train, train_portion, data_seed)
        return cls(weights_part, alphas_part.subset(slice(0, val_images)), dataset.num_classes,
                   dataset.mean, dataset.std)


def train_network(genotype, proxy_data: ProxyData, recipe: ProxyRecipe, *,
                  device: torch.device | str = "cpu",
                  emulation: Emulation = DEFAULT_EMULATION) -> nn.Module:
    """The genotype's network trained from scratch by `recipe` on `proxy_data.train`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        network = build_network(genotype, recipe.init_channels, proxy_data.num_classes,
                                recipe.layers, False, emulation=emulation).to(device)
    loader = data.BatchLoader(proxy_data.train, recipe.batch_size, mean=proxy_data.mean,
                              std=proxy_data.std, train=True, device=device, seed=recipe.seed)
    optimizer = torch.optim.SGD(network.parameters(), recipe.learning_rate,
                                momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer,
                                                          recipe.epochs * len(loader))
    criterion = nn.CrossEntropyLoss()
    network.train()
    for _ in range(recipe.epochs):
        for x, y in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(network(x), y)
            loss.backward()
            nn.utils.clip_grad_norm_(network.parameters(), recipe.grad_clip)
            optimizer.step()
            schedule.step()
    return network


def accuracy_on(network: nn.Module, images: data.ImageData, proxy_data: ProxyData,
                batch_size: int, device: torch.device | str = "cpu") -> float:
    """Top-1 accuracy of `network` on `images`, normalised as `proxy_data`'s."""
    loader = data.BatchLoader(images, 2 * batch_size, mean=proxy_data.mean, std=proxy_data.std,
                              train=False, device=device)
    return evaluate(network, loader, "proxy")["proxy_acc"]


def proxy_accuracy(genotype, proxy_data: ProxyData, recipe: ProxyRecipe, *,
                   device: torch.device | str = "cpu",
                   emulation: Emulation = DEFAULT_EMULATION) -> float:
    """Validation accuracy of the genotype's network after the short training of `recipe`."""
    network = train_network(genotype, proxy_data, recipe, device=device, emulation=emulation)
    return accuracy_on(network, proxy_data.val, proxy_data, recipe.batch_size, device)
