"""Energy per image of one layer under an accelerator (constants and levels from its JSON).

Arithmetic (per layer, per image):
- int8 layers (a conv on an 8-bit multiplier, or any element-wise layer of a deployed int8
  network): MACs x (int8 mult x multiplier.relative_energy + int32 add); element-wise adds at
  the int32 add, element-wise mults at the int32 mult; with `requantize`, each output of a MAC
  layer costs one int32 mult + one int32 add (fixed-point rescale, bias and rounding). When
  relative_energy is missing but power_mw is known: power_mw / exact_mult8_power_mw.
- float32 layers: MACs x (fp32 mult + fp32 add); element-wise ops at the fp32 add / mult.
- With `fold_batchnorm` a BatchNorm costs nothing (folded into the preceding conv's weights
  and bias); with `fuse_relu` a ReLU costs nothing (the clamp of the requantisation).

Data movement: `levels.level_energies_pj` over the accelerator's storage levels and dataflow;
the levels marked `off_chip` (DRAM) are reported apart from the on-chip ones. Every term is per
layer, so per-op costs sum exactly to the network's cost.
"""

from __future__ import annotations

from dataclasses import dataclass

from approx.spec import power_hint
from energy_estimator.counting import BATCH_NORMS, INT8_BITS, LayerCount
from energy_estimator.levels import LayerTraffic, level_energies_pj
from energy_estimator.table import EnergyTable

PJ_PER_UJ = 1e6
BITS_PER_BYTE = 8
BATCH_NORM_TYPES = tuple(cls.__name__ for cls in BATCH_NORMS)


class EnergyModelError(ValueError):
    """A layer whose energy cannot be estimated (e.g. a multiplier without a power figure)."""


@dataclass(frozen=True)
class LayerEnergy:
    """Energy of one layer call, per image, in µJ (multiplications are part of arithmetic)."""

    arith_uj: float
    mult_uj: float
    onchip_uj: float
    dram_uj: float


def is_removed(layer: LayerCount, table: EnergyTable) -> bool:
    """A BatchNorm folded into its conv or a ReLU fused into the requantisation."""
    return ((table.fold_batchnorm and layer.type in BATCH_NORM_TYPES)
            or (table.fuse_relu and layer.type == "ReLU"))


def arithmetic_energy_pj(layer: LayerCount, table: EnergyTable) -> float:
    """MAC and element-wise operation energy of one layer call, per image (pJ)."""
    if layer.bits == INT8_BITS:
        mult_pj = table.int8_mult_pj * relative_mult_energy(layer, table) if layer.macs else 0.0
        mac_pj, add_pj = mult_pj + table.int32_add_pj, table.int32_add_pj
        elementwise_mult_pj = table.int32_mult_pj
        requant_pj = (table.int32_mult_pj + table.int32_add_pj
                      if table.requantize and layer.macs else 0.0)
    else:
        mac_pj = table.fp32_mult_pj + table.fp32_add_pj
        add_pj, elementwise_mult_pj, requant_pj = table.fp32_add_pj, table.fp32_mult_pj, 0.0
    return (layer.macs * mac_pj + layer.adds * add_pj + layer.mults * elementwise_mult_pj
            + layer.outputs * requant_pj)


def memory_energy_pj(layer: LayerCount, table: EnergyTable) -> tuple[float, float]:
    """(on-chip, off-chip) data movement energy of one layer call, per image (pJ)."""
    output_bytes = layer.outputs * layer.bits / BITS_PER_BYTE
    traffic = LayerTraffic(layer.weight_bytes, layer.activation_bytes - output_bytes,
                           output_bytes, layer.macs, layer.bits / BITS_PER_BYTE,
                           table.accumulator_bits / BITS_PER_BYTE)
    onchip = offchip = 0.0
    for level, pj in level_energies_pj(traffic, table.levels):
        if level.off_chip:
            offchip += pj
        else:
            onchip += pj
    return onchip, offchip


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
    if not layer.macs:
        return 0.0
    if layer.bits == INT8_BITS:
        return layer.macs * table.int8_mult_pj * relative_mult_energy(layer, table)
    return layer.macs * table.fp32_mult_pj


def layer_energy(layer: LayerCount, table: EnergyTable) -> LayerEnergy:
    """Arithmetic, multiplication, on-chip and off-chip energy of one layer call (µJ)."""
    if is_removed(layer, table):
        return LayerEnergy(0.0, 0.0, 0.0, 0.0)
    onchip_pj, offchip_pj = memory_energy_pj(layer, table)
    return LayerEnergy(arithmetic_energy_pj(layer, table) / PJ_PER_UJ,
                       multiplication_energy_pj(layer, table) / PJ_PER_UJ,
                       onchip_pj / PJ_PER_UJ, offchip_pj / PJ_PER_UJ)
