"""Energy per image of one layer: arithmetic + data movement (constants from the JSON table).

Arithmetic (per layer, per image):
- float32 layers: MACs x (fp32 mult + fp32 add); element-wise ops outside MACs (pool
  comparisons and adds, activations, BatchNorm's scale and shift, bias adds) at the fp32 add /
  fp32 mult cost. BatchNorm is one mult + one add per element (not folded into the conv).
- 8-bit layers (a conv with an approximate multiplier): MACs x (int8 mult x
  multiplier.relative_energy + int32 add); the bias add at the int32 add cost. When
  relative_energy is missing but power_mw is known: power_mw / exact_mult8_power_mw.

Data movement, a simple memory model (assumptions):
- each layer call reads its weights and its input and output activations once from on-chip
  SRAM (ideal reuse inside the layer: registers/local buffers hold operands between MACs);
  writes cost as much as reads; data is packed in 64-bit words (8 int8 or 2 float32 values),
  fractional words allowed so that costs are additive and smooth;
- the SRAM size tier is chosen by the layer's working set (weight + activation bytes): the
  smallest tier holding it (8 KB: 10 pJ, 32 KB: 20 pJ, 1 MB: 100 pJ per 64-bit read);
- what does not fit in the largest tier (1 MB) comes from DRAM: the bytes beyond 1 MB cost
  one DRAM read per 64-bit word (1.3 nJ, the lower bound of Horowitz's 1.3-2.6 nJ), the rest
  the 1 MB SRAM read;
- no cross-layer reuse, no caching of weights across images, no control or leakage energy.
Every term is per layer, so per-op costs sum exactly to the network's cost.
"""

from __future__ import annotations

from approx.spec import power_hint
from energy_estimator.counting import INT8_BITS, LayerCount
from energy_estimator.table import EnergyTable

PJ_PER_UJ = 1e6
BYTES_PER_WORD = 8  # 64-bit memory words


class EnergyModelError(ValueError):
    """A layer whose energy cannot be estimated (e.g. a multiplier without a power figure)."""


def arithmetic_energy_pj(layer: LayerCount, table: EnergyTable) -> float:
    """MAC and element-wise operation energy of one layer call, per image (pJ)."""
    if layer.bits == INT8_BITS:
        mult_pj = table.int8_mult_pj * relative_mult_energy(layer, table)
        mac_pj, add_pj = mult_pj + table.int32_add_pj, table.int32_add_pj
        elementwise_mult_pj = table.int32_mult_pj
    else:
        mac_pj = table.fp32_mult_pj + table.fp32_add_pj
        add_pj, elementwise_mult_pj = table.fp32_add_pj, table.fp32_mult_pj
    return layer.macs * mac_pj + layer.adds * add_pj + layer.mults * elementwise_mult_pj


def memory_energy_pj(layer: LayerCount, table: EnergyTable) -> float:
    """Data movement energy of one layer call, per image (pJ)."""
    working_set_bytes = layer.weight_bytes + layer.activation_bytes
    sram_bytes = min(working_set_bytes, table.sram_capacity_bytes)
    dram_bytes = working_set_bytes - sram_bytes
    sram_pj = sram_bytes / BYTES_PER_WORD * table.sram_read_pj(working_set_bytes)
    return sram_pj + dram_bytes / BYTES_PER_WORD * table.dram_read_64b_pj


def relative_mult_energy(layer: LayerCount, table: EnergyTable) -> float:
    """Energy of one multiplication on the layer's multiplier / the exact int8 multiplier's."""
    if layer.relative_energy is not None:
        return float(layer.relative_energy)
    if layer.power_mw is not None:
        return float(layer.power_mw) / table.exact_mult8_power_mw
    raise EnergyModelError(
        f"layer '{layer.name}' runs on multiplier '{layer.multiplier}', whose power is unknown "
        f"(relative_energy is None): to estimate its energy, "
        f"{power_hint(f'path/to/{layer.multiplier}.bin')}; "
        f"the exact 8-bit multiplier is {table.exact_mult8_power_mw} mW")


def multiplication_energy_pj(layer: LayerCount, table: EnergyTable) -> float:
    """Energy of the multiplications of the layer's MACs alone (pJ): the part that the
    choice of multiplier changes (the `multiplier` search objective)."""
    if layer.bits == INT8_BITS:
        return layer.macs * table.int8_mult_pj * relative_mult_energy(layer, table)
    return layer.macs * table.fp32_mult_pj


def layer_energy_uj(layer: LayerCount, table: EnergyTable) -> tuple[float, float, float]:
    """(arithmetic, memory, multiplication) energy of one layer call, per image, in µJ; the
    multiplication energy is part of the arithmetic energy."""
    return (arithmetic_energy_pj(layer, table) / PJ_PER_UJ,
            memory_energy_pj(layer, table) / PJ_PER_UJ,
            multiplication_energy_pj(layer, table) / PJ_PER_UJ)
