"""The Multiplier record: an 8x8 truth table, its cost figures and its error metrics."""

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from approx.binfile import table_to_bytes
from approx.errors import MultiplierError

# Published power of the exact 8x8 EvoApproxLib circuits (PDK45): the relative-energy basis.
EXACT_POWER_MW = {False: 0.391, True: 0.425}
EXACT_CIRCUIT = {False: "mul8u_1JJQ", True: "mul8s_1KV6"}
FULL_SCALE = 2.0**16  # MAE and WCE are reported in % of 2^16 (EvoApproxLib convention)


def operand_values(signed: bool) -> np.ndarray:
    """Numeric value of each table index: 0..255, or the int8 value of the bit pattern."""
    codes = np.arange(256, dtype=np.int64)
    return np.where(codes >= 128, codes - 256, codes) if signed else codes


def exact_products(signed: bool) -> np.ndarray:
    """The exact product table over the same indexing as a multiplier's LUT."""
    values = operand_values(signed)
    return np.outer(values, values)


def error_metrics(lut: torch.Tensor, signed: bool) -> dict[str, float]:
    """MAE/WCE (% of 2^16), MRE/WCRE (% over non-zero exact products), EP (% of inputs in error)."""
    exact = exact_products(signed)
    abs_error = np.abs(lut.cpu().numpy().astype(np.int64) - exact)
    nonzero = exact != 0
    relative = abs_error[nonzero] / np.abs(exact[nonzero])
    return {
        "mae_pct": 100.0 * abs_error.mean() / FULL_SCALE,
        "wce_pct": 100.0 * abs_error.max() / FULL_SCALE,
        "mre_pct": 100.0 * relative.mean(),
        "wcre_pct": 100.0 * relative.max(),
        "ep_pct": 100.0 * np.count_nonzero(abs_error) / abs_error.size,
    }


def power_relative_energy(power_mw: float, signed: bool) -> float:
    """Energy per multiplication relative to the exact circuit (synthesis power, same clock)."""
    return power_mw / EXACT_POWER_MW[signed]


def power_basis(signed: bool) -> str:
    return (
        f"power_mw / {EXACT_POWER_MW[signed]} mW of the exact EvoApproxLib "
        f"{EXACT_CIRCUIT[signed]} (PDK45 synthesis, same clock)"
    )


def check_table(name: str, lut: torch.Tensor, signed: bool) -> torch.Tensor:
    """Validate shape and entry range; return the table as a contiguous int32 tensor."""
    if tuple(lut.shape) != (256, 256):
        raise MultiplierError(f"multiplier {name}: table shape {tuple(lut.shape)}, need 256x256")
    low, high = (-(2**15), 2**15 - 1) if signed else (0, 2**16 - 1)
    if int(lut.min()) < low or int(lut.max()) > high:
        kind = "int16" if signed else "uint16"
        raise MultiplierError(f"multiplier {name}: table entries outside the {kind} range")
    return lut.to(torch.int32).contiguous()


@dataclass(eq=False)
class Multiplier:
    """An 8x8 multiplier: `lut[a, b]` is its product (signed tables indexed by bit pattern).

    `relative_energy` is energy per multiplication / the exact 8-bit multiplier's; its basis is
    stated in `energy_basis`. `power_mw` is None when no synthesis figure is known.
    """

    name: str
    signed: bool
    lut: torch.Tensor
    power_mw: float | None = None
    area_um2: float | None = None
    relative_energy: float | None = None
    energy_basis: str = ""
    source: str = ""
    note: str = ""

    def __post_init__(self):
        if not self.name or "@" in self.name or "," in self.name:
            raise MultiplierError(
                f"multiplier name {self.name!r} must be non-empty without '@' or ','"
            )
        self.lut = check_table(self.name, self.lut, self.signed)
        if self.relative_energy is None and self.power_mw is not None:
            self.relative_energy = power_relative_energy(self.power_mw, self.signed)
            self.energy_basis = power_basis(self.signed)

    @cached_property
    def metrics(self) -> dict[str, float]:
        return error_metrics(self.lut, self.signed)

    @property
    def mae_pct(self) -> float:
        return self.metrics["mae_pct"]

    @property
    def wce_pct(self) -> float:
        return self.metrics["wce_pct"]

    @property
    def mre_pct(self) -> float:
        return self.metrics["mre_pct"]

    @property
    def wcre_pct(self) -> float:
        return self.metrics["wcre_pct"]

    @property
    def ep_pct(self) -> float:
        return self.metrics["ep_pct"]

    @cached_property
    def sha256(self) -> str:
        """sha256 of the table in the .bin layout (identifies EvoApproxLib circuits)."""
        return hashlib.sha256(table_to_bytes(self.lut, self.signed)).hexdigest()

    @property
    def is_exact(self) -> bool:
        return self.ep_pct == 0.0

    def __repr__(self) -> str:
        energy = "unknown" if self.relative_energy is None else f"{self.relative_energy:.3f}"
        kind = "signed" if self.signed else "unsigned"
        return (
            f"Multiplier({self.name}, {kind}, relative_energy={energy}, "
            f"mae={self.mae_pct:.4g}%, ep={self.ep_pct:.4g}%)"
        )
