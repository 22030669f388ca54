"""`profile(model, input_size) -> Report`: per-layer and total costs per input image.

Totals are sums of the per-layer rows (`params`: parameters of the modules that ran, each
module once; modules not run in eval mode, such as an auxiliary head, are not counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch.nn as nn

from energy_estimator.counting import LayerCount
from energy_estimator.energy import layer_energy
from energy_estimator.hooks import count_layers
from energy_estimator.table import EnergyTable, resolve_energy_table
from runner.files import atomic_write_json

TOTAL_FIELDS = ("macs", "params", "flops", "bitops", "weight_bytes", "activation_bytes",
                "arith_energy_uj", "memory_energy_uj", "mult_energy_uj", "energy_uj",
                "other_arith_energy_uj", "onchip_energy_uj", "dram_energy_uj")
ENERGY_FIELDS = ("energy_uj", "arith_energy_uj", "mult_energy_uj", "other_arith_energy_uj",
                 "onchip_energy_uj", "dram_energy_uj")
# the four parts of the energy, which sum to energy_uj
BREAKDOWN_FIELDS = ("mult_energy_uj", "other_arith_energy_uj", "onchip_energy_uj",
                    "dram_energy_uj")
PART_LABELS = {"mult_energy_uj": "multipliers", "other_arith_energy_uj": "other arithmetic",
               "onchip_energy_uj": "on-chip traffic", "dram_energy_uj": "DRAM traffic"}
TABLE_COLUMNS = (("name", 36), ("type", 18), ("multiplier", 12), ("macs", 12), ("params", 10),
                 ("mult_energy_uj", 14), ("other_arith_energy_uj", 14), ("onchip_energy_uj", 14),
                 ("dram_energy_uj", 14), ("energy_uj", 11))


@dataclass(frozen=True)
class LayerCost:
    """One call of one leaf module, per image: counts and energy."""

    name: str
    type: str
    multiplier: str
    macs: int
    params: int
    flops: int
    bitops: int
    weight_bytes: int
    activation_bytes: int
    arith_energy_uj: float
    mult_energy_uj: float  # the MACs' multiplications alone (part of arith_energy_uj)
    onchip_energy_uj: float  # data movement on chip (register files, buffers, SRAM)
    dram_energy_uj: float  # data movement off chip

    @property
    def memory_energy_uj(self) -> float:
        return self.onchip_energy_uj + self.dram_energy_uj

    @property
    def other_arith_energy_uj(self) -> float:
        return self.arith_energy_uj - self.mult_energy_uj

    @property
    def energy_uj(self) -> float:
        return self.arith_energy_uj + self.memory_energy_uj

    @classmethod
    def from_count(cls, layer: LayerCount, table: EnergyTable) -> LayerCost:
        energy = layer_energy(layer, table)
        return cls(layer.name, layer.type, layer.multiplier, layer.macs, layer.params,
                   layer.flops, layer.bitops, layer.weight_bytes, layer.activation_bytes,
                   energy.arith_uj, energy.mult_uj, energy.onchip_uj, energy.dram_uj)

    def to_dict(self) -> dict:
        derived = ("memory_energy_uj", "other_arith_energy_uj", "energy_uj")
        return {**asdict(self), **{key: getattr(self, key) for key in derived}}


@dataclass
class Report:
    """Per-image totals and the per-layer breakdown of one forward pass."""

    macs: int
    params: int
    flops: int
    bitops: int
    weight_bytes: int
    activation_bytes: int
    arith_energy_uj: float
    memory_energy_uj: float
    mult_energy_uj: float
    energy_uj: float
    other_arith_energy_uj: float
    onchip_energy_uj: float
    dram_energy_uj: float
    layers: list[LayerCost] = field(default_factory=list)
    input_size: tuple[int, ...] = ()
    energy_table: str = ""
    accelerator: str = ""

    @classmethod
    def from_layers(cls, layers: list[LayerCost], **meta) -> Report:
        totals = {key: sum(getattr(layer, key) for layer in layers) for key in TOTAL_FIELDS}
        return cls(**totals, layers=layers, **meta)

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "layers"}
        data["input_size"] = list(self.input_size)
        data["layers"] = [layer.to_dict() for layer in self.layers]
        return data

    def save_json(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict())

    def table(self, depth: int | None = None) -> str:
        """Aligned text table of the layers (grouped by the first `depth` name components
        when `depth` is given) followed by the totals."""
        rows = [layer.to_dict() for layer in self.layers]
        if depth:
            rows = group_rows(rows, depth)
        lines = [_format_row({name: name for name, _ in TABLE_COLUMNS})]
        lines += [_format_row(row) for row in rows]
        lines += ["", self.summary()]
        return "\n".join(lines)

    def summary(self) -> str:
        return (f"total per image: {self.params / 1e6:.3f} M params, {self.macs / 1e6:.1f} M "
                f"MACs, {self.flops / 1e6:.1f} M FLOPs, {self.bitops / 1e9:.2f} G bit-ops, "
                f"weights {self.weight_bytes / 1e6:.2f} MB, activations "
                f"{self.activation_bytes / 1e6:.2f} MB; energy {self.energy_uj:.3f} µJ "
                f"(arithmetic {self.arith_energy_uj:.3f} µJ, of which multiplications "
                f"{self.mult_energy_uj:.3f} µJ; memory "
                f"{self.memory_energy_uj:.3f} µJ)\n" + self.breakdown())

    def energies(self, select=None) -> dict[str, float]:
        """The energy fields (total, arithmetic, multiplications and the four parts) summed
        over the layers whose name `select` accepts (None: all of them)."""
        layers = [layer for layer in self.layers if select is None or select(layer.name)]
        return {key: sum(getattr(layer, key) for layer in layers) for key in ENERGY_FIELDS}

    def breakdown(self) -> str:
        """The four parts of the energy with their shares, and the accelerator."""
        parts = ", ".join(f"{PART_LABELS[key]} {getattr(self, key):.3f} µJ "
                          f"({self.share(key):.1%})" for key in BREAKDOWN_FIELDS)
        return f"breakdown on {self.accelerator}: {parts}; file {self.energy_table}"

    def share(self, key: str) -> float:
        """`key`'s part of the total energy (0 when the total is 0)."""
        return getattr(self, key) / self.energy_uj if self.energy_uj else 0.0


def profile(model: nn.Module, input_size: Sequence[int],
            energy_table: EnergyTable | str | Path | None = None,
            int8_network: bool | None = None) -> Report:
    """Count and cost every leaf module run by `model` on one `input_size` (C, H, W) image
    under an accelerator (`energy_table`: an EnergyTable, a preset name or a file; None: the
    default preset); `int8_network`: see hooks.count_layers."""
    table = resolve_energy_table(energy_table)
    layers = [LayerCost.from_count(layer, table)
              for layer in count_layers(model, input_size, int8_network=int8_network)]
    return Report.from_layers(layers, input_size=tuple(input_size), energy_table=table.source,
                              accelerator=table.name)


def group_rows(rows: list[dict], depth: int) -> list[dict]:
    """Rows summed by the first `depth` components of the layer name."""
    groups: dict[str, dict] = {}
    for row in rows:
        key = ".".join(row["name"].split("#")[0].split(".")[:depth])
        group = groups.setdefault(key, {"name": key, "type": "", "multipliers": [],
                                        "count": 0, **dict.fromkeys(TOTAL_FIELDS, 0)})
        group["count"] += 1
        if row["multiplier"] not in group["multipliers"]:
            group["multipliers"].append(row["multiplier"])
        for key_name in TOTAL_FIELDS:
            group[key_name] += row[key_name]
    for group in groups.values():
        group["type"] = f"{group['count']} layer" + ("s" if group["count"] > 1 else "")
        group["multiplier"] = "+".join(group["multipliers"])
    return list(groups.values())


def _format_row(row: dict) -> str:
    cells = []
    for name, width in TABLE_COLUMNS:
        value = row[name]
        if isinstance(value, float):
            cells.append(f"{value:>{width}.4f}")
        elif isinstance(value, int):
            cells.append(f"{value:>{width},}")
        else:
            text = str(value)
            text = text if len(text) <= width else "…" + text[-(width - 1):]
            cells.append(f"{text:<{width}}" if name in ("name", "type", "multiplier")
                         else f"{text:>{width}}")
    return " ".join(cells)
