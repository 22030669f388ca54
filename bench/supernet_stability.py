"""Benchmark of the supernet's warm-up: validation accuracy per warm-up epoch, per seed, thread
count and weight-training variant, under the default search settings (defaults.py).

Each run builds the default search `train_search.py --epochs 50` exactly as the program does
(its flags, its loaders, its supernet, its cosine schedule) and trains the weights only for its
first `--epochs` epochs (at most its warm-up) (the alphas stay uniform, as in
the search's warm-up), evaluating the supernet on the validation images after each epoch.
A variant changes one thing: `lr=X` the weights' learning rate, `lr_warmup=K` a linear
learning-rate warm-up over the first K epochs (train_search.py's --lr_warmup_epochs), `clip=X`
the gradient-norm clip, `crop_padding=P` the random-crop padding (default: an eighth of the
image side), `batch=B` the batch size (more weight steps per epoch), `n_train=N` the training
images (half of them train the weights), `float_warmup=0|1` the warm-up's convs emulated or in
float32 (the `shapes` default: float), `multipliers=float` float convs in place of the
emulated multiplier set, `weight_optimizer=sgd|adamw` the weights' optimiser (at that
optimiser's default learning rates). Prints ONE JSON line: per run the accuracy curve,
and per variant the spread (max - min) of the final accuracy over its runs.

    .venv/bin/python bench/supernet_stability.py --epochs 6 --seeds 1,2,3 --threads 1 \\
        --variants base,lr_warmup=3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import train_search  # noqa: E402
from runner import skeleton  # noqa: E402
from runner.errors import exit_status  # noqa: E402
from search import bilevel  # noqa: E402

SEARCH_EPOCHS = 50  # the default search's length: its cosine schedule and 20 warm-up epochs
VARIANT_FLAGS = {"lr": "--learning_rate", "lr_warmup": "--lr_warmup_epochs",
                 "clip": "--grad_clip", "multipliers": "--multipliers",
                 "crop_padding": "--crop_padding", "batch": "--batch_size",
                 "n_train": "--n_train", "weight_optimizer": "--weight_optimizer"}


def variant_flags(variant: str) -> list[str]:
    """train_search.py flags of a variant: 'base' (none) or 'name=value' (VARIANT_FLAGS)."""
    if variant == "base":
        return []
    if variant == "multipliers=float":
        return ["--multipliers", ""]
    if variant in ("float_warmup=0", "float_warmup=1"):
        return ["--float_warmup" if variant.endswith("1") else "--no-float_warmup"]
    name, _, value = variant.partition("=")
    if name not in VARIANT_FLAGS or not value:
        raise ValueError(f"--variants {variant!r}: give 'base', float_warmup=0|1 or name=value "
                         f"with a name among {', '.join(VARIANT_FLAGS)}")
    return [VARIANT_FLAGS[name], value]


def warmup_curve(epochs: int, seed: int, threads: int, variant: str) -> dict:
    """The default supernet's training and validation accuracy after each of `epochs`
    weight-only epochs, and each epoch's training time (validation excluded)."""
    torch.set_num_threads(threads)
    args, (_, model, w_optimizer, scheduler, architect, loaders) = \
        train_search.prepare_in_process(["--epochs", str(SEARCH_EPOCHS), "--seed", str(seed),
                                         *variant_flags(variant)])
    parts = bilevel.SearchParts(model, model, architect, w_optimizer, loaders)
    curve, step = {"train_acc": [], "val_acc": [], "epoch_s": []}, 0
    for epoch in range(epochs):
        started = time.perf_counter()  # all within the default search's warm-up: weights only
        settings = train_search.epoch_settings(args, epoch, len(loaders["train"]))
        metrics, step = bilevel.train_epoch(parts, epoch, scheduler.get_last_lr()[0], step,
                                            settings, lambda at, stats: None)
        scheduler.step()
        curve["epoch_s"].append(round(time.perf_counter() - started, 2))
        curve["train_acc"].append(round(metrics["train_acc"], 4))
        curve["val_acc"].append(
            round(skeleton.evaluate(model, loaders["val"], "val")["val_acc"], 4))
    return curve


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6, help="warm-up epochs per run")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated seeds")
    parser.add_argument("--threads", default="1", help="comma-separated torch thread counts")
    parser.add_argument("--variants", default="base", help="comma-separated variants")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    variants = args.variants.split(",")
    for variant in variants:
        variant_flags(variant)  # a bad variant fails before any run
    if not 1 <= args.epochs <= 20:
        raise ValueError(f"--epochs {args.epochs}: give 1 to 20 (the default search's warm-up)")
    runs, started = [], time.time()
    for variant in variants:
        for thread_count in threads:
            for seed in seeds:
                curve = warmup_curve(args.epochs, seed, thread_count, variant)
                runs.append({"variant": variant, "threads": thread_count, "seed": seed,
                             **curve})
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    spread = {v: round(max(r["val_acc"][-1] for r in runs if r["variant"] == v)
                       - min(r["val_acc"][-1] for r in runs if r["variant"] == v), 4)
              for v in variants}
    print(json.dumps({"epochs": args.epochs, "runs": runs, "final_spread": spread,
                      "wall_s": round(time.time() - started, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
