"""Low-rank emulated convolution: one float convolution per term of E = LUT - a*b.

With E[a, b] ~= sum_r U_r(a) V_r(b) (approx.lowrank), the contract's sum is
    s_x s_w [conv(sign(x) a, sign(w) b) + sum_r conv(sign(x) U_r(a), sign(w) V_r(b))].
The activation terms come from the signed code `value` (= sign(x) a) by one 1-D table lookup
each; the scales are folded into the small weight terms; each term is its own convolution,
accumulated in place, so no (R+1)-channel feature tensor and no strided term sum is needed.
The activation terms depend only on the input, so a supernet computes them once per shared
cell state (approx.sharing).
"""

from functools import cache

import torch
import torch.nn.functional as F

from approx.geometry import Geometry
from approx.lowrank import factor_tables
from approx.multiplier import Multiplier
from approx.quantize import Quantized, levels, sign_extend


@cache
def activation_table(multiplier: Multiplier, rank: int, device: torch.device,
                     dtype: torch.dtype) -> tuple[torch.Tensor, bool]:
    """(R, rows) table of sign(x) U_r(a) indexed by `value + levels`, and whether it has the two
    extra rows (code 0 of a negative / positive x) needed when U_r(0) is not zero."""
    u, _ = factor_tables(multiplier, rank, device, dtype)
    return activation_table_of(u, multiplier.signed)


def activation_table_of(u: torch.Tensor, signed: bool) -> tuple[torch.Tensor, bool]:
    """activation_table for activation-side factors `u` (256 x R, indexed like the LUT)."""
    top = levels(signed)
    values = torch.arange(-top, top + 1, device=u.device)
    if signed:
        return u[values & 255].T.contiguous(), False  # int8 bit patterns: no separate sign
    rows = torch.sign(values).to(u.dtype).unsqueeze(1) * u[values.abs()]
    zero_sign = bool(u[0].any())
    if zero_sign:
        rows = torch.cat([rows, -u[:1], u[:1]])
    return rows.T.contiguous(), zero_sign


def activation_rows(xq: Quantized, zero_sign: bool) -> torch.Tensor:
    """Row of each activation in `activation_table` (int32, the activation's memory layout)."""
    top = levels(xq.signed)
    rows = (xq.value + top).int().clamp_(0, 2 * top)  # NaN codes: any row; the scale is NaN
    if zero_sign:  # a nonzero x whose code is 0 still selects sign(x) * U_r(0)
        code_zero = (xq.value == 0) & (xq.source != 0)
        rows = torch.where(code_zero, 2 * top + 1 + (xq.source > 0).int(), rows)
    return rows


def lookup(tables: torch.Tensor, rows: torch.Tensor) -> list[torch.Tensor]:
    """[table[rows] for each row of `tables`] in the layout of `rows` (a channels-last map stays
    channels-last), written into one buffer."""
    order = (0, 2, 3, 1) if rows.dim() == 4 and not rows.is_contiguous() else None
    packed = rows if order is None else rows.permute(order)
    if not packed.is_contiguous():
        return [table[rows.long()] for table in tables]
    flat = packed.reshape(-1)
    out = torch.empty((len(tables), flat.numel()), dtype=tables.dtype, device=tables.device)
    for table, term in zip(tables, out, strict=True):
        torch.index_select(table, 0, flat, out=term)
    terms = out.view(len(tables), *packed.shape)
    return list(terms) if order is None else [t.permute(0, 3, 1, 2) for t in terms]


def table_terms(xq: Quantized, table: torch.Tensor, zero_sign: bool) -> list[torch.Tensor]:
    """[table[r][row of each activation]] for the R rows of an activation table."""
    return lookup(table, activation_rows(xq, zero_sign)) if len(table) else []


def stacked_table(activation: torch.Tensor, signed: bool) -> torch.Tensor:
    """(rows, 1 + R): each row of an activation table (R x rows) with the code value it stands
    for in front (0 on the two sign rows of code 0), so one gather gives all 1 + R terms."""
    top = levels(signed)
    value = torch.arange(activation.shape[1], device=activation.device,
                         dtype=activation.dtype) - top
    value[2 * top + 1:] = 0
    return torch.cat([value[:, None], activation.T], dim=1).contiguous()


def stacked_terms(xq: Quantized, table: torch.Tensor, zero_sign: bool) -> torch.Tensor:
    """The 1 + R terms [sign(x) a, sign(x) Q_1(a), ...] of a channels-last activation (N, C, H,
    W) side by side: one channels-last map of C (1 + R) channels, channel c (1 + R) + t holding
    term t of channel c, from one gather of whole rows of `stacked_table` (R gathers of single
    values, the per-term form, cost 3x as much on the CPU)."""
    packed = activation_rows(xq, zero_sign).permute(0, 2, 3, 1)
    n, h, w, c = packed.shape
    terms = torch.index_select(table, 0, packed.reshape(-1))
    return terms.view(n, h, w, c * table.shape[1]).permute(0, 3, 1, 2)


def stacked_weight(w_terms: torch.Tensor) -> torch.Tensor:
    """(O, C (1 + R), 1, 1): 1x1 weight terms (1 + R, O, C, 1, 1) in stacked_terms' order."""
    terms, out_channels, in_channels = w_terms.shape[:3]
    return w_terms.permute(1, 2, 0, 3, 4).reshape(out_channels, in_channels * terms, 1, 1)


def activation_terms(xq: Quantized, multiplier: Multiplier, rank: int) -> list[torch.Tensor]:
    """[sign(x) U_r(a) for r = 1..rank], each shaped (and laid out) like x."""
    if rank == 0:
        return []
    return table_terms(xq, *activation_table(multiplier, rank, xq.value.device, xq.value.dtype))


@cache
def weight_table(multiplier: Multiplier, rank: int, device: torch.device,
                 dtype: torch.dtype) -> torch.Tensor:
    """Rows [value(b), V_1(b), ..., V_R(b)] indexed like Quantized.sign_index (sign-extended
    for sign-magnitude tables); cached, as every weight of every step reads it."""
    _, v = factor_tables(multiplier, rank, device, dtype)
    values = torch.arange(256, device=device, dtype=dtype)
    if multiplier.signed:
        values = torch.where(values >= 128, values - 256, values)  # int8 bit patterns
    return sign_extend(torch.cat([values.unsqueeze(1), v], dim=1), multiplier.signed)


def weight_terms(wq: Quantized, multiplier: Multiplier, rank: int,
                 x_scale: torch.Tensor) -> torch.Tensor:
    """(1 + rank, O, C/groups, kh, kw): s_x s_w [sign(w) b, sign(w) V_1(b), ...]."""
    table = weight_table(multiplier, rank, wq.value.device, wq.value.dtype)
    return terms_from_table(wq, table, x_scale)


def terms_from_table(wq: Quantized, table: torch.Tensor, x_scale: torch.Tensor,
                     column_weights: torch.Tensor | None = None) -> torch.Tensor:
    """(columns, O, C/groups, kh, kw): s_x s_w table[sign_index(w)], each column times its weight
    (when given: a mixture of multipliers weights each one's columns, approx.mixed)."""
    factor = (wq.scale * x_scale).unsqueeze(-1)
    if column_weights is not None:
        factor = factor * column_weights
    terms = F.embedding(wq.sign_index(), table) * factor
    return terms.permute(4, 0, 1, 2, 3).contiguous()


def term_convs(x_value: torch.Tensor, x_terms: list[torch.Tensor], w_terms: torch.Tensor,
               geometry: Geometry) -> torch.Tensor:
    """conv(x_value, w_terms[0]) + sum_r conv(x_terms[r], w_terms[r + 1]), accumulated in place."""
    kwargs = geometry.conv_kwargs()
    out = F.conv2d(x_value, w_terms[0], **kwargs)
    for x_term, w_term in zip(x_terms, w_terms[1:], strict=True):
        out.add_(F.conv2d(x_term, w_term, **kwargs))
    return out


def lowrank_conv(xq: Quantized, x_terms: list[torch.Tensor], wq: Quantized,
                 multiplier: Multiplier, geometry: Geometry) -> torch.Tensor:
    """The low-rank emulated convolution (no bias) from the activation codes and terms."""
    w_terms = weight_terms(wq, multiplier, len(x_terms), xq.scale)
    return term_convs(xq.value, x_terms, w_terms, geometry)
