"""Benchmark: where the seconds of a default search epoch go (`train_search.py --epochs 50`
after its warm-up, when the alphas move).

Builds the default search in process (train_search.prepare_in_process), then times `--steps`
steps (after `--warmup` untimed ones) in sections: data (the next batch of each loader), the
alpha step (Architect.step), the weight step's forward, backward and clip + SGD update, and
the end-of-epoch evaluation and energy statistics; then the weight step alone with the
emulated convs in their float mode (`float_mode_weight_step_s`: the float warm-up's step). One
more step runs under torch.profiler,
whose self CPU time is split by operator family (convolution, BatchNorm, pooling, the rest).
The emulation's share is the step time minus that of the same search with float convs
(`--multipliers ''`). Prints ONE JSON line with the per-step seconds, the epoch estimate
(steps per epoch x step + evaluation) and the operator split. Timings on a shared machine are
distorted by whatever else runs: the shares are more telling than the seconds.

`run_min_estimate` projects the whole default search from these parts, per `--arch_every` K
(an alpha step before every K-th weight step): the warm-up epochs (weight steps only, at the
float mode's step when the default warm-up computes in float, `--float_warmup`) plus the
search epochs (every weight step, one alpha step in K), each with its evaluation and its
records (history, TensorBoard and its pictures, checkpoint: `epoch_log_s`, and
`epoch_log_still_s` for the warm-up's, whose alphas stand still);
`run_min_estimate_emulated_warmup` the same with the warm-up emulated. The ranking proxy and
the final evaluation are not included (a run's log times them).

    .venv/bin/python bench/search_profile.py --steps 3 --arch_every 1,2,3
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import train_search  # noqa: E402
from approx.module import emulating  # noqa: E402
from approx.settings import FLOAT_MODE  # noqa: E402
from architect import alphas_frozen  # noqa: E402
from backbones.cli import integers  # noqa: E402
from defaults import SEARCH_DEFAULTS  # noqa: E402
from reporting import drawings, search_report  # noqa: E402
from runner import skeleton  # noqa: E402
from runner.errors import exit_status  # noqa: E402
from runner.rundir import RunDir  # noqa: E402

# operator families of the profile: a family's substrings, matched against the aten op name
OP_FAMILIES = {"convolution": ("conv",), "batch_norm": ("batch_norm",),
               "pooling": ("pool",), "matmul": ("mm", "addmm", "linear")}
EPOCHS = 50  # the README's search: train_search.py --epochs 50


class Sections:
    """Wall seconds per named section, summed per step."""

    def __init__(self):
        self.seconds: dict[str, list[float]] = {}

    def time(self, name: str, action):
        started = time.perf_counter()
        result = action()
        self.seconds.setdefault(name, []).append(time.perf_counter() - started)
        return result

    def medians(self) -> dict:
        return {name: round(statistics.median(values), 4) for name, values in self.seconds.items()}


def search_step(model, architect, w_optimizer, batches, lr: float, grad_clip: float,
                sections: Sections) -> None:
    """One search step (alpha step, then weight step), each part timed into `sections`."""
    x, y = sections.time("data_s", lambda: next(batches["train"]))
    arch_x, arch_y = sections.time("data_s", lambda: next(batches["arch"]))
    sections.time("alpha_step_s",
                  lambda: architect.step(x, y, arch_x, arch_y, lr, w_optimizer))
    weight_step(model, w_optimizer, x, y, grad_clip, sections)


def weight_step(model, w_optimizer, x, y, grad_clip: float, sections: Sections) -> None:
    """One weight step on (x, y), its forward, backward and update timed into `sections`."""
    w_optimizer.zero_grad(set_to_none=True)
    with alphas_frozen(model):
        loss = sections.time("weight_forward_s", lambda: model.criterion(model(x), y))
        sections.time("weight_backward_s", loss.backward)

    def update():
        nn.utils.clip_grad_norm_(model.weights(), grad_clip)
        w_optimizer.step()
    sections.time("weight_update_s", update)


def float_mode_weight_step_s(model, w_optimizer, batches, grad_clip: float, steps: int,
                             warmup: int) -> float:
    """Median seconds of a weight step with the emulated convs in their float mode, as the
    search's float warm-up takes them (`--float_warmup`, search.bilevel.train_epoch)."""
    sections = Sections()
    with emulating(model, mode=FLOAT_MODE):
        for timed in [False] * warmup + [True] * steps:
            x, y = next(batches["train"])
            weight_step(model, w_optimizer, x, y, grad_clip, sections if timed else Sections())
    weight_parts = sections.seconds.values()
    return round(statistics.median(map(sum, zip(*weight_parts, strict=True))), 4)


def endless(loader):
    while True:
        yield from loader


def profile_search(multipliers: list[str], steps: int, warmup: int,
                   float_mode: bool = False) -> dict:
    """Section medians of the default search (with `multipliers` flags) and its op split; with
    `float_mode`, its float mode's weight step too."""
    args, (_, model, w_optimizer, scheduler, architect, loaders) = \
        train_search.prepare_in_process(["--epochs", str(EPOCHS), "--warmup_epochs", "0",
                                         *multipliers])
    model.train()
    batches = {name: endless(loaders[name]) for name in ("train", "arch")}
    lr = scheduler.get_last_lr()[0]
    sections = Sections()
    for _ in range(warmup):
        search_step(model, architect, w_optimizer, batches, lr, args.grad_clip, Sections())
    for _ in range(steps):
        search_step(model, architect, w_optimizer, batches, lr, args.grad_clip, sections)
    timed = sections.medians()
    step_s = sum(timed.values())
    if float_mode:
        timed["float_mode_weight_step_s"] = float_mode_weight_step_s(
            model, w_optimizer, batches, args.grad_clip, steps, warmup)
    started = time.perf_counter()
    metrics = skeleton.evaluate(model, loaders["val"], "val")
    energy = search_report.energy_stats(model)
    evaluation_s = time.perf_counter() - started
    record = {"epoch": 1, "lr": lr, "train_loss": 0.0, "train_acc": 0.0, **metrics, **energy,
              "epoch_s": 0.0}
    components = {"model": model, "w_optimizer": w_optimizer, "scheduler": scheduler,
                  "architect": architect}
    epoch_log_s = time_epoch_records(record, model, architect, components)
    model.train()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        search_step(model, architect, w_optimizer, batches, lr, args.grad_clip, Sections())
    return {**timed, "step_s": round(step_s, 3), "evaluation_s": round(evaluation_s, 3),
            **epoch_log_s,
            "steps_per_epoch": len(loaders["train"]),
            "epoch_s_estimate": round(len(loaders["train"]) * step_s + evaluation_s, 1),
            "op_self_cpu_share": op_shares(profiler)}


def time_epoch_records(record: dict, model, architect, components: dict) -> dict:
    """Seconds of what a run does after each epoch's evaluation (history, TensorBoard, the
    pictures, the checkpoint), in a throwaway run directory: `epoch_log_s` with every picture
    drawn, as after an epoch of alpha steps (the genotype's cells too, which a run redraws
    only when they changed), and `epoch_log_still_s` with the alphas as they were, as in the
    warm-up."""
    figures = drawings.FigureCache()
    seconds = {}
    with tempfile.TemporaryDirectory() as directory:
        run = RunDir(Path(directory) / "run")
        run.logger.setLevel(logging.WARNING)
        for name in ("epoch_log_s", "epoch_log_still_s"):
            started = time.perf_counter()
            run.append_history(record)
            search_report.log_epoch(run, record, model, architect, figures)
            run.save_checkpoint(skeleton.training_state(len(run.history), 0, components))
            seconds[name] = round(time.perf_counter() - started, 3)
        run.close()
    return seconds


def run_minutes(timed: dict, warmup_epochs: int, arch_every: int,
                warmup_weight_step_s: float | None = None) -> float:
    """The whole search's minutes projected from a configuration's section medians, its
    warm-up's weight steps at `warmup_weight_step_s` (default: its own weight step), each
    epoch with its (emulated) evaluation and its records."""
    steps = timed["steps_per_epoch"]
    weight_step_s = timed["step_s"] - timed["alpha_step_s"]
    warmup_step_s = weight_step_s if warmup_weight_step_s is None else warmup_weight_step_s
    warmup_epoch = steps * warmup_step_s + timed["evaluation_s"] + timed["epoch_log_still_s"]
    search_epoch = steps * weight_step_s + timed["evaluation_s"] + timed["epoch_log_s"]
    alpha_steps = alpha_step_count(warmup_epochs * steps, EPOCHS * steps, arch_every)
    return round((warmup_epochs * warmup_epoch + (EPOCHS - warmup_epochs) * search_epoch
                  + alpha_steps * timed["alpha_step_s"]) / 60, 1)


def alpha_step_count(first: int, end: int, arch_every: int) -> int:
    """Alpha steps of weight steps `first` .. `end` - 1 (counted over the run, as
    search.bilevel.EpochSettings.steps_alphas counts them): the multiples of `arch_every`."""
    return math.ceil(end / arch_every) - math.ceil(first / arch_every)


def arch_every_values(text: str) -> tuple[int, ...]:
    values = integers("--arch_every", text)
    if not values or min(values) < 1:
        raise ValueError(f"--arch_every {text!r}: give positive integers such as 1,2,3")
    return values


def op_shares(profiler) -> dict:
    """Share of the profiled step's self CPU time per operator family (OP_FAMILIES, 'other')."""
    totals = dict.fromkeys([*OP_FAMILIES, "other"], 0.0)
    for event in profiler.key_averages():
        name = event.key.lower()
        family = next((f for f, parts in OP_FAMILIES.items()
                       if any(part in name for part in parts)), "other")
        totals[family] += event.self_cpu_time_total
    whole = sum(totals.values()) or 1.0
    return {family: round(value / whole, 3) for family, value in totals.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before them")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--arch_every", default="1,2,3",
                        help="K values of the whole-run projection (comma-separated)")
    args = parser.parse_args(argv)
    arch_every = arch_every_values(args.arch_every)
    if args.steps < 1 or args.warmup < 0:
        raise ValueError(f"--steps {args.steps} / --warmup {args.warmup}: give at least 1 "
                         f"timed step and no negative warm-up")
    torch.set_num_threads(args.threads)
    default = profile_search([], args.steps, args.warmup, float_mode=True)
    float_convs = profile_search(["--multipliers", ""], args.steps, args.warmup)
    shapes = SEARCH_DEFAULTS["shapes"]
    warmup = train_search.warmup_epochs(shapes["warmup_epochs"], EPOCHS)
    warmup_step_s = default["float_mode_weight_step_s"] if shapes["float_warmup"] else None
    default["run_min_estimate"] = {f"arch_every_{k}": run_minutes(default, warmup, k,
                                                                  warmup_step_s)
                                   for k in arch_every}
    default["warmup"] = "float" if shapes["float_warmup"] else "emulated"
    # the same search with its warm-up emulated (`--no-float_warmup`), side by side
    default["run_min_estimate_emulated_warmup"] = {
        f"arch_every_{k}": run_minutes(default, warmup, k) for k in arch_every}
    float_convs["run_min_estimate"] = {f"arch_every_{k}": run_minutes(float_convs, warmup, k)
                                       for k in arch_every}
    print(json.dumps({"cpu_capability": torch.backends.cpu.get_cpu_capability(),
                      "threads": args.threads, "default": default, "float_convs": float_convs,
                      "emulation_share_of_step": round(
                          1 - float_convs["step_s"] / default["step_s"], 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
