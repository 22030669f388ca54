"""Benchmark emulated convolution: prints one JSON line of fwd+bwd times as ratios to F.conv2d.

Batch 64, 32x32, 16 channels; forms dense 3x3, depthwise 3x3, 1x1. Lowrank per multiplier, exact
mode, and the naive unfold+gather reference (forward only: it has no backward).
`--mixed`: instead, a sep-conv (depthwise 3x3 + pointwise 1x1, channels-last) whose convs run on
MixedApproxConv2d over MIXTURE (sum of ranks 6) against the float one (LeanConv2d, as in the
supernet), forward+backward, as in the supernet's weight step (mixture weights detached) and
its architecture step (they need a gradient). Times are process CPU seconds (all threads), best
of a few runs, so that other work on a shared machine does not distort the ratios.
Usage: python bench/approx_conv.py [--lut_dir DIR] [--names ..] [--mixed] [--threads N]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from approx import (  # noqa: E402
    MixedApproxConv2d,
    MultiplierMixture,
    approx_conv2d,
    load_multiplier,
)
from approx.lowrank import resolve_rank  # noqa: E402
from approx.reference import gather_conv2d  # noqa: E402
from kernels.lean import LeanConv2d  # noqa: E402
from runner.errors import exit_status  # noqa: E402

BATCH, SIZE, CHANNELS = 64, 32, 16
FORMS = {
    "dense3x3": {"kernel": 3, "groups": 1, "padding": 1},
    "depthwise3x3": {"kernel": 3, "groups": CHANNELS, "padding": 1},
    "conv1x1": {"kernel": 1, "groups": 1, "padding": 0},
}
BUILTINS = ["exact", "kulkarni", "drum4", "mitchell", "trunc8"]
EXACT_MODE_MULTIPLIER = "mitchell"
MIXTURE = ["exact", "drum6", "kulkarni", "drum4", "bam4_4"]


def best_seconds(step, repeats: int) -> float:
    step()  # warm-up (also fills the factor caches)
    times = []
    for _ in range(repeats):
        start = time.process_time()
        step()
        times.append(time.process_time() - start)
    return min(times)


def interleaved_ratio(step, base_step, repeats: int) -> float:
    """min(step) / min(base), the two timed alternately so machine load drifts affect both."""
    pairs = [(best_seconds(step, 1), best_seconds(base_step, 1)) for _ in range(repeats)]
    return min(p[0] for p in pairs) / min(p[1] for p in pairs)


def forward_backward(conv, x, weight):
    def step():
        x.grad = weight.grad = None
        conv(x, weight).sum().backward()
    return step


def operands(form: dict):
    generator = torch.Generator().manual_seed(0)
    x = torch.relu(torch.randn(BATCH, CHANNELS, SIZE, SIZE, generator=generator))
    shape = (CHANNELS, CHANNELS // form["groups"], form["kernel"], form["kernel"])
    weight = torch.randn(shape, generator=generator) * 0.1
    return x.requires_grad_(), weight.requires_grad_()


def bench_form(form: dict, names: list[str], lut_dir) -> dict:
    x, weight = operands(form)
    geometry = {"padding": form["padding"], "groups": form["groups"]}
    base = forward_backward(lambda a, w: F.conv2d(a, w, **geometry), x, weight)
    result = {"conv2d_fwd_bwd_cpu_ms": round(1000 * best_seconds(base, 5), 2), "lowrank": {}}
    for name in names:
        multiplier = load_multiplier(name, lut_dir=lut_dir)
        conv = lambda a, w, m=multiplier: approx_conv2d(a, w, m, mode="lowrank", **geometry)  # noqa: E731
        rank = resolve_rank(multiplier, None)
        ratio = interleaved_ratio(forward_backward(conv, x, weight), base, 3)
        result["lowrank"][name] = {"rank": rank, "ratio": round(ratio, 2), "target_ratio": rank + 2}
    exact = lambda a, w: approx_conv2d(a, w, EXACT_MODE_MULTIPLIER, mode="exact", **geometry)  # noqa: E731
    naive = lambda: gather_conv2d(x, weight, EXACT_MODE_MULTIPLIER, **geometry)  # noqa: E731
    result["exact_fwd_bwd_ratio"] = round(
        interleaved_ratio(forward_backward(exact, x, weight), base, 3), 2)
    with torch.no_grad():
        result["exact_speedup_vs_naive_fwd"] = round(
            1 / interleaved_ratio(lambda: exact(x, weight), naive, 2), 1)
    return result


def sep_conv(conv, **kwargs) -> torch.nn.Module:
    layers = torch.nn.Sequential(conv(CHANNELS, CHANNELS, 3, padding=1, groups=CHANNELS, **kwargs),
                                 conv(CHANNELS, CHANNELS, 1, **kwargs))
    return layers.to(memory_format=torch.channels_last)


def bench_mixed() -> dict:
    """Mixed sep-conv over MIXTURE vs the float sep-conv, fwd+bwd, both kinds of step."""
    x = operands(FORMS["conv1x1"])[0].contiguous(memory_format=torch.channels_last)
    mixture = MultiplierMixture(MIXTURE)
    logits = torch.zeros(len(MIXTURE), requires_grad=True)
    mixed = sep_conv(MixedApproxConv2d, mixture=mixture)
    plain = sep_conv(LeanConv2d)  # the supernet's float conv (convgrad backward)

    def step(model, arch: bool):
        def run():
            x.grad = logits.grad = None
            model.zero_grad(set_to_none=True)
            weights = torch.softmax(logits, 0)
            mixture.weights = weights if arch else weights.detach()
            model(x).square().sum().backward()
        return run

    base = step(plain, False)
    result = {"members": MIXTURE,
              "ranks": [r for _, _, r in mixture.plan(None).members],
              "convolutions_per_mixed_conv": mixture.plan(None).convolutions,
              "float_sep_conv_fwd_bwd_cpu_ms": round(1000 * best_seconds(base, 5), 2)}
    for name, arch in (("weight_step", False), ("arch_step", True)):
        result[f"{name}_ratio"] = round(interleaved_ratio(step(mixed, arch), base, 5), 2)
    return result


def check_tables(lut_dir, names) -> None:
    """--names are tables of --lut_dir, which must be a directory."""
    if names and not lut_dir:
        raise ValueError("--names needs --lut_dir DIR holding <name>.bin tables")
    if lut_dir and not Path(lut_dir).is_dir():
        raise ValueError(f"--lut_dir {lut_dir}: not a directory; pass the folder of "
                         f"EvoApproxLib .bin tables")
    missing = [name for name in names or () if not (Path(lut_dir) / f"{name}.bin").is_file()]
    if missing:
        raise ValueError(f"--names: no {', '.join(missing)} .bin in --lut_dir {lut_dir}; pass "
                         f"names of the tables there")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lut_dir", default=None, help="folder of EvoApproxLib .bin tables")
    parser.add_argument("--names", nargs="*", default=None, help="EvoApprox names in --lut_dir")
    parser.add_argument("--mixed", action="store_true",
                        help="time the 5-multiplier mixed sep-conv against the float one")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's); 1 on a loaded 2-core machine, "
                             "where two threads wait on each other")
    args = parser.parse_args()
    check_tables(args.lut_dir, args.names)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.mixed:
        print(json.dumps({"benchmark": "approx_conv_mixed", "timer": "process_time",
                          "batch": BATCH, "size": SIZE, "channels": CHANNELS,
                          "threads": torch.get_num_threads(), "torch": torch.__version__,
                          **bench_mixed()}))
        return
    names = list(BUILTINS)
    if args.lut_dir:
        found = sorted(p.stem for p in Path(args.lut_dir).glob("mul8u_*.bin"))
        names += args.names or found
    report = {
        "benchmark": "approx_conv", "timer": "process_time", "batch": BATCH, "size": SIZE,
        "channels": CHANNELS,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "exact_mode_multiplier": EXACT_MODE_MULTIPLIER,
        "forms": {key: bench_form(form, names, args.lut_dir) for key, form in FORMS.items()},
    }
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(exit_status(main))
