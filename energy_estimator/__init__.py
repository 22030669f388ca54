"""Cost model of AxDARTS: MACs, parameters, bytes, FLOPs, bit-operations and energy per image.

- `profile(model, input_size, energy_table=None) -> Report`: per-layer and total costs.
- `load_energy_table(spec=None) -> EnergyTable` (alias `Accelerator`): an accelerator preset
  (`accelerators/<name>.json`: sram_45nm, the default, or eyeriss_like) or file: constants,
  storage levels and dataflow, each value with its source.
- `search_space`: the form of the supernet's per-op cost tables (priced by
  `search/cost_tables.py`) and the expected energy of alphas.
- `measure_latency(model, input_size, ...)`: median wall-clock ms per image.
The energy model (arithmetic + data movement, with its assumptions) is described in
`energy.py` and `levels.py`, and in docs/reference/energy_model.md.
"""

from energy_estimator.counting import LayerCount
from energy_estimator.energy import EnergyModelError
from energy_estimator.latency import measure_latency
from energy_estimator.report import LayerCost, Report, profile
from energy_estimator.search_space import OpCost, SupernetCosts, expected_energy_uj
from energy_estimator.table import (
    DEFAULT_ACCELERATOR,
    DEFAULT_TABLE_PATH,
    Accelerator,
    EnergyTable,
    EnergyTableError,
    add_accelerator_argument,
    load_energy_table,
    preset_names,
)

__all__ = [
    "DEFAULT_ACCELERATOR", "DEFAULT_TABLE_PATH", "Accelerator", "add_accelerator_argument",
    "preset_names", "EnergyModelError", "EnergyTable", "EnergyTableError", "LayerCost",
    "LayerCount", "OpCost", "Report", "SupernetCosts", "expected_energy_uj",
    "load_energy_table", "measure_latency", "profile",
]
