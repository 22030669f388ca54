"""Storage levels of an accelerator and the data movement of one layer through them.

A `MemoryLevel` (innermost first in an accelerator) holds an energy per byte accessed (one
figure, or size tiers chosen by the footprint), a capacity, and the stated dataflow as access
counts: `per_mac` (bytes of weight, input and partial sum accessed per MAC, in operands of the
layer's width; partial sums at the accumulator width) and `per_element` (how often each byte of
the layer's weights, input and output tensors is accessed per layer call). A level with a
capacity holds the tensors it is accessed for (its footprint); the part of that footprint
beyond its capacity is accessed at the next level instead (a tensor that does not fit spills).
Writes cost as much as reads.
"""

from __future__ import annotations

from dataclasses import dataclass

TENSORS = ("weight", "input", "output")
MAC_OPERANDS = ("weight", "input", "psum")


@dataclass(frozen=True)
class MemoryLevel:
    """One storage level; `tiers`: (capacity_bytes, pJ per byte) smallest first, the smallest
    tier holding the footprint prices every access (the largest when none does)."""

    name: str
    tiers: tuple[tuple[float, float], ...]
    capacity_bytes: float | None
    per_mac: tuple[float, float, float]  # weight, input, psum
    per_element: tuple[float, float, float]  # weight, input, output
    off_chip: bool = False

    def pj_per_byte(self, footprint_bytes: float) -> float:
        for capacity_bytes, pj in self.tiers:
            if footprint_bytes <= capacity_bytes:
                return pj
        return self.tiers[-1][1]


@dataclass(frozen=True)
class LayerTraffic:
    """Bytes of one layer call: its tensors, its MACs and its operand widths."""

    weight_bytes: float
    input_bytes: float
    output_bytes: float
    macs: int
    operand_bytes: float
    accumulator_bytes: float


def level_energies_pj(traffic: LayerTraffic,
                      levels: tuple[MemoryLevel, ...]) -> list[tuple[MemoryLevel, float]]:
    """(level, energy in pJ) of every level for one layer call, innermost first."""
    tensors = (traffic.weight_bytes, traffic.input_bytes, traffic.output_bytes)
    mac_widths = (traffic.operand_bytes, traffic.operand_bytes, traffic.accumulator_bytes)
    spilled, energies = 0.0, []
    for level in levels:
        per_mac = zip(level.per_mac, mac_widths, strict=True)
        mac_bytes = traffic.macs * sum(count * width for count, width in per_mac)
        element_bytes = sum(c * t for c, t in zip(level.per_element, tensors, strict=True))
        footprint = sum(t for c, t in zip(level.per_element, tensors, strict=True) if c)
        kept = _kept_share(footprint, level.capacity_bytes)
        accessed = mac_bytes + element_bytes * kept + spilled
        spilled = element_bytes * (1.0 - kept)
        energies.append((level, accessed * level.pj_per_byte(footprint)))
    return energies


def _kept_share(footprint: float, capacity: float | None) -> float:
    if capacity is None or footprint <= capacity:
        return 1.0
    return capacity / footprint
