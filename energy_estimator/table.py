"""Energy constants: loading and validating the JSON cost table.

The constants live only in a JSON file (default: `horowitz_45nm.json` next to this module,
45 nm figures from Horowitz, ISSCC 2014, and the EvoApprox8b exact multiplier's power); a user
passes another file with `--energy_table FILE`. The file holds `constants` (each
`{"value": number, "source": ...}`) and `sram_read_64b`, the SRAM size tiers
(`{"capacity_bytes", "read_pj"}`, smallest first).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

DEFAULT_TABLE_PATH = Path(__file__).with_name("horowitz_45nm.json")
TIER_KEYS = ("capacity_bytes", "read_pj")


class EnergyTableError(ValueError):
    """An energy table file that cannot be read or lacks a required key."""


@dataclass(frozen=True)
class EnergyTable:
    """Energy per operation (pJ) and per 64-bit memory read (pJ); hashable, so usable as a
    cache key. `sram_tiers` holds (capacity_bytes, read_pj) pairs, smallest first."""

    int8_add_pj: float
    int32_add_pj: float
    int8_mult_pj: float
    int32_mult_pj: float
    fp32_add_pj: float
    fp32_mult_pj: float
    dram_read_64b_pj: float
    exact_mult8_power_mw: float
    sram_tiers: tuple[tuple[int, float], ...]
    source: str = str(DEFAULT_TABLE_PATH)

    def sram_read_pj(self, working_set_bytes: float) -> float:
        """Energy of one 64-bit read from the smallest SRAM that holds the working set
        (the largest tier when none does)."""
        for capacity_bytes, read_pj in self.sram_tiers:
            if working_set_bytes <= capacity_bytes:
                return read_pj
        return self.sram_tiers[-1][1]

    @property
    def sram_capacity_bytes(self) -> int:
        return self.sram_tiers[-1][0]


CONSTANT_KEYS = tuple(f.name for f in fields(EnergyTable) if f.name not in ("sram_tiers", "source"))


def load_energy_table(path: str | Path | None = None) -> EnergyTable:
    """Load and validate an energy table (None: the default 45 nm table)."""
    path = Path(path) if path is not None else DEFAULT_TABLE_PATH
    data = _read_json(path)
    constants = _require(data, "constants", path, dict)
    values = {key: _constant_value(constants, key, path) for key in CONSTANT_KEYS}
    tiers = _sram_tiers(_require(data, "sram_read_64b", path, list), path)
    return EnergyTable(**values, sram_tiers=tiers, source=str(path))


def resolve_energy_table(table: EnergyTable | str | Path | None) -> EnergyTable:
    """An EnergyTable as given, or loaded from a path (None: the default table)."""
    return table if isinstance(table, EnergyTable) else _load_cached(table)


_CACHE: dict[str | None, EnergyTable] = {}


def _load_cached(path: str | Path | None) -> EnergyTable:
    key = None if path is None else str(path)
    if key not in _CACHE:
        _CACHE[key] = load_energy_table(path)
    return _CACHE[key]


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise EnergyTableError(f"cannot read energy table {path} ({error.strerror}); pass a "
                               f"JSON file laid out as {DEFAULT_TABLE_PATH.name}, or no "
                               f"--energy_table for the default") from None
    except json.JSONDecodeError as error:
        raise EnergyTableError(f"energy table {path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise EnergyTableError(f"energy table {path}: expected a JSON object at the top level")
    return data


def _require(data: dict, key: str, path: Path, kind: type):
    if key not in data:
        raise EnergyTableError(f"energy table {path}: missing key '{key}' "
                               f"(see {DEFAULT_TABLE_PATH.name} for the expected layout)")
    if not isinstance(data[key], kind):
        raise EnergyTableError(f"energy table {path}: '{key}' must be a JSON {kind.__name__}")
    return data[key]


def _constant_value(constants: dict, key: str, path: Path) -> float:
    if key not in constants:
        raise EnergyTableError(f"energy table {path}: missing key 'constants.{key}'; "
                               f"required: {', '.join(CONSTANT_KEYS)}")
    entry = constants[key]
    value = entry.get("value") if isinstance(entry, dict) else entry
    return _non_negative(value, f"constants.{key}", path)


def _sram_tiers(tiers: list, path: Path) -> tuple[tuple[int, float], ...]:
    if not tiers:
        raise EnergyTableError(f"energy table {path}: 'sram_read_64b' needs at least one tier")
    parsed = []
    for index, tier in enumerate(tiers):
        for key in TIER_KEYS:
            if not isinstance(tier, dict) or key not in tier:
                raise EnergyTableError(f"energy table {path}: missing key "
                                       f"'sram_read_64b[{index}].{key}'")
        label = f"sram_read_64b[{index}]"
        parsed.append((int(_non_negative(tier["capacity_bytes"], label, path)),
                       _non_negative(tier["read_pj"], label, path)))
    if [capacity for capacity, _ in parsed] != sorted(capacity for capacity, _ in parsed):
        raise EnergyTableError(f"energy table {path}: 'sram_read_64b' tiers must be listed "
                               f"smallest capacity first")
    return tuple(parsed)


def _non_negative(value, label: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise EnergyTableError(f"energy table {path}: '{label}' must be a non-negative "
                               f"number, got {value!r}")
    return float(value)
