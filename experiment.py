"""Command-line plumbing shared by train_search.py and train.py: common flags, per-dataset
defaults, joining a torchrun job, opening (or resuming) a run directory (written by rank 0
only), loading data, and turning the project's clear input errors into one-line messages with
a non-zero exit status."""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn

import data
import preflight
from runner import distributed
from runner.errors import NonFiniteLossError, RunWriteError
from runner.rundir import RunDir, config_markdown, default_run_dir
from runner.training import (
    AverageMeter,
    accuracy,
    restore_training_state,
    retarget_cosine_schedule,
    set_seed,
    training_state,
)

EXIT_BAD_INPUT = 2
EXIT_NON_FINITE = 3
EXIT_PEER_FAILED = 4
EXIT_WRITE_FAILED = 5
EXIT_INTERRUPTED = 130


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show every flag's default in --help and keep the description's line breaks."""


# keys a run's config.json records that are not settings of a new run
CONFIG_RECORD_ONLY = ("save", "resume", "candidates", "world_size", "genotype_source", "stl_spec",
                      "given_flags")


def add_common_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data and run")
    group.add_argument("--config", default=None, metavar="FILE",
                       help="JSON or YAML file of settings (e.g. a run's config.json, to "
                            "reproduce it); flags given on the command line override it")
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
    group.add_argument("--image_size", type=int, default=None,
                       help="image side in pixels (shapes renders at it; other datasets are "
                            "resized; default: per-dataset)")
    group.add_argument("--seed", type=int, default=2, help="random seed of the run")
    group.add_argument("--data_seed", type=int, default=0,
                       help="seed of the embedded dataset and of --n_train/--n_test subsets "
                            "(kept apart from --seed so runs with other seeds see the same data)")
    group.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    group.add_argument("--save", default=None,
                       help="run directory (default: <runs_dir>/<kind>-<timestamp>)")
    group.add_argument("--runs_dir", default="runs", help="where runs are kept and found")
    group.add_argument("--resume", default=None, metavar="RUN_DIR",
                       help="continue the run in RUN_DIR from its last checkpoint (its saved "
                            "settings are used; --epochs may extend it)")
    group.add_argument("--report_freq", type=int, default=50, help="log every N steps")
    group.add_argument("--wandb", action="store_true",
                       help="also log the run to Weights & Biases (needs `pip install wandb`)")
    group.add_argument("--wandb_project", default="axdarts", help="W&B project of --wandb")
    group.add_argument("--wandb_mode", default="offline", choices=("offline", "online"),
                       help="offline: files under <run>/wandb for a later `wandb sync`")
    group.add_argument("--dist_timeout", type=float, default=distributed.DEFAULT_TIMEOUT_S,
                       help="under torchrun: seconds a rank waits for the others before the job "
                            "stops with an error")


def parse(parser: argparse.ArgumentParser, argv, defaults: dict[str, dict]) -> argparse.Namespace:
    """Parse the command line over the settings of `--config FILE` (if given), then fill the
    per-dataset defaults of the flags still unset."""
    args = parser.parse_args(argv)
    args.given_flags = given_flags(parser, argv)
    if args.config:
        settings = read_config(args.config, parser)
        parser.set_defaults(**settings)
        args = parser.parse_args(argv)
        args.given_flags = given_flags(parser, argv)
    if args.wandb:
        check_wandb()
    return apply_defaults(args, defaults)


def check_wandb() -> None:
    """--wandb fails now, before any run directory, when the package is missing."""
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise ValueError("--wandb needs the wandb package: pip install wandb "
                         "(or run without --wandb)") from None


def read_config(path: str, parser: argparse.ArgumentParser) -> dict:
    """The settings of a JSON or YAML file, checked against the program's flags."""
    try:
        text = Path(path).read_text()
        if Path(path).suffix.lower() in (".yaml", ".yml"):
            import yaml

            settings = yaml.safe_load(text)
        else:
            settings = json.loads(text)
    except (OSError, ValueError) as error:
        raise ValueError(f"--config {path}: cannot read it ({error}); pass a JSON or YAML "
                         f"file of settings such as a run's config.json") from None
    if not isinstance(settings, dict):
        raise ValueError(f"--config {path}: expected a mapping of flag names to values")
    known = {action.dest for action in parser._actions}
    unknown = sorted(set(settings) - known - set(CONFIG_RECORD_ONLY))
    if unknown:
        raise ValueError(f"--config {path}: unknown setting(s) {', '.join(unknown)}; "
                         f"see --help for this program's flags")
    return {key: value for key, value in settings.items()
            if key in known and key not in CONFIG_RECORD_ONLY + ("config",)}


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


def restore_saved_config(args: argparse.Namespace,
                         kept=("resume", "device", "epochs", "dist_timeout")) -> dict:
    """On --resume, the run's saved settings win over the command line, but for the `kept`
    flags given on it (`--epochs 80` extends a run; without it the run keeps its own)."""
    preflight.check_resume_dir(args.resume)
    saved = RunDir(args.resume, resume=True, write=False).load_config()
    given = getattr(args, "given_flags", ())
    for key, value in saved.items():
        if hasattr(args, key) and key != "given_flags" and not (key in kept and key in given):
            setattr(args, key, value)
    return saved


def given_flags(parser: argparse.ArgumentParser, argv) -> tuple[str, ...]:
    """The destinations of the flags written on the command line (not left at a default)."""
    probe = copy.deepcopy(parser)
    for action in probe._actions:
        action.default = argparse.SUPPRESS
        action.required = False
    return tuple(sorted(vars(probe.parse_known_args(argv)[0])))


def open_run(args: argparse.Namespace, kind: str, write: bool | None = None) -> RunDir:
    """The run directory (rank 0's path on every rank); by default only rank 0 writes and
    logs. When it cannot be opened on some rank, every rank stops."""
    write = distributed.is_main() if write is None else write
    if not args.resume:
        path = Path(args.save) if args.save else default_run_dir(kind, args.runs_dir)
        args.save = distributed.broadcast_object(str(path))
    path, resume = (args.resume, True) if args.resume else (args.save, False)
    run = distributed.agree(lambda: RunDir(path, resume=resume, write=write))
    if not write:
        run.logger.setLevel(logging.WARNING)
    return run


def record_config(run: RunDir, config: dict) -> None:
    """config.json and the TensorBoard config table (rank 0 only)."""
    if run.write:
        run.save_config(config)
        run.writer.add_text("config", config_markdown(config), 0)


def attach_tracker(run: RunDir, args, config: dict) -> None:
    """`--wandb`: mirror the run's history to Weights & Biases (rank 0 only)."""
    if run.write and getattr(args, "wandb", False):
        from runner.wandb_logger import WandbMirror

        run.mirror = WandbMirror(run.path, config, args.wandb_project, args.wandb_mode)


def load_data(args: argparse.Namespace) -> data.Dataset:
    return data.load_dataset(args.dataset, root=args.data, download=args.download,
                             n_train=args.n_train, n_test=args.n_test, seed=args.data_seed,
                             image_size=args.image_size)


def setup(args: argparse.Namespace):
    """Join the torchrun job if launched by one, seed (the same seed on every rank); return
    this rank's device."""
    device = distributed.init(args.device, args.dist_timeout)
    set_seed(args.seed)
    return device


def stop_interrupted(run: RunDir) -> int:
    """Ctrl-C: the checkpoint of the last completed epoch stays; say how to continue."""
    run.logger.info(f"interrupted: the checkpoint of the last completed epoch is kept in "
                    f"{run.checkpoint_path}; continue with --resume {run.path}")
    run.close()
    return EXIT_INTERRUPTED


def run_guarded(run: Callable[[], int]) -> int:
    """Run a program; a bad input, a non-finite loss or a failed peer ends it with one clear
    line; under torchrun, every rank leaves the job at the end."""
    try:
        return _run_reporting_errors(run)
    finally:
        distributed.cleanup()


def _run_reporting_errors(run: Callable[[], int]) -> int:
    try:
        status = run()
        distributed.barrier()  # ranks leave together, after rank 0 has written its results
        return status
    except Exception as error:
        message, status = _one_line(error)
        if status is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        if os.environ.get("AXDARTS_DEBUG"):
            raise
        return status


# the errors that end a run with one line, and their exit statuses (first match wins)
_ONE_LINE_ERRORS = ((NonFiniteLossError, EXIT_NON_FINITE), (RunWriteError, EXIT_WRITE_FAILED),
                    ((ValueError, FileNotFoundError), EXIT_BAD_INPUT))


def _one_line(error: Exception) -> tuple[str | None, int | None]:
    """(message, exit status) of an error reported in one line; (None, None) to re-raise it
    (a RuntimeError outside torchrun is a bug, whose traceback is wanted)."""
    if isinstance(error, RuntimeError):
        if distributed.is_enabled():
            return distributed.describe_failure(error), EXIT_PEER_FAILED
        return None, None
    for types, status in _ONE_LINE_ERRORS:
        if isinstance(error, types):
            return str(error), status
    return None, None


@torch.no_grad()
def evaluate(model, loader, prefix: str) -> dict:
    """Cross-entropy and top-1 accuracy over `loader` (summed over all ranks), as
    `{prefix}_loss` and `{prefix}_acc`."""
    model.eval()
    criterion = nn.CrossEntropyLoss()
    loss_meter, acc_meter = AverageMeter(), AverageMeter()
    for x, y in loader:
        logits = model(x)
        loss_meter.update(criterion(logits, y).item(), len(y))
        acc_meter.update(accuracy(logits, y), len(y))
    distributed.sum_meters({"loss": loss_meter, "acc": acc_meter})
    return {f"{prefix}_loss": loss_meter.avg, f"{prefix}_acc": acc_meter.avg}


def start_or_resume(run: RunDir, args, config: dict, components: dict) -> tuple[int, int]:
    """(epoch, step) to start from: a resumed run loads its checkpoint and stretches its cosine
    schedule to the current --epochs; a new run records its config and an epoch-0 checkpoint."""
    attach_tracker(run, args, config)
    if args.resume:
        epoch, step = restore_training_state(run.load_checkpoint(), components)
        retarget_cosine_schedule(components["scheduler"], args.epochs)
        return epoch, step
    record_config(run, config)
    run.save_checkpoint(training_state(0, 0, components))
    return 0, 0
