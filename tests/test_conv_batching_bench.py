"""bench/conv_batching.py: each merged call computes what the separate calls it replaces do,
so the benchmark compares equal work."""

import json

import torch
import torch.nn.functional as F

from tests.bench_loader import bench_module

conv_batching = bench_module("conv_batching")


def outputs(convs):
    return [F.conv2d(x, w, **kwargs) for x, w, kwargs in convs]


def test_a_merged_edge_conv_is_the_separate_convs_side_by_side():
    for kind in ("pointwise", "depthwise"):
        separate, merged = conv_batching.edge_convs(kind, 4, 5, 3)
        expected = torch.cat(outputs(separate), dim=1)
        torch.testing.assert_close(outputs(merged)[0], expected, rtol=1e-5, atol=1e-5)


def test_stacked_terms_in_one_grouped_conv_sum_the_term_convs():
    separate, merged = conv_batching.term_convs(4, 5, 3)
    expected = torch.stack(outputs(separate)).sum(0)
    torch.testing.assert_close(outputs(merged)[0], expected, rtol=1e-5, atol=1e-5)


def test_the_benchmark_prints_one_json_line(capsys, monkeypatch):
    monkeypatch.setattr(conv_batching, "BATCH", 2)
    assert conv_batching.main(["--repeats", "1", "--threads", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    forms = {row["form"] for row in report["rows"]}
    assert forms == {"edge pointwise", "edge depthwise", "terms depthwise"}
    assert all(row["merged_ms"] > 0 and row["separate_ms"] > 0 for row in report["rows"])
