"""Exact LUT convolution as one embedding-bag sum: no per-product gather tensor is materialised.

Each (input channel c, kernel tap k, activation row r) owns one row of a table whose columns are
the output channels of c's group: row = sign(x) sign(w) s_w LUT[a, b(o, c, k)], where the row r
encodes sign(x) and the code a (Quantized.sign_index). An output pixel is the sum, over its
receptive field, of the rows its activations select: exactly the contract's sum, accumulated in
float32 (or in the table's dtype: a float64 table with unit scales gives the exact integer sums
that deploy/ needs). Patches are read through a strided view, so only the index matrix is
materialised.
"""

import torch
import torch.nn.functional as F

from approx.geometry import Geometry
from approx.quantize import Quantized, sign_extend

MAX_INDEX_ENTRIES = 1 << 24  # bounds the patch index matrix per batch chunk (128 MiB int64)
MAX_TABLE_ENTRIES = 1 << 25  # bounds the row table per output-channel chunk (128 MiB float32)


def row_table(lut: torch.Tensor, xq: Quantized, wq: Quantized, groups: int, outputs: slice):
    """(C*K*rows, n_outputs) table for the output channels `outputs` within every group."""
    out_channels, group_in, kh, kw = wq.index.shape
    taps = group_in * kh * kw
    per_group = out_channels // groups
    factor = wq.scale if wq.sign is None else wq.sign * wq.scale
    codes = wq.index.reshape(groups, per_group, taps)[:, outputs]
    factor = factor.expand_as(wq.value).reshape(groups, per_group, taps)[:, outputs]
    columns = sign_extend(lut[:, codes] * factor, xq.sign is None)  # (rows, G, n, taps)
    return columns.permute(1, 3, 0, 2).reshape(groups * taps * xq.rows_per_code_set, -1)


def patch_rows(xq: Quantized, weight: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """Table rows of every receptive field: (N*Ho*Wo*G, taps per group), via a strided view."""
    rows_map = xq.sign_index()
    batch, channels = rows_map.shape[:2]
    pad_h, pad_w = geometry.padding
    padded = F.pad(rows_map, (pad_w, pad_w, pad_h, pad_h), value=xq.padding_index)
    padded = padded.permute(0, 2, 3, 1).contiguous()  # (N, Hp, Wp, C)
    s_n, s_h, s_w, s_c = padded.stride()
    (stride_h, stride_w), (dil_h, dil_w) = geometry.stride, geometry.dilation
    kh, kw = weight.shape[2:]
    height, width = geometry.output_size(xq.index, weight)
    patches = padded.as_strided(
        (batch, height, width, channels, kh, kw),
        (s_n, s_h * stride_h, s_w * stride_w, s_c, s_h * dil_h, s_w * dil_w),
    )
    offsets = torch.arange(channels * kh * kw, device=padded.device).view(channels, kh, kw)
    rows = patches + offsets * xq.rows_per_code_set
    return rows.reshape(-1, channels * kh * kw // geometry.groups)


def exact_chunk(lut, xq: Quantized, wq: Quantized, weight, geometry: Geometry) -> torch.Tensor:
    """(N, L, G, per_group) sums for one batch chunk, in units of s_x."""
    rows = patch_rows(xq, weight, geometry)
    groups = geometry.groups
    per_group = weight.shape[0] // groups
    taps = rows.shape[1]
    step = max(1, MAX_TABLE_ENTRIES // (groups * taps * 256))
    out = torch.empty(rows.shape[0], per_group, device=lut.device, dtype=lut.dtype)
    for start in range(0, per_group, step):
        outputs = slice(start, min(start + step, per_group))
        table = row_table(lut, xq, wq, groups, outputs)
        out[:, outputs] = F.embedding_bag(rows, table, mode="sum")
    return out.view(xq.index.shape[0], -1, groups * per_group)


def exact_lut_conv(lut: torch.Tensor, xq: Quantized, wq: Quantized, weight: torch.Tensor,
                   geometry: Geometry) -> torch.Tensor:
    """sum sign(x) sign(w) s_w LUT[a, b] (or sum s_w LUT[a, b] signed) as (N, O, Ho, Wo) * s_x."""
    batch = xq.index.shape[0]
    height, width = geometry.output_size(xq.index, weight)
    per_sample = height * width * weight[0].numel() * geometry.groups
    step = max(1, MAX_INDEX_ENTRIES // max(per_sample, 1))
    chunks = [
        exact_chunk(lut, xq.batch_slice(slice(s, s + step)), wq, weight, geometry)
        for s in range(0, batch, step)
    ]
    out = torch.cat(chunks).transpose(1, 2).reshape(batch, -1, height, width)
    return out * xq.scale
