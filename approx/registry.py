"""Resolving a multiplier spec (built-in name, EvoApprox name in --lut_dir, .bin path), cached."""

import dataclasses
from functools import cache
from pathlib import Path

from approx.builtin import builtin_multiplier, builtin_names
from approx.errors import MultiplierError
from approx.evoapprox import load_table_file
from approx.multiplier import Multiplier
from approx.spec import looks_like_path, split_power


def unknown_spec_error(spec: str, lut_dir: str | None) -> MultiplierError:
    where = f"no {Path(lut_dir) / (spec + '.bin')}" if lut_dir else "no --lut_dir given"
    return MultiplierError(
        f"unknown multiplier '{spec}' ({where}); built-ins: {', '.join(builtin_names())} "
        "(also trunc<k>, bam<h>_<v>, drum<k>); for EvoApproxLib circuits pass --lut_dir DIR "
        "holding <name>.bin truth tables (see python -m approx.convert) or a path to a .bin"
    )


def resolve(spec: str, lut_dir: str | None) -> Multiplier:
    builtin = builtin_multiplier(spec)
    if builtin is not None:
        return builtin
    if looks_like_path(spec):
        return load_table_file(Path(spec))
    if lut_dir is not None and (Path(lut_dir) / f"{spec}.bin").is_file():
        return load_table_file(Path(lut_dir) / f"{spec}.bin")
    raise unknown_spec_error(spec, lut_dir)


def with_power(multiplier: Multiplier, power_mw: float) -> Multiplier:
    """A copy costed with a user-supplied synthesis power (mW at the exact circuit's clock)."""
    if power_mw < 0:
        raise MultiplierError(f"multiplier {multiplier.name}: power {power_mw} mW must be >= 0")
    known = multiplier.power_mw
    known = "" if known is None else f" (not the catalogue's {known} mW)"
    note = f"power {power_mw} mW supplied by the user{known}"
    return dataclasses.replace(
        multiplier, power_mw=power_mw, relative_energy=None, energy_basis="", note=note
    )


@cache
def cached_multiplier(spec: str, lut_dir: str | None, power_mw: float | None) -> Multiplier:
    multiplier = resolve(spec, lut_dir)
    return multiplier if power_mw is None else with_power(multiplier, power_mw)


def load_multiplier(
    spec: str | Multiplier, lut_dir: str | Path | None = None, power_mw: float | None = None
) -> Multiplier:
    """The Multiplier for `spec`: a built-in name, an EvoApprox name found as <lut_dir>/<name>.bin,
    or a path to a .bin, optionally followed by ':<power in mW>' (approx.spec). The same spec,
    lut_dir and power_mw return the same object."""
    if isinstance(spec, Multiplier):
        return spec if power_mw is None else with_power(spec, power_mw)
    if not isinstance(spec, str) or not spec:
        raise MultiplierError(f"multiplier spec {spec!r} must be a non-empty name or .bin path")
    spec, spec_power = split_power(spec)
    if spec_power is not None:
        if power_mw is not None and float(power_mw) != spec_power:
            raise MultiplierError(f"multiplier '{spec}': two powers given ({spec_power} mW in "
                                  f"the spec, power_mw={power_mw})")
        power_mw = spec_power
    if looks_like_path(spec):
        spec = str(Path(spec).expanduser().resolve())
    directory = None if lut_dir is None else str(Path(lut_dir).expanduser().resolve())
    return cached_multiplier(spec, directory, None if power_mw is None else float(power_mw))


def available_multipliers(lut_dir: str | Path | None = None) -> list[str]:
    """Built-in example names plus the <name>.bin tables found in lut_dir."""
    names = builtin_names()
    if lut_dir is not None:
        directory = Path(lut_dir)
        if not directory.is_dir():
            raise MultiplierError(f"--lut_dir {directory} is not a directory of .bin truth tables")
        names += sorted(path.stem for path in directory.glob("*.bin"))
    return names
