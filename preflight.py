"""Checks of a run's inputs that the library modules cannot make on their own, run before the
first epoch and before the run directory is created: each failure is a `PreflightError` with
one line naming the input and the fix (the CLIs print it and exit with status 2)."""

from __future__ import annotations

import difflib
import json
import zipfile
from collections.abc import Iterable
from pathlib import Path

from approx import DEFAULT_EMULATION, Emulation
from approx.mixed import FLOAT
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
