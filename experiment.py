"""Command-line plumbing shared by train_search.py and train.py: common flags, per-dataset
defaults, opening (or resuming) a run directory, loading data, and turning the project's clear
input errors into one-line messages with a non-zero exit status."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import data
from utils import NonFiniteLossError, RunDir, default_run_dir, resolve_device, set_seed

EXIT_BAD_INPUT = 2
EXIT_NON_FINITE = 3
EXIT_INTERRUPTED = 130


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show every flag's default in --help and keep the description's line breaks."""


def add_common_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data and run")
    group.add_argument("--dataset", default="shapes", choices=data.DATASETS,
                       help="dataset; 'shapes' is the embedded procedural set (no download)")
    group.add_argument("--data", default=None,
                       help="dataset root (default: ./data/<dataset>)")
    group.add_argument("--download", action="store_true",
                       help="download CIFAR-10/100 through torchvision if missing")
    group.add_argument("--n_train", type=int, default=None,
                       help="use this many training images (default: per-dataset, see below)")
    group.add_argument("--n_test", type=int, default=None,
                       help="use this many test images (default: per-dataset)")
    group.add_argument("--seed", type=int, default=2, help="random seed")
    group.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    group.add_argument("--save", default=None,
                       help="run directory (default: <runs_dir>/<kind>-<timestamp>)")
    group.add_argument("--runs_dir", default="runs", help="where runs are kept and found")
    group.add_argument("--resume", default=None, metavar="RUN_DIR",
                       help="continue the run in RUN_DIR from its last checkpoint (its saved "
                            "settings are used; --epochs may extend it)")
    group.add_argument("--report_freq", type=int, default=50, help="log every N steps")


def apply_defaults(args: argparse.Namespace, defaults: dict[str, dict]) -> argparse.Namespace:
    """Fill flags left at None from the per-dataset table (key 'default' for other datasets)."""
    table = defaults.get(args.dataset, defaults["default"])
    for key, value in table.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


def defaults_epilog(defaults: dict[str, dict]) -> str:
    lines = ["per-dataset defaults (used where a flag is not given):"]
    for dataset, table in defaults.items():
        settings = ", ".join(f"--{key} {value}" for key, value in table.items())
        lines.append(f"  {dataset}: {settings}")
    return "\n".join(lines)


def restore_saved_config(args: argparse.Namespace, kept=("resume", "device", "epochs")) -> dict:
    """On --resume, the run's saved settings win over the command line (but for `kept`)."""
    saved = RunDir(args.resume, resume=True, write=False).load_config()
    for key, value in saved.items():
        if key not in kept and hasattr(args, key):
            setattr(args, key, value)
    return saved


def open_run(args: argparse.Namespace, kind: str, write: bool = True) -> RunDir:
    if args.resume:
        return RunDir(args.resume, resume=True, write=write)
    path = Path(args.save) if args.save else default_run_dir(kind, args.runs_dir)
    args.save = str(path)
    return RunDir(path, resume=False, write=write)


def load_data(args: argparse.Namespace) -> data.Dataset:
    return data.load_dataset(args.dataset, root=args.data, download=args.download,
                             n_train=args.n_train, n_test=args.n_test, seed=args.seed)


def setup(args: argparse.Namespace):
    set_seed(args.seed)
    return resolve_device(args.device)


def run_guarded(run: Callable[[], int]) -> int:
    """Run a program; a bad input or a non-finite loss ends it with one clear line."""
    debug = bool(os.environ.get("AXDARTS_DEBUG"))
    try:
        return run()
    except NonFiniteLossError as error:
        print(f"error: {error}", file=sys.stderr)
        if debug:
            raise
        return EXIT_NON_FINITE
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        if debug:
            raise
        return EXIT_BAD_INPUT
