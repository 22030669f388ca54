"""Benchmark: how long the default retrain (`train.py --genotype G`, the `shapes` defaults)
takes on this machine, with its float32 warm-up and without it, side by side.

Builds the default retrain in process (train.build), then times `--steps` training steps
(after `--warmup` untimed ones) through train.train_epoch twice: with every approximate conv
emulated (the retrain's epochs after its warm-up) and in float32 (the warm-up's,
`--float_warmup_epochs`); an epoch's own start (the loader's shuffle and augmentation) is timed
apart; then one end-of-epoch test pass. `run_min_estimate` projects the
whole retrain: the default float epochs at the float step, the rest at the emulated step, each
epoch with its test pass; `run_min_estimate_emulated_warmup` the same without the float
warm-up. The final evaluation passes (real tables, exact int8, float32, deployed int8) are not
included (a run's log times them: about half a minute). Prints ONE JSON line.

    .venv/bin/python bench/retrain_profile.py --steps 10
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import experiment  # noqa: E402
import train  # noqa: E402
from approx import Emulation  # noqa: E402
from approx.settings import FLOAT_MODE  # noqa: E402
from runner import skeleton  # noqa: E402
from runner.errors import exit_status  # noqa: E402

# the searched genotype the 2026-12-06 docs retrain (docs/default_runs.md)
DEFAULT_GENOTYPE = Path(__file__).resolve().parents[1] / "docs" / \
    "default_search_2026-12-06_genotype.json"


class FirstBatches:
    """The first `count` batches of a training loader, as train.train_epoch iterates one."""

    def __init__(self, loader, count: int):
        self.loader, self.count = loader, count

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)

    def __len__(self) -> int:
        return min(self.count, len(self.loader))

    def __iter__(self):
        return itertools.islice(iter(self.loader), self.count)


def epoch_seconds(model, loader, optimizer, args, batches: int) -> float:
    """Seconds of train.train_epoch over the loader's first `batches` batches."""
    started = time.perf_counter()
    train.train_epoch(model, FirstBatches(loader, batches), optimizer, args, 0)
    return time.perf_counter() - started


def step_seconds(model, loader, optimizer, args, steps: int, warmup: int) -> tuple[float, float]:
    """(seconds per training step, seconds per epoch besides its steps): an epoch of 1 + `steps`
    batches against one of 1 batch (after an untimed epoch of `warmup`), so that the loader's
    start of an epoch is counted once per epoch, not per step."""
    if warmup:
        epoch_seconds(model, loader, optimizer, args, warmup)
    short = epoch_seconds(model, loader, optimizer, args, 1)
    step = (epoch_seconds(model, loader, optimizer, args, 1 + steps) - short) / steps
    return step, max(short - step, 0.0)


def run_minutes(timed: dict, epochs: int, float_epochs: int) -> float:
    """The retrain's minutes: `float_epochs` epochs of float steps, the rest emulated, each
    with its start and its test pass."""
    per_epoch = {mode: timed["steps_per_epoch"] * timed[f"{mode}_step_s"]
                 + timed["epoch_start_s"] + timed["evaluation_s"]
                 for mode in ("float", "emulated")}
    return round((float_epochs * per_epoch["float"]
                  + (epochs - float_epochs) * per_epoch["emulated"]) / 60, 1)


def profile_retrain(genotype: str, steps: int, warmup: int) -> dict:
    args = train.parse_args(["--genotype", genotype, "--device", "cpu"])
    cell, _ = train.resolve_genotype(args, {})
    train.check_inputs(args, cell)
    device = skeleton.setup(args)
    dataset = experiment.load_data(args)
    model, optimizer, _, loaders = train.build(args, dataset, cell, device,
                                               Emulation(args.lut_dir))
    emulated_step, epoch_start = step_seconds(model, loaders["train"], optimizer, args, steps,
                                              warmup)
    with model.emulating(mode=FLOAT_MODE):
        float_step, _ = step_seconds(model, loaders["train"], optimizer, args, steps, warmup)
    started = time.perf_counter()
    skeleton.evaluate(model, loaders["test"], "test")
    timed = {"steps_per_epoch": len(loaders["train"]), "emulated_step_s": round(emulated_step, 3),
             "float_step_s": round(float_step, 3), "epoch_start_s": round(epoch_start, 2),
             "evaluation_s": round(time.perf_counter() - started, 2)}
    float_epochs = train.float_warmup_epochs(args)
    return {**timed, "epochs": args.epochs, "float_warmup_epochs": float_epochs,
            "run_min_estimate": run_minutes(timed, args.epochs, float_epochs),
            "run_min_estimate_emulated_warmup": run_minutes(timed, args.epochs, 0)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--genotype", default=str(DEFAULT_GENOTYPE),
                        help="what train.py --genotype takes (default: the searched genotype "
                             "of docs/default_runs.md, 2026-12-06)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before them")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        raise ValueError(f"--steps {args.steps} / --warmup {args.warmup}: give at least 1 "
                         f"timed step and no negative warm-up")
    torch.set_num_threads(args.threads)
    print(json.dumps({"cpu_capability": torch.backends.cpu.get_cpu_capability(),
                      "threads": args.threads, "genotype": args.genotype,
                      **profile_retrain(args.genotype, args.steps, args.warmup)}))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
