"""Checks of a run's inputs that the library modules cannot make on their own, run before the
first epoch and before the run directory is created: each failure is a `PreflightError` with
one line naming the input and the fix (the CLIs print it and exit with status 2)."""

from __future__ import annotations

import difflib
import json
import zipfile
from collections.abc import Iterable
from pathlib import Path

import topology
from approx import DEFAULT_EMULATION, Emulation
from approx.mixed import FLOAT
from architect import BudgetController, EnergyLoss
from genotypes import Genotype, split_op_name
from runner.rundir import CHECKPOINT_FILE, CONFIG_FILE


class PreflightError(ValueError):
    """An input that would make the run fail (or waste its time) once started."""


def check_epochs(epochs: int) -> None:
    """A run of no epochs would write untrained results (a genotype of random alphas)."""
    if epochs < 1:
        raise PreflightError(f"--epochs {epochs}: a run needs at least one epoch; pass "
                             f"--epochs 1 or more")


def check_resume_dir(path: str | Path) -> None:
    """--resume DIR: a run directory holding its config and a readable checkpoint."""
    path = Path(path)
    if not path.is_dir():
        raise PreflightError(f"--resume {path}: no such run directory; pass the directory of "
                             f"an earlier run (it holds {CONFIG_FILE} and {CHECKPOINT_FILE})")
    if not (path / CONFIG_FILE).is_file():
        raise PreflightError(f"--resume {path}: no {CONFIG_FILE} there, so not a run "
                             f"directory; pass the directory of an earlier run")
    try:
        json.loads((path / CONFIG_FILE).read_text())
    except (OSError, ValueError) as error:
        raise PreflightError(f"--resume {path}: {CONFIG_FILE} is unreadable ({error}); start "
                             f"the run again with a new --save directory") from None
    checkpoint = path / CHECKPOINT_FILE
    if not checkpoint.is_file():
        raise PreflightError(f"--resume {path}: no {CHECKPOINT_FILE} there (the run stopped "
                             f"before its first checkpoint); start it again with --save {path}")
    if not zipfile.is_zipfile(checkpoint):  # torch.save writes a zip; a torn file is not one
        raise PreflightError(f"--resume {path}: {checkpoint} is not a readable checkpoint; "
                             f"start the run again with a new --save directory")


def check_stl_signals(flag: str, spec: str, used: Iterable[str], recorded: Iterable[str]) -> None:
    """Every signal of an STL spec must be one the run records (a typo otherwise fails only
    after the whole run)."""
    recorded = sorted(recorded)
    for signal in sorted(set(used) - set(recorded)):
        close = difflib.get_close_matches(signal, recorded, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise PreflightError(f"{flag} {spec!r}: unknown signal {signal!r}; {hint}the run "
                             f"records {', '.join(recorded)}")


def check_multiplier_power(flag: str, multipliers: Iterable[str],
                           emulation: Emulation = DEFAULT_EMULATION) -> None:
    """Every multiplier a run estimates energy for needs a known power (a built-in, or a
    table that the EvoApproxLib catalogue identifies); an unknown name fails in the loader
    (names are resolved in `emulation`'s library)."""
    for spec in multipliers:
        multiplier = emulation.multiplier(spec)
        if multiplier.relative_energy is None:
            raise PreflightError(f"{flag}: multiplier {spec!r} has no known power (its table "
                                 f"is not in the EvoApproxLib catalogue), so its energy cannot "
                                 f"be estimated; use a catalogued table or a built-in multiplier")


def genotype_multipliers(genotype) -> list[str]:
    """The multipliers a genotype runs on (a cell's `op@multiplier` names, or a backbone's
    per-layer multipliers), each once; float convs have none."""
    if isinstance(genotype, Genotype):
        names = [split_op_name(op)[1] for op, _ in [*genotype.normal, *genotype.reduce]]
    else:
        names = list(genotype.multipliers)
    return sorted({name for name in names if name not in (None, FLOAT)})


def check_warmup(value, warmup: int, epochs: int) -> None:
    """The weight-only warm-up (`value` as given, `warmup` epochs) must leave at least one
    epoch that trains the architecture (else the genotype is derived from its initial alphas)."""
    if warmup >= epochs:
        raise PreflightError(f"--warmup_epochs {value}: {warmup} warm-up epoch(s) of --epochs "
                             f"{epochs} leave no epoch that trains the architecture; pass "
                             f"--warmup_epochs {epochs - 1} or less, or more --epochs")


def check_float_warmup(value, warmup: int, epochs: int) -> None:
    """The retrain's float32 warm-up (`value` as given, `warmup` epochs) fits in its epochs (all
    of them: a float-trained network evaluated on its multipliers, without their training)."""
    if warmup > epochs:
        raise PreflightError(f"--float_warmup_epochs {value}: {warmup} float32 epochs exceed "
                             f"--epochs {epochs}; pass --float_warmup_epochs {epochs} or less")


def smallest_image_size(layers: int) -> int:
    """The smallest image side a DARTS cell network of `layers` cells runs on: each reduction
    cell halves the side and its factorized reduction takes two offset halves of an even
    side, so the side must be a multiple of 2 ** (number of reduction cells)."""
    return 2 ** len(set(topology.reduction_cells(layers)))


def check_image_size(flag: str, size: int, layers: int, layers_flag: str = "--layers") -> None:
    """An image side the cell network of `layers` cells can halve at each reduction."""
    step = smallest_image_size(layers)
    if size < step or size % step:
        reductions = step.bit_length() - 1
        workable = max(step, size // step * step)
        raise PreflightError(f"{flag} {size}: the {reductions} reduction cell(s) of "
                             f"{layers_flag} {layers} halve the image {reductions} time(s), so "
                             f"its side must be a multiple of {step} (the smallest workable is "
                             f"{step}); pass {flag} {workable}")


def check_at_least(flag: str, value, minimum, why: str) -> None:
    """A numeric flag below its smallest meaningful value."""
    if value is not None and value < minimum:
        raise PreflightError(f"{flag} {value}: {why}; pass {flag} {minimum} or more")


def check_search_args(args, warmup: int) -> None:
    """The numbers of train_search.py that would otherwise fail inside the network or cost
    model, or waste the run (`warmup`: --warmup_epochs as a count)."""
    check_warmup(args.warmup_epochs, warmup, args.epochs)
    EnergyLoss(args.energy_loss, 1.0, args.energy_budget)  # its own checks of the budget
    if args.budget_control:
        BudgetController(args.energy_budget)
    check_at_least("--energy_weight", args.energy_weight, 0,
                   "a negative weight would reward energy; 0 searches for accuracy alone")
    check_at_least("--arch_every", args.arch_every, 1,
                   "1 steps the alphas before every weight step, K before every K-th")
    check_crop_padding(args.crop_padding)
    for flag, value in (("--init_channels", args.init_channels), ("--layers", args.layers),
                        ("--energy_channels", args.energy_channels),
                        ("--energy_layers", args.energy_layers)):
        check_at_least(flag, value, 1, "a network needs at least one channel and one cell")
    if args.space == "darts":
        check_image_size("--image_size", args.image_size, args.layers)
        check_image_size("--energy_image_size", args.energy_image_size or args.image_size,
                         args.energy_layers or args.layers,
                         "--energy_layers" if args.energy_layers else "--layers")


def check_crop_padding(padding) -> None:
    check_at_least("--crop_padding", padding, 0,
                   "0 crops nothing; leave it out for an eighth of the image side")


def check_retrain_args(args, genotype) -> None:
    """The numbers of train.py that would otherwise fail inside the network of `genotype`."""
    for flag, value in (("--init_channels", args.init_channels), ("--layers", args.layers)):
        check_at_least(flag, value, 1, "a network needs at least one channel and one cell")
    check_crop_padding(args.crop_padding)
    if not 0 <= args.drop_path_prob < 1:
        raise PreflightError(f"--drop_path_prob {args.drop_path_prob}: a probability of "
                             f"dropping a path must be in [0, 1); pass e.g. 0.2, or 0 for none")
    if isinstance(genotype, Genotype):  # a backbone genotype fixes its own depth
        check_image_size("--image_size", args.image_size, args.layers)
