"""Naive unfold-and-gather evaluation of the contract's sum: the slow reference for tests/bench.

It quantises with the GUIDE's formulas written out here (not approx.quantize), so tests of the
fast paths check the quantisation as well as the sums.
"""

import torch
import torch.nn.functional as F

from approx.geometry import Geometry
from approx.registry import load_multiplier


def contract_codes(v: torch.Tensor, signed: bool, dims: tuple[int, ...]):
    """(LUT index, sign (ones for int8), scale) with the scale's max over `dims`, in float32."""
    v = v.detach().float()
    scale = v.abs().amax(dim=dims, keepdim=True) / (127 if signed else 255)
    if signed:
        codes = torch.where(scale > 0, torch.round(v / scale), torch.zeros_like(v))
        return codes.long() & 255, torch.ones_like(v).double(), scale
    codes = torch.where(scale > 0, torch.round(v.abs() / scale), torch.zeros_like(v))
    return codes.long(), torch.sign(v).double(), scale


def gather_conv2d(x, weight, multiplier, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """LUT[a, b] gathered for every (pixel, output channel, tap), summed in float64."""
    multiplier = load_multiplier(multiplier)
    g = Geometry.of(stride, padding, dilation, groups)
    x_index, x_sign, x_scale = contract_codes(x, multiplier.signed, (0, 1, 2, 3))
    w_index, w_sign, w_scale = contract_codes(weight, multiplier.signed, (1, 2, 3))
    unfold = g.unfold_kwargs(weight)
    a = F.unfold(x_index.double(), **unfold).long()  # (N, C*K, L)
    sx = F.unfold(x_sign, **unfold)
    out_c, taps = weight.shape[0], weight[0].numel()
    per_group = out_c // groups
    b = w_index.reshape(out_c, taps)
    sw = w_sign.reshape(out_c, taps)
    lut = multiplier.lut.long().to(x.device)
    outputs = []
    for o in range(out_c):
        rows = slice((o // per_group) * taps, (o // per_group + 1) * taps)
        products = lut[a[:, rows], b[o].view(1, -1, 1)].double()  # (N, taps, L)
        terms = products * sx[:, rows] * sw[o].view(1, -1, 1)
        outputs.append(terms.sum(1) * float(w_scale[o]))
    height, width = g.output_size(x, weight)
    out = torch.stack(outputs, 1).reshape(x.shape[0], out_c, height, width) * float(x_scale)
    out = out.to(x.dtype)
    return out if bias is None else out + bias.view(1, -1, 1, 1)
