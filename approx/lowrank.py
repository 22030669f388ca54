"""Low-rank factors of a multiplier's error table E = LUT - a*b, and the rank chosen per multiplier.

E[a, b] ~= sum_r U_r(a) V_r(b) is the best rank-r fit in a code-frequency-weighted Frobenius norm:
rows and columns are weighted by a prior of how often quantisation produces each code (post-ReLU
activations ~ half-normal with sigma ACTIVATION_SIGMA codes, weights ~ normal with sigma
WEIGHT_SIGMA codes, both floored so large codes still count); the weighted SVD gives the optimum.
Default rank: the smallest r whose weighted residual is at most RESIDUAL_TOLERANCE of the weighted
||E||, capped at MAX_RANK; exact multipliers get 0, exactly low-rank designs (truncation, BAM,
DRUM, Kulkarni) their true rank. The int8 code -128 is never produced and is not fitted.
"""

from functools import cache

import numpy as np
import torch

from approx.multiplier import Multiplier, exact_products, operand_values
from kernels.threads import single_thread

RESIDUAL_TOLERANCE = 0.1
MAX_RANK = 8
ACTIVATION_SIGMA = 60.0  # codes: a half-normal activation maps its ~4.3-sigma maximum to 255
WEIGHT_SIGMA = 90.0  # codes: a 3x3x16 Gaussian weight channel's maximum is ~2.8 sigma
WEIGHT_FLOOR = 0.01
EXACT_RANK_TOLERANCE = 1e-9  # residual below this fraction counts as exactly low-rank


def reachable_codes(signed: bool) -> np.ndarray:
    """Mask of table indices that quantisation can produce (int8 -128 is never produced)."""
    return np.abs(operand_values(signed)) <= (127 if signed else 255)


def error_table(multiplier: Multiplier) -> np.ndarray:
    """E = LUT - exact product (float64), zero on unreachable codes."""
    error = multiplier.lut.numpy().astype(np.float64) - exact_products(multiplier.signed)
    mask = reachable_codes(multiplier.signed)
    return error * np.outer(mask, mask)


def code_weights(signed: bool, sigma: float) -> np.ndarray:
    """sqrt of the (floored) prior frequency of each table index; zero for unreachable codes."""
    magnitude = np.abs(operand_values(signed)).astype(np.float64)
    density = np.maximum(np.exp(-0.5 * (magnitude / sigma) ** 2), WEIGHT_FLOOR)
    return np.sqrt(density) * reachable_codes(signed)


@cache
def error_svd(multiplier: Multiplier) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(U, V, s) from the weighted SVD: column r of U, V is the r-th factor pair of E."""
    row_w = code_weights(multiplier.signed, ACTIVATION_SIGMA)
    col_w = code_weights(multiplier.signed, WEIGHT_SIGMA)
    weighted = torch.from_numpy(row_w[:, None] * error_table(multiplier) * col_w[None, :])
    with single_thread():  # threaded LAPACK on a 256x256 matrix only contends for cores
        u, s, vt = (t.numpy() for t in torch.linalg.svd(weighted))
    root = np.sqrt(s)
    return unweight(u * root, row_w), unweight(vt.T * root, col_w), s


def unweight(factors: np.ndarray, weights: np.ndarray) -> np.ndarray:
    safe = np.where(weights > 0, weights, 1.0)
    return factors / safe[:, None] * (weights > 0)[:, None]


def relative_residuals(multiplier: Multiplier) -> np.ndarray:
    """Entry r: weighted ||E - E_r|| / ||E|| for r = 0..256 (zeros for an exact multiplier)."""
    energy = error_svd(multiplier)[2] ** 2
    remaining = np.append(np.cumsum(energy[::-1])[::-1], 0.0)
    return np.sqrt(remaining / remaining[0]) if remaining[0] > 0 else np.zeros_like(remaining)


def smallest_rank_within(multiplier: Multiplier, tolerance: float) -> int:
    """Smallest r with weighted ||E - E_r|| <= tolerance * ||E||."""
    return int(np.flatnonzero(relative_residuals(multiplier) <= tolerance)[0])


def true_rank(multiplier: Multiplier) -> int:
    return smallest_rank_within(multiplier, EXACT_RANK_TOLERANCE)


def default_rank(multiplier: Multiplier) -> int:
    """The true rank when it is at most MAX_RANK (exact emulation), else the tolerance rank."""
    exact_rank = true_rank(multiplier)
    if exact_rank <= MAX_RANK:
        return exact_rank
    return min(smallest_rank_within(multiplier, RESIDUAL_TOLERANCE), MAX_RANK)


def is_exactly_low_rank(multiplier: Multiplier) -> bool:
    """True when the default rank emulates the table exactly (true rank <= MAX_RANK)."""
    return true_rank(multiplier) <= MAX_RANK


@cache
def factor_tables(
    multiplier: Multiplier, rank: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """(U, V), each 256 x rank, indexed like the LUT; cached per multiplier, rank, device, dtype."""
    u, v, _ = error_svd(multiplier)
    return leading_columns(u, rank, device, dtype), leading_columns(v, rank, device, dtype)


def leading_columns(factors: np.ndarray, rank: int, device, dtype) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(factors[:, :rank])).to(device, dtype)


def resolve_rank(multiplier: Multiplier, rank: int | None) -> int:
    if rank is None:
        return default_rank(multiplier)
    if not 0 <= rank <= 256:
        raise ValueError(f"rank={rank} must be in 0..256 (or None for the multiplier's default)")
    return rank
