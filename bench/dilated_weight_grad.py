"""Benchmark: the weight gradient of a dilated depthwise convolution, oneDNN's kernel against
kernels.convgrad's polyphase sum of undilated ones, side by side (which one convgrad takes
depends on the CPU's kernels: see kernels/convgrad.py). Batch 128, 3x3, dilation 2, padding 2,
channels-last, as the default search's dil_conv_3x3. Prints ONE JSON line.

    .venv/bin/python bench/dilated_weight_grad.py --threads 1
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.kernel_timing import milliseconds, run  # noqa: E402
from kernels import convgrad  # noqa: E402

SHAPES = ((8, 16), (16, 8), (32, 4), (64, 8), (16, 32))  # (channels, side)


def compare(channels: int, side: int, repeats: int) -> dict:
    x = torch.randn(128, channels, side, side).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(channels, 1, 3, 3)
    grad = torch.randn_like(F.conv2d(x, weight, padding=2, dilation=2, groups=channels))
    onednn = milliseconds(lambda: convgrad._aten_backward(
        grad, x, weight, (1, 1), (2, 2), (2, 2), channels, False, True), repeats)
    polyphase = milliseconds(lambda: convgrad._dilated_weight_grad(
        grad, x, weight, (2, 2), (2, 2), channels), repeats)
    return {"channels": channels, "side": side, "onednn_ms": onednn,
            "polyphase_ms": polyphase, "speedup": round(onednn / polyphase, 2)}


def main(argv=None) -> int:
    return run(__doc__, lambda repeats: [compare(channels, side, repeats)
                                         for channels, side in SHAPES], argv)


if __name__ == "__main__":
    sys.exit(main())
