"""Command-line wiring of the backbone space for train_search.py (`--space resnet`): its flags,
their per-dataset defaults, the `ResNetSpace` they describe and the supernet."""

from __future__ import annotations

import argparse

import torch.nn as nn

from approx import DEFAULT_EMULATION, Emulation
from backbones.costs import ALWAYS, ResNetSpace, space_costs
from backbones.search import ResNetSupernet
from operations import OperationError, conv_factory
from search.cell_cli import split_names

# The embedded dataset gets a space whose largest network is a ResNet-20 at 16/32/64 channels
# (so that the default search fits 15 minutes on 2 CPU cores); elsewhere the choices of a
# typical backbone search (2 or 3 stages, 2-4 blocks, base width 16 or 32).
SPACE_DEFAULTS = {
    "shapes": {"resnet_stages": "3", "resnet_blocks": "1,2,3", "resnet_widths": "8,16"},
    "default": {"resnet_stages": "2,3", "resnet_blocks": "2,3,4", "resnet_widths": "16,32"},
}


# the flags this space reads and the cell space would silently ignore
FLAGS = ("resnet_stages", "resnet_blocks", "resnet_widths", "resnet_granularity",
         "resnet_shortcut")


def add_search_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("backbone space (--space resnet)")
    group.add_argument("--resnet_stages", default=None,
                       help="choices of the number of stages (shapes: 3, else 2,3)")
    group.add_argument("--resnet_blocks", default=None,
                       help="choices of basic blocks per stage (shapes: 1,2,3, else 2,3,4)")
    group.add_argument("--resnet_widths", default=None,
                       help="choices of the base width, doubled per stage (shapes: 8,16, "
                            "else 16,32)")
    group.add_argument("--resnet_granularity", default="layer", choices=("layer", "stage"),
                       help="one multiplier choice per conv layer or per stage")
    group.add_argument("--resnet_shortcut", default="A", choices=("A", "B"),
                       help="A: zero-padding identity (He et al.), B: 1x1 conv projection")


def integers(flag: str, text: str) -> tuple[int, ...]:
    """A comma-separated list of whole numbers, e.g. '1,2,3'."""
    try:
        return tuple(int(item) for item in str(text).split(",") if item.strip())
    except ValueError:
        raise OperationError(f"{flag} {text!r}: give comma-separated whole numbers such as "
                             f"'1,2,3'") from None


def space_from_args(args: argparse.Namespace, multipliers: list[str],
                    emulation: Emulation = DEFAULT_EMULATION) -> ResNetSpace:
    """The space of the flags; the candidates are float, exact and `multipliers` (checked in
    `emulation`'s library)."""
    for key, value in SPACE_DEFAULTS.get(args.dataset, SPACE_DEFAULTS["default"]).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    candidates = tuple(dict.fromkeys([*ALWAYS, *multipliers]))
    for name in candidates[len(ALWAYS):]:
        conv_factory(name, emulation)  # a bad name or table fails before any write
    choices = [integers(f"--{key}", getattr(args, key)) for key in
               ("resnet_stages", "resnet_blocks", "resnet_widths")]
    try:
        return ResNetSpace(*choices, candidates, args.resnet_shortcut, args.resnet_granularity)
    except ValueError as error:
        raise OperationError(f"--space resnet: {error}") from None


def check(args, emulation: Emulation) -> ResNetSpace:
    """The space of the flags, each setting checked now (a bad one: one-line error)."""
    return space_from_args(args, split_names(args.multipliers), emulation)


def build_supernet(args, dataset, energy_table, emulation: Emulation):
    """(candidate multipliers, supernet) for train_search.py."""
    space = check(args, emulation)
    image_size = dataset.train.images.shape[-1]
    costs = space_costs(space, dataset.num_classes, image_size, energy_table,
                        objective=args.energy_objective, emulation=emulation)
    model = ResNetSupernet(space, dataset.num_classes, nn.CrossEntropyLoss(),
                           input_size=image_size, emulation=emulation, costs=costs)
    return list(space.candidates), model
