"""Benchmark: the default search step with the mixed convolutions' basis terms stacked (one
gather and one conv per 1x1 conv of a channels-last map, approx.mixed_conv.stacks_terms) and
per term (R' gathers and 1 + R' convs), alternated in one process on the same batches.

Builds the default search (`train_search.py --epochs 50`, shapes defaults, the emulated set
exact,drum6,kulkarni,drum4,bam4_4) and times its two parts per form: the weight step (forward
and backward with the alphas frozen) and the alpha step (Architect.step, first order). Prints
ONE JSON line with the median seconds per form and their ratio.

    .venv/bin/python bench/mixed_conv_forms.py --repeats 5 --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import train_search  # noqa: E402
from approx import mixed_conv  # noqa: E402
from architect import alphas_frozen  # noqa: E402
from runner.errors import exit_status  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per form")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--search_flags", default="", help="extra train_search.py flags")
    options = parser.parse_args(argv)
    torch.set_num_threads(options.threads)
    _, (_, model, w_optimizer, _, architect, loaders) = train_search.prepare_in_process(
        ["--epochs", "50", *options.search_flags.split()])
    x, y = next(iter(loaders["train"]))
    arch_x, arch_y = next(iter(loaders["arch"]))
    model.train()
    stacked = mixed_conv.stacks_terms

    def weight_step():
        w_optimizer.zero_grad()
        with alphas_frozen(model):
            model.loss(x, y).backward()

    def alpha_step():
        architect.step(x, y, arch_x, arch_y, 0.1, w_optimizer, unrolled=False)

    times = {form: {"weight_step_s": [], "alpha_step_s": []} for form in ("stacked", "per_term")}
    try:
        for round_index in range(options.repeats + 1):  # round 0 warms up
            for form in times:
                mixed_conv.stacks_terms = stacked if form == "stacked" else (lambda *a: False)
                for part, step in (("weight_step_s", weight_step), ("alpha_step_s", alpha_step)):
                    started = time.perf_counter()
                    step()
                    if round_index:
                        times[form][part].append(time.perf_counter() - started)
    finally:
        mixed_conv.stacks_terms = stacked
    medians = {form: {part: round(statistics.median(values), 3)
                      for part, values in parts.items()} for form, parts in times.items()}
    ratio = {part: round(medians["per_term"][part] / medians["stacked"][part], 3)
             for part in ("weight_step_s", "alpha_step_s")}
    print(json.dumps({"threads": options.threads, "repeats": options.repeats,
                      "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                      "median": medians, "per_term_over_stacked": ratio}))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
