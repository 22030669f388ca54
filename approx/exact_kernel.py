"""Exact LUT convolution as one embedding-bag sum: no per-product gather tensor is materialised.

Each (input channel c, kernel tap k, activation code a) owns one row of a table whose columns are
the output channels of c's group: row = sign(w) * s_w * LUT[a, b(o, c, k)]. An output pixel is then
the sum, over its receptive field, of the rows its codes select (weighted by sign(x) for
sign-magnitude tables): exactly the contract's sum, evaluated with float32 accumulation.
"""

import torch
import torch.nn.functional as F

from approx.geometry import Geometry
from approx.quantize import Quantized

MAX_INDEX_ENTRIES = 1 << 24  # bounds the unfolded index tensor per batch chunk (128 MiB int64)
MAX_TABLE_ENTRIES = 1 << 25  # bounds the row table per output-channel chunk (128 MiB float32)


def row_table(lut: torch.Tensor, wq: Quantized, groups: int, outputs: slice) -> torch.Tensor:
    """(C*K*256, n_outputs) rows for the output channels `outputs` within every group."""
    out_channels, group_in, kh, kw = wq.index.shape
    taps = group_in * kh * kw
    per_group = out_channels // groups
    factor = wq.scale if wq.sign is None else wq.sign * wq.scale
    codes = wq.index.reshape(groups, per_group, taps)[:, outputs]
    factor = factor.expand_as(wq.value).reshape(groups, per_group, taps)[:, outputs]
    columns = lut[:, codes] * factor  # (256, G, n, taps)
    return columns.permute(1, 3, 0, 2).reshape(groups * taps * 256, -1)


def bag_indices(xq: Quantized, weight: torch.Tensor, geometry: Geometry):
    """Row indices (N*L*G, taps per group) and per-row sign(x) weights (or None)."""
    unfold = geometry.unfold_kwargs(weight)
    codes = F.unfold(xq.index.to(torch.float32), **unfold)  # (N, C*K, L), padding reads code 0
    offsets = 256 * torch.arange(codes.shape[1], device=codes.device).view(1, -1, 1)
    rows = (codes.long() + offsets).transpose(1, 2)
    bag_width = codes.shape[1] // geometry.groups
    signs = None
    if xq.sign is not None:
        signs = F.unfold(xq.sign.to(torch.float32), **unfold).transpose(1, 2)
        signs = signs.reshape(-1, bag_width)
    return rows.reshape(-1, bag_width), signs


def exact_chunk(lut, xq: Quantized, wq: Quantized, weight, geometry: Geometry) -> torch.Tensor:
    """(N, L, G, per_group) sums for one batch chunk, in units of s_x."""
    rows, signs = bag_indices(xq, weight, geometry)
    groups = geometry.groups
    per_group = weight.shape[0] // groups
    taps = rows.shape[1]
    step = max(1, MAX_TABLE_ENTRIES // (groups * taps * 256))
    out = torch.empty(rows.shape[0], per_group, device=lut.device)
    for start in range(0, per_group, step):
        outputs = slice(start, min(start + step, per_group))
        table = row_table(lut, wq, groups, outputs)
        out[:, outputs] = F.embedding_bag(rows, table, per_sample_weights=signs, mode="sum")
    return out.view(xq.index.shape[0], -1, groups * per_group)


def batch_slice(q: Quantized, batch: slice) -> Quantized:
    sign = None if q.sign is None else q.sign[batch]
    return Quantized(q.value[batch], q.index[batch], sign, q.scale)


def exact_lut_conv(lut: torch.Tensor, xq: Quantized, wq: Quantized, weight: torch.Tensor,
                   geometry: Geometry) -> torch.Tensor:
    """sum sign(x) sign(w) s_w LUT[a, b] (or sum s_w LUT[a, b] signed) as (N, O, Ho, Wo) * s_x."""
    batch = xq.index.shape[0]
    height, width = geometry.output_size(xq.index, weight)
    per_sample = height * width * weight[0].numel() * geometry.groups
    step = max(1, MAX_INDEX_ENTRIES // max(per_sample, 1))
    chunks = [
        exact_chunk(lut, batch_slice(xq, slice(s, s + step)), wq, weight, geometry)
        for s in range(0, batch, step)
    ]
    out = torch.cat(chunks).transpose(1, 2).reshape(batch, -1, height, width)
    return out * xq.scale
