"""Backbone search spaces beside the DARTS cells: a CIFAR-style basic-block ResNet.

- `genotype`: `ResNetGenotype` (JSON kind `resnet`), published backbones by name (`resnet20`).
- `resnet`: the discrete network `ResNetCIFAR` built from a genotype.
- `costs`: per-layer, per-multiplier energy tables of the search space and E(alpha).
- `search`: the supernet (`ResNetSupernet`) with the interface of `model_search.Network`.
"""

from backbones.genotype import (
    FLOAT,
    KIND,
    BackboneError,
    ResNetGenotype,
    conv_layers,
    from_dict,
    is_backbone_dict,
    named,
)

__all__ = ["FLOAT", "KIND", "BackboneError", "ResNetGenotype", "conv_layers", "from_dict",
           "is_backbone_dict", "named"]
