"""Benchmark: the standard DARTS search step against the reference PyTorch DARTS (pt.darts),
side by side in one run.

For each order and batch size, `bench/search_step.py` and the same step of a pt.darts checkout
(https://github.com/khanrc/pt.darts, not shipped here: pass its path as --reference_dir) run
in separate processes, one after the other, `--rounds` times: the same config (8 cells, C=16,
4 nodes, 32x32 synthetic images, 10 classes, the 8 DARTS primitives), threads, steps and
warm-up. Prints ONE JSON line: per setting, each side's median step and peak RSS (the median
over rounds), the speedup (reference / AxDARTS step) and the memory ratio (AxDARTS /
reference), against issue 28's targets (a speedup of at least 3, memory at most 0.5).

The reference step is pt.darts's `search.py` loop: an alpha step, then the weight step (its
SGD, momentum 0.9, weight decay 3e-4, gradient clip 5). Second order: its
`Architect.unrolled_backward`. pt.darts has no first-order mode; first order is the original
DARTS's (`--unrolled` off): the backward of the validation loss, as there, also forming the
weights' gradients (AxDARTS's alpha step freezes the weights). AxDARTS's alpha step also adds
its energy term.

    .venv/bin/python bench/reference_step.py --reference_dir ../pt.darts
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REFERENCE_FILES = ("models/search_cnn.py", "architect.py")
SPEEDUP_TARGET = 3.0
MEMORY_TARGET = 0.5


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference_dir", required=True,
                        help="a pt.darts checkout (git clone https://github.com/khanrc/pt.darts)")
    parser.add_argument("--orders", default="first,second")
    parser.add_argument("--batch_sizes", default="16,64")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--rounds", type=int, default=1,
                        help="times each side runs per setting, alternating")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--init_channels", type=int, default=16)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--input_size", type=int, default=32)
    parser.add_argument("--worker", choices=("first", "second"),
                        help=argparse.SUPPRESS)  # internal: time the reference, one order
    parser.add_argument("--batch_size", type=int, help=argparse.SUPPRESS)  # with --worker
    return parser.parse_args(argv)


def check_reference_dir(path: str) -> None:
    missing = [name for name in REFERENCE_FILES if not (Path(path) / name).is_file()]
    if missing:
        raise ValueError(f"--reference_dir {path}: not a pt.darts checkout (no {missing[0]}); "
                         f"git clone https://github.com/khanrc/pt.darts and pass its path")


def check_args(args) -> list[tuple[str, int]]:
    """The settings to time, [(order, batch size)]; a ValueError for a bad flag."""
    from backbones.cli import integers
    from preflight import check_at_least
    from search.cell_cli import split_names

    check_reference_dir(args.reference_dir)
    for flag, value in (("--steps", args.steps), ("--rounds", args.rounds),
                        ("--threads", args.threads), ("--init_channels", args.init_channels),
                        ("--layers", args.layers), ("--input_size", args.input_size)):
        check_at_least(flag, value, 1, "too few for a measurement")
    check_at_least("--warmup", args.warmup, 0, "a count of untimed steps")
    orders = split_names(args.orders)
    if not orders or any(order not in ("first", "second") for order in orders):
        raise ValueError(f"--orders {args.orders!r}: expected first, second or first,second")
    sizes = integers("--batch_sizes", args.batch_sizes)
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--batch_sizes {args.batch_sizes!r}: give batch sizes of at least 1, "
                         f"e.g. 16,64")
    return [(order, size) for order in orders for size in sizes]


def reference_step(args) -> dict:
    """Time the reference's search step in this process (the --worker mode)."""
    sys.path.insert(0, str(Path(args.reference_dir).resolve()))
    import torch
    import torch.nn as nn
    from models.search_cnn import SearchCNNController

    from architect import Architect  # the reference's (first on the path), not AxDARTS's

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    # device_ids=[0]: the single-device path (no replicas); the model stays on the CPU
    model = SearchCNNController(3, args.init_channels, 10, args.layers, nn.CrossEntropyLoss(),
                                device_ids=[0])
    w_optim = torch.optim.SGD(model.weights(), 0.025, momentum=0.9, weight_decay=3e-4)
    alpha_optim = torch.optim.Adam(model.alphas(), 3e-4, betas=(0.5, 0.999),
                                   weight_decay=1e-3)
    architect = Architect(model, 0.9, 3e-4)
    shape = (args.batch_size, 3, args.input_size, args.input_size)
    generator = torch.Generator().manual_seed(0)
    train_x, val_x = (torch.randn(shape, generator=generator) for _ in range(2))
    train_y, val_y = (torch.randint(0, 10, (args.batch_size,), generator=generator)
                      for _ in range(2))
    times = []
    for index in range(args.warmup + args.steps):
        started = time.perf_counter()
        alpha_optim.zero_grad()
        if args.worker == "second":
            architect.unrolled_backward(train_x, train_y, val_x, val_y, 0.025, w_optim)
        else:
            model.loss(val_x, val_y).backward()
        alpha_optim.step()
        w_optim.zero_grad()
        model.loss(train_x, train_y).backward()
        nn.utils.clip_grad_norm_(model.weights(), 5.0)
        w_optim.step()
        if index >= args.warmup:
            times.append(time.perf_counter() - started)
    return {"step_s_median": round(statistics.median(times), 3),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2,
                                 3)}


def common_flags(args) -> list[str]:
    return [f"--{name}={getattr(args, name)}"
            for name in ("steps", "warmup", "threads", "init_channels", "layers", "input_size")]


class BenchProcessError(ValueError):
    """A timed process that failed: its command and the last line of its stderr."""


def run_json(command: list[str]) -> dict:
    """The last line a benchmark process printed, as JSON."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BenchProcessError(f"{Path(command[1]).name} {' '.join(command[2:])} failed "
                                f"(exit {done.returncode}): {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(ours: list[dict], reference: list[dict]) -> dict:
    """One setting's figures from its rounds: medians of each side, their ratios, the targets."""
    ours_s = statistics.median(run["step_s_median"] for run in ours)
    reference_s = statistics.median(run["step_s_median"] for run in reference)
    ours_gb = statistics.median(run["peak_rss_gb"] for run in ours)
    reference_gb = statistics.median(run["peak_rss_gb"] for run in reference)
    speedup, memory = reference_s / ours_s, ours_gb / reference_gb
    return {"axdarts_step_s": round(ours_s, 3), "reference_step_s": round(reference_s, 3),
            "speedup": round(speedup, 2), "speedup_met": speedup >= SPEEDUP_TARGET,
            "axdarts_peak_rss_gb": round(ours_gb, 3),
            "reference_peak_rss_gb": round(reference_gb, 3),
            "memory_ratio": round(memory, 2), "memory_met": memory <= MEMORY_TARGET,
            "axdarts_step_s_rounds": [run["step_s_median"] for run in ours],
            "reference_step_s_rounds": [run["step_s_median"] for run in reference]}


def measure(args) -> None:
    """Time every setting, both sides, and print the JSON line."""
    import torch

    figures = {}
    for order, batch_size in check_args(args):
        ours, reference = [], []
        for _ in range(args.rounds):
            ours.append(run_json([sys.executable, str(BENCH / "search_step.py"),
                                  f"--order={order}", f"--batch_size={batch_size}",
                                  *common_flags(args)]))
            reference.append(run_json([sys.executable, __file__, f"--worker={order}",
                                       f"--batch_size={batch_size}",
                                       f"--reference_dir={args.reference_dir}",
                                       *common_flags(args)]))
        figures[f"{order}_order_batch_{batch_size}"] = compare(ours, reference)
    print(json.dumps({"benchmark": "reference_step", "reference": "pt.darts",
                      "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                      "targets": {"speedup_at_least": SPEEDUP_TARGET,
                                  "memory_ratio_at_most": MEMORY_TARGET},
                      "settings": figures, "config": vars(args)}))


def main(argv=None):
    args = parse_args(argv)
    if args.worker:  # the reference's modules only: its architect.py shadows AxDARTS's
        print(json.dumps(reference_step(args)))
        return 0
    sys.path.insert(0, str(BENCH.parent))
    from runner.errors import exit_status

    return exit_status(lambda: measure(args))


if __name__ == "__main__":
    sys.exit(main())
