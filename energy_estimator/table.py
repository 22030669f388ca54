"""Accelerator descriptions: loading and validating the JSON files of the energy model.

An accelerator (`EnergyTable`) is data, each constant with its source: arithmetic energies
(`constants`), operand widths (`widths`), deployment rules (`deployment`: BatchNorm folded,
ReLU fused, a requantisation per output) and the storage `levels` with their dataflow
(energy_estimator/levels.py). Presets live in `accelerators/<name>.json`; `--accelerator` takes
a preset name or a file (alias `--energy_table`). A file of the former energy-table layout
(`constants` with `dram_read_64b_pj`, plus `sram_read_64b` tiers) still loads: one SRAM level
and DRAM, float32 accounting of everything outside the multipliers' convs, nothing folded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from energy_estimator.levels import MAC_OPERANDS, TENSORS, MemoryLevel

ACCELERATORS_DIR = Path(__file__).with_name("accelerators")
DEFAULT_ACCELERATOR = "sram_45nm"
DEFAULT_TABLE_PATH = ACCELERATORS_DIR / f"{DEFAULT_ACCELERATOR}.json"
ARITHMETIC_KEYS = ("int8_add_pj", "int32_add_pj", "int8_mult_pj", "int32_mult_pj",
                   "fp32_add_pj", "fp32_mult_pj", "exact_mult8_power_mw")
DEPLOYMENT_KEYS = ("fold_batchnorm", "fuse_relu", "requantize")
WIDTH_KEYS = ("weight_bits", "activation_bits", "bias_bits", "accumulator_bits")
INT8_WIDTHS = {"weight_bits": 8, "activation_bits": 8}  # what approx emulates


class EnergyTableError(ValueError):
    """An accelerator file that cannot be read, lacks a required key or holds a bad value."""


@dataclass(frozen=True)
class EnergyTable:
    """An accelerator: energy per operation (pJ), storage levels innermost first, deployment
    rules; hashable, so usable as a cache key."""

    int8_add_pj: float
    int32_add_pj: float
    int8_mult_pj: float
    int32_mult_pj: float
    fp32_add_pj: float
    fp32_mult_pj: float
    exact_mult8_power_mw: float
    levels: tuple[MemoryLevel, ...]
    accumulator_bits: int = 32
    fold_batchnorm: bool = False
    fuse_relu: bool = False
    requantize: bool = False
    name: str = DEFAULT_ACCELERATOR
    source: str = str(DEFAULT_TABLE_PATH)


Accelerator = EnergyTable


def preset_names() -> list[str]:
    return sorted(path.stem for path in ACCELERATORS_DIR.glob("*.json"))


def accelerator_path(spec: str | Path | None) -> Path:
    """The file of `--accelerator`: None (the default preset), a preset name or a path."""
    if spec is None:
        return DEFAULT_TABLE_PATH
    if str(spec) in preset_names():
        return ACCELERATORS_DIR / f"{spec}.json"
    return Path(spec)


def load_energy_table(spec: str | Path | None = None) -> EnergyTable:
    """Load and validate an accelerator (None: the default preset, sram_45nm)."""
    path = accelerator_path(spec)
    data = _read_json(path)
    constants = _require(data, "constants", path, dict)
    values = {key: _number(constants, key, path, "constants") for key in ARITHMETIC_KEYS}
    name = path.stem if path.parent == ACCELERATORS_DIR else str(path)
    if "levels" not in data and "sram_read_64b" in data:
        return EnergyTable(**values, levels=_legacy_levels(data, constants, path), name=name,
                           source=str(path))
    widths = _require(data, "widths", path, dict)
    deployment = _require(data, "deployment", path, dict)
    for key, bits in INT8_WIDTHS.items():
        if _number(widths, key, path, "widths") != bits:
            raise EnergyTableError(f"accelerator {path}: 'widths.{key}' must be {bits} (the "
                                   f"emulated multipliers are 8-bit)")
    mac_pj = (_number(constants, "mac_reference_pj", path, "constants")
              if "mac_reference_pj" in constants else None)
    levels = tuple(_level(entry, index, path, mac_pj)
                   for index, entry in enumerate(_require(data, "levels", path, list)))
    _check_levels(levels, path)
    flags = {key: bool(_value(deployment, key, path, "deployment")) for key in DEPLOYMENT_KEYS}
    return EnergyTable(**values, levels=levels,
                       accumulator_bits=int(_number(widths, "accumulator_bits", path, "widths")),
                       **flags, name=name, source=str(path))


def resolve_energy_table(table: EnergyTable | str | Path | None) -> EnergyTable:
    """An EnergyTable as given, or loaded from a preset name or path (None: the default)."""
    return table if isinstance(table, EnergyTable) else _load_cached(table)


_CACHE: dict[str | None, EnergyTable] = {}


def _load_cached(spec: str | Path | None) -> EnergyTable:
    key = None if spec is None else str(spec)
    if key not in _CACHE:
        _CACHE[key] = load_energy_table(spec)
    return _CACHE[key]


def _level(entry, index: int, path: Path, mac_reference_pj: float | None) -> MemoryLevel:
    label = f"levels[{index}]"
    if not isinstance(entry, dict) or "name" not in entry:
        raise EnergyTableError(f"accelerator {path}: '{label}' needs a 'name'")
    bytes_per_access = _number(entry, "access_bits", path, label) / 8
    if "tiers" in entry:
        tiers = tuple((_number(tier, "capacity_bytes", path, f"{label}.tiers[{i}]"),
                       _number(tier, "access_pj", path, f"{label}.tiers[{i}]") / bytes_per_access)
                      for i, tier in enumerate(entry["tiers"]))
        if not tiers or [c for c, _ in tiers] != sorted(c for c, _ in tiers):
            raise EnergyTableError(f"accelerator {path}: '{label}.tiers' must be listed "
                                   f"smallest capacity first (at least one)")
    elif "relative_to_mac" in entry:
        if mac_reference_pj is None:
            raise EnergyTableError(f"accelerator {path}: '{label}.relative_to_mac' needs "
                                   f"'constants.mac_reference_pj'")
        ratio = _number(entry, "relative_to_mac", path, label)
        tiers = ((float("inf"), ratio * mac_reference_pj / bytes_per_access),)
    else:
        tiers = ((float("inf"), _number(entry, "access_pj", path, label) / bytes_per_access),)
    capacity = entry.get("capacity_bytes")
    return MemoryLevel(
        name=str(entry["name"]), tiers=tiers,
        capacity_bytes=None if capacity is None else _number(entry, "capacity_bytes", path,
                                                              label),
        per_mac=_counts(entry, "per_mac", MAC_OPERANDS, path, label),
        per_element=_counts(entry, "per_element", TENSORS, path, label),
        off_chip=bool(entry.get("off_chip", False)))


def _counts(entry: dict, key: str, names: tuple[str, ...], path: Path, label: str):
    counts = entry.get(key, {})
    if not isinstance(counts, dict) or set(counts) - set(names):
        raise EnergyTableError(f"accelerator {path}: '{label}.{key}' maps "
                               f"{', '.join(names)} to access counts")
    return tuple(_number(counts, name, path, f"{label}.{key}") if name in counts else 0.0
                 for name in names)


def _check_levels(levels: tuple[MemoryLevel, ...], path: Path) -> None:
    if not levels:
        raise EnergyTableError(f"accelerator {path}: 'levels' needs at least one level")
    if levels[-1].capacity_bytes is not None:
        raise EnergyTableError(f"accelerator {path}: the outermost level "
                               f"('{levels[-1].name}') must have no capacity_bytes (it holds "
                               f"what spills)")


def _legacy_levels(data: dict, constants: dict, path: Path) -> tuple[MemoryLevel, ...]:
    """The former energy-table layout: one SRAM of size tiers (64-bit reads), then DRAM."""
    tiers = _require(data, "sram_read_64b", path, list)
    for index, tier in enumerate(tiers):
        for key in ("capacity_bytes", "read_pj"):
            if not isinstance(tier, dict) or key not in tier:
                raise EnergyTableError(f"energy table {path}: missing key "
                                       f"'sram_read_64b[{index}].{key}'")
    entry = {"name": "sram", "access_bits": 64,
             "tiers": [{"capacity_bytes": t["capacity_bytes"], "access_pj": t["read_pj"]}
                       for t in tiers],
             "per_element": dict.fromkeys(TENSORS, 1)}
    sram = _level(entry, 0, path, None)
    sram = MemoryLevel(sram.name, sram.tiers, sram.tiers[-1][0], sram.per_mac, sram.per_element)
    dram_pj_per_byte = _number(constants, "dram_read_64b_pj", path, "constants") / 8
    dram = MemoryLevel("dram", ((float("inf"), dram_pj_per_byte),), None, (0.0, 0.0, 0.0),
                       (0.0, 0.0, 0.0), off_chip=True)
    return sram, dram


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise EnergyTableError(f"cannot read accelerator {path} ({error.strerror}); pass a "
                               f"preset ({', '.join(preset_names())}), a JSON file laid out "
                               f"as {DEFAULT_TABLE_PATH.name}, or no --accelerator "
                               f"(alias --energy_table) for the default") from None
    except json.JSONDecodeError as error:
        raise EnergyTableError(f"accelerator {path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise EnergyTableError(f"accelerator {path}: expected a JSON object at the top level")
    return data


def _require(data: dict, key: str, path: Path, kind: type):
    if key not in data:
        raise EnergyTableError(f"accelerator {path}: missing key '{key}' "
                               f"(see {DEFAULT_TABLE_PATH} for the expected layout)")
    if not isinstance(data[key], kind):
        raise EnergyTableError(f"accelerator {path}: '{key}' must be a JSON {kind.__name__}")
    return data[key]


def _value(section: dict, key: str, path: Path, label: str):
    if not isinstance(section, dict) or key not in section:
        raise EnergyTableError(f"accelerator {path}: missing key '{label}.{key}'")
    entry = section[key]
    return entry.get("value") if isinstance(entry, dict) else entry


def _number(section: dict, key: str, path: Path, label: str) -> float:
    value = _value(section, key, path, label)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise EnergyTableError(f"accelerator {path}: '{label}.{key}' must be a non-negative "
                               f"number, got {value!r}")
    return float(value)


def add_accelerator_argument(group) -> None:
    """Declare `--accelerator NAME|FILE` (alias `--energy_table`, the flag's former name;
    settings key `energy_table`, so run directories and configs of either name load)."""
    group.add_argument("--accelerator", "--energy_table", dest="energy_table", default=None,
                       metavar="NAME|FILE",
                       help=f"accelerator the energy is priced on: a preset "
                            f"({', '.join(preset_names())}) or a JSON file laid out as "
                            f"{DEFAULT_TABLE_PATH.name} (default: {DEFAULT_ACCELERATOR}, "
                            f"on-chip SRAM at 45 nm; see docs/reference/energy_model.md)")
