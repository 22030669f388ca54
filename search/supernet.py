"""The one interface of a search space's supernet, as the search program, the Architect and
the reports use it. `model_search.Network` (DARTS cells) and `backbones.search.ResNetSupernet`
(a ResNet backbone) implement it; nothing else in the search path asks which one it has."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

import torch
import torch.nn as nn


@runtime_checkable
class Supernet(Protocol):
    """A supernet: an nn.Module whose parameters split into alphas and weights, with an
    energy model over its alphas and a derivation of its genotype."""

    criterion: nn.Module
    candidates: tuple[str, ...]

    def alphas(self) -> Iterator[nn.Parameter]: ...
    def weights(self) -> Iterator[nn.Parameter]: ...
    def named_weights(self) -> Iterator[tuple[str, nn.Parameter]]: ...
    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...
    def genotype(self): ...
    def expected_energy_uj(self) -> torch.Tensor: ...
    def reference_energy_uj(self) -> float: ...
    def genotype_energy_uj(self, genotype=None) -> float: ...

    def alpha_softmax(self) -> dict[str, torch.Tensor]:
        """{table name: detached 2-D softmax}, drawn as heatmaps."""

    def alpha_axes(self, table: str) -> tuple[list[str] | None, list[str]]:
        """(row labels or None, column labels) of an `alpha_softmax()` table."""

    def multiplier_set(self) -> list[str]:
        """The multipliers searched (for the search-surrogate report)."""

    def multiplier_softmax(self) -> dict[str, tuple[torch.Tensor, list[str]]]:
        """{table: (detached [rows, multiplier_set()] softmax, row labels)}: the multiplier
        decisions, per edge and conv op (cells) or per searched layer (backbone); drawn as
        heatmaps and kept per epoch in history.json."""

    def describe(self) -> dict:
        """The genotype record's description of the space: `search_space` (text) and
        `multiplier_set` (None where the space has no separate set)."""

    def derived_accuracy(self, genotype, loaders: dict,
                         evaluate: Callable[..., dict]) -> dict:
        """Held-out accuracy of `genotype` computed from the supernet's weights (one-shot),
        or {} where the space has no such evaluation."""
