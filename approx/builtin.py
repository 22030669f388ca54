"""Built-in 8x8 multipliers computed from their published definitions.

Unsigned names (no '@' or ','): exact, trunc<k> (k=1..14), bam<h>_<v> (h=0..8, v=0..15),
drum<k> (k=3..7), mitchell, kulkarni; signed: exact_s, the exact signed (int8) multiplier (the
table of EvoApproxLib's mul8s_1KV6), the exact member of a signed multiplier set. Every table is
built with whole-array numpy bit operations.
"""

import re
from collections.abc import Callable

import numpy as np
import torch

from approx.errors import MultiplierError
from approx.multiplier import EXACT_CIRCUIT, Multiplier, exact_products

BITS = 8
CODES = np.arange(256, dtype=np.int64)
BIT_WEIGHTS = 2 ** np.add.outer(np.arange(BITS), np.arange(BITS))  # [i, j] -> 2^(i+j)
ARRAY_CELLS = BITS * BITS
# Fixed cost of DRUM's two leading-one detectors, two k-bit operand steering networks and the
# output shifter, in partial-product-cell equivalents: an assumption of this project, not a figure.
DRUM_OVERHEAD_CELLS = 16
MAHDIANI = "Mahdiani et al., IEEE TCAS-I 2010"


def operand_bits(values: np.ndarray) -> np.ndarray:
    """(n, 8) 0/1 matrix: bit i of each value."""
    return (values[:, None] >> np.arange(BITS)) & 1


def partial_product_array(keep: np.ndarray) -> np.ndarray:
    """Array multiplier summing only the kept partial products a_i*b_j*2^(i+j); keep is [i, j]."""
    bits = operand_bits(CODES)
    return bits @ (keep * BIT_WEIGHTS) @ bits.T


def truncation_mask(k: int) -> np.ndarray:
    """Keep a_i*b_j unless i + j < k (the k least significant product columns are dropped)."""
    i, j = np.indices((BITS, BITS))
    return i + j >= k


def broken_array_mask(h: int, v: int) -> np.ndarray:
    """BAM(h, v) after Mahdiani et al. 2010 (IEEE TCAS-I 57(4)), as implemented here.

    Partial-product row j is a*b_j (weight 2^j); the carry-save cells of the h least significant
    rows (j < h: below the horizontal break level) and of the v least significant product columns
    (i + j < v: beyond the vertical break level) are omitted; all other cells are kept and summed
    exactly. BAM(0, v) equals trunc<v>.
    """
    i, j = np.indices((BITS, BITS))
    return (j >= h) & (i + j >= v)


def leading_one(values: np.ndarray) -> np.ndarray:
    """Position of the most significant set bit (0 for value 0)."""
    return np.floor(np.log2(np.maximum(values, 1))).astype(np.int64)


def drum_operand(values: np.ndarray, k: int) -> np.ndarray:
    """DRUM operand: k bits from the leading one, the segment's LSB forced to 1, shifted back."""
    shift = np.maximum(leading_one(values) - (k - 1), 0)
    segment = (values >> shift) | (shift > 0)
    return segment << shift


def drum_table(k: int) -> np.ndarray:
    """DRUM-k (Hashemi, Bahar, Reda, ICCAD 2015): exact k x k product of the reduced operands."""
    reduced = drum_operand(CODES, k)
    return np.outer(reduced, reduced)


def mitchell_table() -> np.ndarray:
    """Mitchell 1962 logarithmic product with a full-width log fraction (no further truncation).

    With a = 2^ka (1 + fa), b = 2^kb (1 + fb): 2^(ka+kb) (1 + fa + fb) if fa + fb < 1, else
    2^(ka+kb+1) (fa + fb); written in integers below. A zero operand gives 0.
    """
    a, b = np.meshgrid(CODES, CODES, indexing="ij")
    ka, kb = leading_one(a), leading_one(b)
    linear_sum = (a << kb) + (b << ka)  # 2^(ka+kb) (2 + fa + fb)
    unit = 1 << (ka + kb)
    carry = linear_sum >= 3 * unit  # fa + fb >= 1
    product = np.where(carry, 2 * (linear_sum - 2 * unit), linear_sum - unit)
    return np.where((a == 0) | (b == 0), 0, product)


def kulkarni_product(a: np.ndarray, b: np.ndarray, bits: int) -> np.ndarray:
    """Kulkarni et al. 2011: the 2x2 block gives 7 for 3x3; wider products compose it exactly."""
    if bits == 2:
        return np.where((a == 3) & (b == 3), 7, a * b)
    half = bits // 2
    low = (1 << half) - 1
    a_hi, a_lo, b_hi, b_lo = a >> half, a & low, b >> half, b & low
    high = kulkarni_product(a_hi, b_hi, half)
    middle = kulkarni_product(a_hi, b_lo, half) + kulkarni_product(a_lo, b_hi, half)
    return (high << bits) + (middle << half) + kulkarni_product(a_lo, b_lo, half)


def kulkarni_table() -> np.ndarray:
    a, b = np.meshgrid(CODES, CODES, indexing="ij")
    return kulkarni_product(a, b, BITS)


def cell_fraction_energy(keep: np.ndarray) -> tuple[float, str]:
    kept = int(keep.sum())
    return kept / ARRAY_CELLS, f"kept partial-product cells {kept}/{ARRAY_CELLS} of the array"


def drum_energy(k: int) -> tuple[float, str]:
    cells = k * k + DRUM_OVERHEAD_CELLS
    basis = (
        f"estimate: {k}x{k} core cells + {DRUM_OVERHEAD_CELLS} cell-equivalents for leading-one "
        f"detectors and shifters = {cells}/{ARRAY_CELLS} (project assumption, not published)"
    )
    return cells / ARRAY_CELLS, basis


MITCHELL_ENERGY = (
    0.5,
    "estimate: McLaren 2003 (IEEE SOC Conf., 'Improved Mitchell-based logarithmic multiplier for "
    "low-power DSP applications') reports ~71 % power saving for wide operands; at 8 bits the "
    "leading-one detectors and shifters weigh more, so half the exact energy is assumed",
)
KULKARNI_ENERGY = (
    1 - 0.3178,
    "published: Kulkarni, Gupta, Ercegovac, VLSI Design 2011, average power saving "
    "31.78-45.4 % over accurate designs; the least saving is taken",
)


def parse_int_params(name: str) -> tuple[str, list[int]] | None:
    match = re.fullmatch(r"(trunc|drum)(\d+)|(bam)(\d+)_(\d+)", name)
    if match is None:
        return None
    groups = [g for g in match.groups() if g is not None]
    return groups[0], [int(g) for g in groups[1:]]


def check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise MultiplierError(f"built-in multiplier {name}: {value} is outside {low}..{high}")


def parameterised_design(name: str, family: str, params: list[int]):
    """trunc<k>, bam<h>_<v> or drum<k> after checking the parameter ranges."""
    if family == "trunc":
        check_range(name, params[0], 1, 14)
        keep = truncation_mask(params[0])
        return partial_product_array(keep), cell_fraction_energy(keep), "truncated array"
    if family == "bam":
        check_range(name, params[0], 0, 8)
        check_range(name, params[1], 0, 15)
        keep = broken_array_mask(*params)
        return partial_product_array(keep), cell_fraction_energy(keep), MAHDIANI
    check_range(name, params[0], 3, 7)
    return drum_table(params[0]), drum_energy(params[0]), "Hashemi et al., ICCAD 2015"


FIXED_DESIGNS: dict[str, Callable] = {
    "exact": lambda: (partial_product_array(truncation_mask(0)), (1.0, "reference"), "exact"),
    "mitchell": lambda: (mitchell_table(), MITCHELL_ENERGY, "Mitchell, IRE Trans. EC 1962"),
    "kulkarni": lambda: (kulkarni_table(), KULKARNI_ENERGY, "Kulkarni et al., VLSID 2011"),
}


def design_for(name: str):
    """(table, (relative_energy, basis), source) for a built-in name, or None if not built-in."""
    if name in FIXED_DESIGNS:
        return FIXED_DESIGNS[name]()
    parsed = parse_int_params(name)
    return None if parsed is None else parameterised_design(name, *parsed)


SIGNED_EXACT = "exact_s"


def signed_exact() -> Multiplier:
    """The exact signed 8x8 multiplier, the reference of the signed tables' energy."""
    return Multiplier(name=SIGNED_EXACT, signed=True,
                      lut=torch.from_numpy(exact_products(True).astype(np.int32)),
                      relative_energy=1.0, energy_basis="reference (signed)",
                      source=f"exact int8 products (the table of {EXACT_CIRCUIT[True]})")


def builtin_multiplier(name: str) -> Multiplier | None:
    """The built-in Multiplier called `name`, or None when `name` is not a built-in design."""
    if name == SIGNED_EXACT:
        return signed_exact()
    design = design_for(name)
    if design is None:
        return None
    table, (energy, basis), source = design
    return Multiplier(
        name=name, signed=False, lut=torch.from_numpy(table.astype(np.int32)),
        relative_energy=energy, energy_basis=basis, source=source,
    )


def builtin_names() -> list[str]:
    """Canonical built-in examples; any trunc<k>, bam<h>_<v>, drum<k> in range also works."""
    return [
        "exact", "trunc4", "trunc6", "trunc8", "bam2_4", "bam4_4", "bam4_8",
        "drum4", "drum5", "drum6", "mitchell", "kulkarni", SIGNED_EXACT,
    ]
