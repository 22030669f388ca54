"""The mixed table's low-rank form: the members' concatenated factors in a basis of their span.

Member m's emulation is conv(sign(x) a, sign(w) b) + sum_r conv(sign(x) U_mr(a), sign(w) V_mr(b))
(approx.lowrank_conv), so a weighted mixture is one such sum over the concatenated factors with
the weight-side factors scaled by w_m. The members' activation-side factors overlap (exact, drum6,
kulkarni, drum4, bam4_4: 6 factors that span 3 directions besides a), and every activation term
is a lookup and a convolution, so they are re-expressed exactly (to float64 rounding) as
    [a, U_1 .. U_R] = [a, Q] [[1, c0], [0, C]],   Q: 256 x R', R' <= R,
(c0 the projection on a, Q C the SVD of the rest, directions below SPAN_TOLERANCE dropped). Then
    sum_m w_m emul_m = conv(sign(x) a, B_0) + sum_j conv(sign(x) Q_j(a), B_j),
    B_j(b) = sum_m w_m T_mj(b),  T_m0 = b + V_m c0_m,  T_mj = V_m C_jm  (member m's columns),
so a mixture costs 1 + R' convolutions and R' lookups, whatever its weights; T is one table.
"""

from functools import cache

import numpy as np
import torch

from approx.lowrank import error_svd, reachable_codes
from approx.lowrank_conv import activation_table_of
from approx.multiplier import Multiplier, operand_values
from approx.quantize import sign_extend

SPAN_TOLERANCE = 1e-9  # singular values below this fraction of the largest are dependent
Members = tuple[tuple[Multiplier, int], ...]  # (8-bit multiplier, rank), in mixture order


@cache
def factor_basis(members: Members, signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """(Q: 256 x R', T: 256 x (1 + R') x members) in float64, indexed like the LUT."""
    a = operand_values(signed) * reachable_codes(signed)
    factors = [error_svd(m)[:2] for m, _ in members]
    u = np.concatenate([f[0][:, :r] for f, (_, r) in zip(factors, members, strict=True)], 1)
    c0 = a @ u / (a @ a)
    basis, span = np.zeros((256, 0)), np.zeros((0, u.shape[1]))
    if u.shape[1]:
        left, sizes, right = np.linalg.svd(u - np.outer(a, c0), full_matrices=False)
        keep = sizes > SPAN_TOLERANCE * max(sizes[0], 1e-300)
        used = np.any(u != 0, axis=1, keepdims=True)  # rows no member uses stay exactly zero
        basis, span = left[:, keep] * sizes[keep] * used, right[keep]
    tables, start = [], 0
    for (u_v, (_, rank)) in zip(factors, members, strict=True):
        v = u_v[1][:, :rank]
        columns = slice(start, start + rank)
        own = np.concatenate([(operand_values(signed) + v @ c0[columns])[:, None],
                              v @ span[:, columns].T], axis=1)
        tables.append(own)
        start += rank
    return basis, np.stack(tables, axis=2)


@cache
def mixed_tables(members: Members, signed: bool, device: torch.device) -> dict:
    """float32 tables on `device`: 'activation' (R' x rows) and 'zero_sign' (approx.lowrank_conv
    activation-table form), 'weight' (rows indexed like Quantized.sign_index, columns (j, m)
    flattened: 1 + R' basis terms x members)."""
    basis, tables = factor_basis(members, signed)
    activation, zero_sign = activation_table_of(
        torch.from_numpy(basis).to(device, torch.float32), signed)
    weight = torch.from_numpy(tables.reshape(256, -1)).to(device, torch.float32)
    return {"activation": activation, "zero_sign": zero_sign, "terms": 1 + basis.shape[1],
            "weight": sign_extend(weight, signed).contiguous()}
