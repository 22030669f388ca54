"""Command-line wiring of the DARTS cell space for train_search.py (`--space darts`, the
default): the flags only it reads, its settings checked before the data loads, and its
supernet with the energy model priced on the network train.py will build. The backbone
space's wiring is backbones/cli.py; both give train_search.py the same three names."""

from __future__ import annotations

import torch.nn as nn

import genotypes
import operations
from approx import Emulation
from model_search import Network
from search.energy_model import SupernetEnergy
from search.space import SearchSpace, exact_member
from topology import NetworkShape

# the flags this space reads and the backbone space would silently ignore
FLAGS = ("primitives", "multiplier_search", "multiplier_granularity", "partial_channels",
         "energy_channels", "energy_layers", "fixed_multiplier", "multiplier_sampling",
         "max_parameter_free")
NO_CAP_FLAG = -1  # --max_parameter_free -1: no cap


def split_names(text: str) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def check(args, emulation: Emulation) -> dict:
    """The candidate ops and multiplier set of the supernet, as Network keywords (each name
    checked now: a bad one raises a one-line ValueError)."""
    primitives, multipliers = split_names(args.primitives), split_names(args.multipliers)
    cap = getattr(args, "max_parameter_free", NO_CAP_FLAG)
    if cap < NO_CAP_FLAG:
        raise ValueError(f"--max_parameter_free {cap}: give a count >= 0, or {NO_CAP_FLAG} "
                         f"for no cap")
    operations.check_multipliers(multipliers, emulation)
    exact = exact_member(multipliers, emulation)  # one kind: signed or unsigned
    fixed = fixed_setting(args, exact, emulation)
    if args.multiplier_search == "flat" or not multipliers:  # no multipliers: float convs
        space = {"candidates": operations.candidate_ops(primitives, multipliers, emulation),
                 "fixed_multiplier": fixed}
    else:
        if exact not in multipliers:
            multipliers.insert(0, exact)
        space = {"candidates": operations.candidate_ops(primitives, (), emulation),
                 "multipliers": tuple(multipliers),
                 "multiplier_granularity": args.multiplier_granularity,
                 "fixed_multiplier": fixed}
    SearchSpace.of(**space)  # a space that cannot be searched fails now, before the data
    return space


def fixed_setting(args, exact: str, emulation: Emulation) -> str:
    """--fixed_multiplier in its canonical form (default: `exact`). `search` leaves every
    group the search can take (genotypes.SEARCHABLE_FIXED_GROUPS) to it, the FactorizedReduces
    on `exact`; a black-box strategy cannot take them (it names each group's multiplier)."""
    given = args.fixed_multiplier or exact
    if given == genotypes.SEARCHED_FIXED:
        given = genotypes.fixed_spec({group: genotypes.SEARCHED_FIXED
                                      if group in genotypes.SEARCHABLE_FIXED_GROUPS else exact
                                      for group in genotypes.FIXED_LAYER_GROUPS})
    groups = genotypes.fixed_assignment(given, "--fixed_multiplier", searchable=True)
    searched = [g for g, m in groups.items() if m == genotypes.SEARCHED_FIXED]
    operations.check_multipliers([m for m in groups.values() if m != genotypes.SEARCHED_FIXED],
                                 emulation)
    strategy = getattr(args, "strategy", "darts")
    if searched and strategy != "darts":
        raise ValueError(f"--fixed_multiplier {args.fixed_multiplier}: --strategy {strategy} "
                         f"does not search the fixed layers ({', '.join(searched)}); name "
                         f"their multipliers, or use --strategy darts")
    return genotypes.fixed_spec(groups)


def derivation_options(args) -> dict:
    """The Network keywords of --multiplier_sampling and --max_parameter_free (configs
    written before these flags lack them: their searches ran the mixture, uncapped)."""
    cap = getattr(args, "max_parameter_free", NO_CAP_FLAG)
    return {"multiplier_sampling": getattr(args, "multiplier_sampling", "mixture"),
            "max_parameter_free": None if cap == NO_CAP_FLAG else cap}


def deployed_energy(args, space: dict, num_classes: int, image_size: int, table,
                    emulation: Emulation) -> SupernetEnergy:
    """The supernet's energy model, priced on the network train.py will build from the derived
    genotype (--energy_channels, --energy_layers, --energy_image_size; default: the search's)."""
    shape = NetworkShape(args.energy_channels or args.init_channels, num_classes,
                         args.energy_layers or args.layers,
                         input_size=args.energy_image_size or image_size)
    return SupernetEnergy.priced(SearchSpace.of(**space), shape, table, args.energy_objective,
                                 emulation)


def build_supernet(args, dataset, energy_table, emulation: Emulation):
    """(candidate ops, supernet) for train_search.py."""
    space = check(args, emulation)
    image_size = dataset.train.images.shape[-1]
    energy = deployed_energy(args, space, dataset.num_classes, image_size, energy_table,
                             emulation)
    model = Network(args.init_channels, dataset.num_classes, args.layers, nn.CrossEntropyLoss(),
                    emulation=emulation, input_size=image_size,
                    partial_channels=args.partial_channels, energy=energy, **space,
                    **derivation_options(args))
    return list(model.candidates), model
