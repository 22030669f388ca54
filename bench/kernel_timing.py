"""What the kernel micro-benchmarks (bench/conv_batching.py, bench/dilated_weight_grad.py)
share: the wall milliseconds of one call, and their command line (--threads, --repeats) that
prints ONE JSON line with the CPU's kernel capability and their rows."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch


def milliseconds(fn, repeats: int) -> float:
    """Mean wall milliseconds of `fn()` over `repeats` calls, after one untimed call."""
    fn()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return round((time.perf_counter() - started) / repeats * 1e3, 3)


def run(description: str, rows: Callable[[int], list[dict]], argv=None, threads: int = 1,
        repeats: int = 20, **fields) -> int:
    """Parse --threads/--repeats, set the threads, print {cpu_capability, threads, **fields,
    rows: rows(repeats)} as one JSON line."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=threads)
    parser.add_argument("--repeats", type=int, default=repeats)
    options = parser.parse_args(argv)
    torch.set_num_threads(options.threads)
    print(json.dumps({"cpu_capability": torch.backends.cpu.get_cpu_capability(),
                      "threads": options.threads, **fields, "rows": rows(options.repeats)}))
    return 0
