"""Naive unfold-and-gather evaluation of the contract's sum: the slow reference for tests/bench."""

import torch
import torch.nn.functional as F

from approx.geometry import Geometry
from approx.quantize import quantize_activations, quantize_weights
from approx.registry import load_multiplier


def gather_conv2d(x, weight, multiplier, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """LUT[a, b] gathered for every (pixel, output channel, tap), summed in float64."""
    multiplier = load_multiplier(multiplier)
    g = Geometry.of(stride, padding, dilation, groups)
    xq = quantize_activations(x.detach().float(), multiplier.signed)
    wq = quantize_weights(weight.detach().float(), multiplier.signed)
    unfold = g.unfold_kwargs(weight)
    a = F.unfold(xq.index.double(), **unfold).long()  # (N, C*K, L)
    sx = F.unfold(xq.sign.double(), **unfold) if xq.sign is not None else torch.ones_like(a)
    out_c, taps = weight.shape[0], weight[0].numel()
    per_group = out_c // groups
    b = wq.index.reshape(out_c, taps)
    sw = wq.sign.reshape(out_c, taps).double() if wq.sign is not None else torch.ones_like(b)
    lut = multiplier.lut.long().to(x.device)
    outputs = []
    for o in range(out_c):
        rows = slice((o // per_group) * taps, (o // per_group + 1) * taps)
        products = lut[a[:, rows], b[o].view(1, -1, 1)].double()  # (N, taps, L)
        terms = products * sx[:, rows] * sw[o].view(1, -1, 1)
        outputs.append(terms.sum(1) * float(wq.scale[o]))
    height, width = g.output_size(x, weight)
    out = torch.stack(outputs, 1).reshape(x.shape[0], out_c, height, width) * float(xq.scale)
    out = out.to(x.dtype)
    return out if bias is None else out + bias.view(1, -1, 1, 1)
