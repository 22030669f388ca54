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
MixturePlan holds a mixture's members, their ranks under a rank cap, and these tables per device.
"""

from dataclasses import dataclass, field
from functools import cache

import numpy as np
import torch

from approx.conv import float_table
from approx.lowrank import error_svd, reachable_codes, resolve_rank
from approx.lowrank_conv import activation_table_of, stacked_table
from approx.multiplier import Multiplier, operand_values
from approx.quantize import sign_extend
from approx.surrogate import surrogate_rank

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
        residual = u - np.outer(a, c0)
        left, sizes, right = np.linalg.svd(residual, full_matrices=False)
        keep = sizes > SPAN_TOLERANCE * max(sizes[0], 1e-300)
        # rows the residual leaves zero stay exactly zero (not the rows where u is zero: there
        # the residual is -a c0, e.g. mitchell's exact powers of two when c0 != 0)
        used = np.any(residual != 0, axis=1, keepdims=True)
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
    activation-table form), 'stacked' (rows x (1 + R'), its stacked_table), 'weight' (rows
    indexed like Quantized.sign_index, columns (j, m) flattened: 1 + R' basis terms x
    members)."""
    basis, tables = factor_basis(members, signed)
    activation, zero_sign = activation_table_of(
        torch.from_numpy(basis).to(device, torch.float32), signed)
    weight = torch.from_numpy(tables.reshape(256, -1)).to(device, torch.float32)
    return {"activation": activation, "zero_sign": zero_sign, "terms": 1 + basis.shape[1],
            "stacked": stacked_table(activation, signed),
            "weight": sign_extend(weight, signed).contiguous()}


@dataclass(frozen=True, eq=False)
class MixturePlan:
    """8-bit members (position in the mixture, multiplier, rank) and the float member's
    position; per device, the mixed tables (approx.mixed_tables) and index tensors."""

    signed: bool
    members: tuple[tuple[int, Multiplier, int], ...]
    float_index: int | None
    size: int
    _device_cache: dict = field(default_factory=dict, repr=False)
    _alone: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, multipliers: tuple[Multiplier | None, ...], signed: bool, rank_cap,
           truncate_low_rank: bool) -> "MixturePlan":
        """The plan of a mixture's members (None: the float member) under a rank policy
        (approx.surrogate)."""
        members = tuple(
            (i, m, resolve_rank(m, None) if rank_cap is None
             else surrogate_rank(m, rank_cap, truncate_low_rank))
            for i, m in enumerate(multipliers) if m is not None)
        floats = [i for i, m in enumerate(multipliers) if m is None]
        return cls(signed, members, floats[0] if floats else None, len(multipliers))

    def alone(self, position: int) -> "MixturePlan":
        """The plan of the member at `position` by itself (a one-hot mixture, e.g. a sampled
        multiplier, runs only it: 1 + its rank convolutions, or one float conv)."""
        if position not in self._alone:
            if position == self.float_index:
                self._alone[position] = MixturePlan(self.signed, (), 0, 1)
            else:
                member = next((0, m, r) for i, m, r in self.members if i == position)
                self._alone[position] = MixturePlan(self.signed, (member,), None, 1)
        return self._alone[position]

    @property
    def convolutions(self) -> int:
        """Float convolutions per forward in mode 'lowrank' (1 + R'; +1 with "float")."""
        terms = 1 + factor_basis(self.ranked, self.signed)[0].shape[1] if self.members else 0
        return terms + (self.float_index is not None)

    @property
    def ranked(self) -> Members:
        return tuple((m, r) for _, m, r in self.members)

    def tables(self, device: torch.device) -> dict:
        """mixed_tables plus the 8-bit members' positions and stacked float LUTs (exact mode)."""
        if device not in self._device_cache:
            positions = torch.tensor([i for i, _, _ in self.members], dtype=torch.long,
                                     device=device)
            tables = {"eight_bit": positions}
            if self.members:
                tables.update(mixed_tables(self.ranked, self.signed, device))
                tables["luts"] = torch.stack([float_table(m, device) for _, m, _ in self.members])
            self._device_cache[device] = tables
        return self._device_cache[device]
