"""Cost model of AxDARTS: MACs, parameters, bytes, FLOPs, bit-operations and energy per image.

- `profile(model, input_size, energy_table=None) -> Report`: per-layer and total costs.
- `load_energy_table(path=None) -> EnergyTable`: the constants (default: 45 nm, Horowitz 2014).
- `search_space`: the form of the supernet's per-op cost tables (priced by
  `search/cost_tables.py`) and the expected energy of alphas.
- `measure_latency(model, input_size, ...)`: median wall-clock ms per image.
The energy model (arithmetic + memory, with its assumptions) is described in `energy.py`.
"""

from energy_estimator.counting import LayerCount
from energy_estimator.energy import EnergyModelError
from energy_estimator.latency import measure_latency
from energy_estimator.report import LayerCost, Report, profile
from energy_estimator.search_space import OpCost, SupernetCosts, expected_energy_uj
from energy_estimator.table import (
    DEFAULT_TABLE_PATH,
    EnergyTable,
    EnergyTableError,
    load_energy_table,
)

__all__ = [
    "DEFAULT_TABLE_PATH", "EnergyModelError", "EnergyTable", "EnergyTableError", "LayerCost",
    "LayerCount", "OpCost", "Report", "SupernetCosts", "expected_energy_uj",
    "load_energy_table", "measure_latency", "profile",
]
