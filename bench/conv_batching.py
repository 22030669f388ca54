"""Benchmark: would fewer, larger convolution calls make the supernet faster on the CPU?

A default search step spends about 1.1 s on per-call work (docs/search_profile.md), so the
idea was to merge convolutions: the same op on every edge into one node as one grouped conv
(E edges, per-edge weights), and an emulated depthwise conv's 1 + R basis terms as one grouped
conv over the stacked terms. This measures each merge against the separate calls it would
replace, forward and backward (input and weight gradients), at the default search's cell shapes
(batch 128, 8 channels at 16 px; 16 at 8 px in its reduction cells) and the default retrain's
(12 channels at 16 px), channels-last as the networks run. Prints ONE JSON line: per shape
and form, milliseconds separate and merged and their ratio (> 1: merging is slower).

    .venv/bin/python bench/conv_batching.py --threads 2
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 .venv/bin/python bench/conv_batching.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.kernel_timing import milliseconds, run  # noqa: E402

BATCH = 128
# (channels, side, how many convs one merged call replaces)
EDGE_SHAPES = ((8, 16, 2), (8, 16, 5), (16, 8, 5))  # edges into a search node: 2 .. 5
TERM_SHAPES = ((8, 16, 4), (12, 16, 2), (12, 16, 3))  # 1 + R terms: the mixture 4, drum4 3


def leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().requires_grad_()


def feature_map(channels: int, side: int) -> torch.Tensor:
    return leaf(torch.randn(BATCH, channels, side, side).contiguous(
        memory_format=torch.channels_last))


def forward_backward(convs) -> None:
    """Run each (input, weight, kwargs) conv and backpropagate through all of them."""
    total = sum(F.conv2d(x, w, **kwargs).sum() for x, w, kwargs in convs)
    total.backward()


def edge_convs(kind: str, channels: int, side: int, edges: int) -> tuple[list, list]:
    """(separate, merged) convs of one op on `edges` edges (kind "pointwise": 1x1, else a 3x3
    depthwise); the merged conv reads the inputs and weights concatenated along channels, so its
    output is the separate outputs concatenated."""
    pointwise = kind == "pointwise"
    weight_shape = (channels, channels, 1, 1) if pointwise else (channels, 1, 3, 3)
    kwargs = {"groups": 1} if pointwise else {"padding": 1, "groups": channels}
    separate = [(feature_map(channels, side), leaf(torch.randn(weight_shape)), kwargs)
                for _ in range(edges)]
    merged_x = torch.cat([x for x, _, _ in separate], dim=1)
    merged_w = torch.cat([w for _, w, _ in separate])
    merged_groups = edges if pointwise else edges * channels
    return separate, [(leaf(merged_x.contiguous(memory_format=torch.channels_last)),
                       leaf(merged_w), {**kwargs, "groups": merged_groups})]


def term_convs(channels: int, side: int, terms: int) -> tuple[list, list]:
    """(separate, merged) convs of an emulated depthwise conv's basis terms: one conv per term
    (their outputs summed, as approx.lowrank_conv.term_convs accumulates them) against one
    grouped conv over the terms stacked per channel (channel c * terms + t: term t of c)."""
    kwargs = {"padding": 1, "groups": channels}
    separate = [(feature_map(channels, side), leaf(torch.randn(channels, 1, 3, 3)), kwargs)
                for _ in range(terms)]
    stacked_x = torch.stack([x for x, _, _ in separate], dim=2).flatten(1, 2)
    stacked_w = torch.cat([w for _, w, _ in separate], dim=1)
    return separate, [(leaf(stacked_x.contiguous(memory_format=torch.channels_last)),
                       leaf(stacked_w), kwargs)]


def compare(form: str, convs: tuple[list, list], repeats: int) -> dict:
    separate, merged = convs
    x, _, _ = separate[0]
    return {"form": form, "channels": x.shape[1], "side": x.shape[-1],
            "calls_merged": len(separate),
            **timed(lambda: forward_backward(separate), lambda: forward_backward(merged),
                    repeats)}


def timed(separate, merged, repeats: int) -> dict:
    separate_ms, merged_ms = milliseconds(separate, repeats), milliseconds(merged, repeats)
    return {"separate_ms": separate_ms, "merged_ms": merged_ms,
            "merged_over_separate": round(merged_ms / separate_ms, 2)}


def rows(repeats: int) -> list[dict]:
    merged_edges = [compare(f"edge {kind}", edge_convs(kind, *shape), repeats)
                    for shape in EDGE_SHAPES for kind in ("pointwise", "depthwise")]
    return merged_edges + [compare("terms depthwise", term_convs(*shape), repeats)
                           for shape in TERM_SHAPES]


def main(argv=None) -> int:
    return run(__doc__, rows, argv, threads=2, repeats=50, batch=BATCH)


if __name__ == "__main__":
    sys.exit(main())
