"""The split of a supernet's parameters into architecture parameters and weights.

DARTS keeps the two apart: the weight optimiser sees `weights()`, the architect `alphas()`.
A supernet (the DARTS cell network, the ResNet backbone) defines `named_alphas()`; this
mixin derives the rest from it, so every supernet splits its parameters the same way.
"""

from __future__ import annotations


class AlphaWeightSplit:
    """Mixin for an nn.Module with `named_alphas()`: `alphas()`, `arch_parameters()`,
    `named_weights()` and `weights()`."""

    def alphas(self):
        for _, alpha in self.named_alphas():
            yield alpha

    def arch_parameters(self):
        """DARTS name: the list of the architecture parameters."""
        return list(self.alphas())

    def named_weights(self):
        alpha_ids = {id(alpha) for alpha in self.alphas()}
        for name, param in self.named_parameters():
            if id(param) not in alpha_ids:
                yield name, param

    def weights(self):
        for _, param in self.named_weights():
            yield param
