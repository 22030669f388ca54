"""The run skeleton both programs share (train_search.py, train.py).

A program parses its flags, checks its inputs, builds its model, optimisers and loaders, and
hands them over as a `Program`: what differs between a search and a retrain (one epoch's
training, the end-of-epoch evaluation, the logs, the final result). `run_program` does the
rest, in this order: open (or resume) the run directory, record config.json (or load the
checkpoint and stretch the cosine schedule to --epochs), then for each epoch: train, step the
scheduler, average the BatchNorm buffers over the ranks, evaluate, append the history record,
log it and write the checkpoint; at the end the program's `finish`. Ctrl-C keeps the
checkpoint of the last completed epoch and ends with EXIT_INTERRUPTED.

`run_guarded` is the programs' error path (runner.errors plus a peer's failure under torchrun).
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn

from runner import distributed
from runner.errors import EXIT_INTERRUPTED, ONE_LINE_ERRORS, exit_status
from runner.rundir import RunDir, config_markdown, default_run_dir
from runner.training import (
    AverageMeter,
    accuracy,
    restore_training_state,
    retarget_cosine_schedule,
    set_seed,
    training_state,
)


class Program(abc.ABC):
    """A training program as `run_program` runs it. A subclass sets `kind` (the prefix of its
    default run directory) and `components` (the state checkpointed after each epoch, by name;
    `model` and `scheduler` among them) and supplies the hooks below."""

    kind: str
    components: dict

    def config_additions(self) -> dict:
        """What config.json records beside the flags."""
        return {}

    @abc.abstractmethod
    def replica(self) -> nn.Module:
        """The model as the training step runs it: its DDP wrapper under torchrun."""

    @abc.abstractmethod
    def log_start(self, run: RunDir, config: dict) -> None:
        """Log what the run is about to do (the run directory is ready)."""

    @abc.abstractmethod
    def train_epoch(self, run: RunDir, replica: nn.Module, epoch: int, lr: float,
                    step: int) -> tuple[dict, int]:
        """Train epoch `epoch` (from 0) at learning rate `lr`, `step` steps done before it:
        (its metrics over all ranks, the number of steps done after it)."""

    @abc.abstractmethod
    def evaluate_epoch(self) -> dict:
        """The end-of-epoch part of the history record (evaluation, energy)."""

    @abc.abstractmethod
    def log_epoch(self, run: RunDir, record: dict) -> None:
        """Log an epoch's history record (TensorBoard, log.txt)."""

    @abc.abstractmethod
    def finish(self, run: RunDir) -> int:
        """The final evaluation and result file of a completed run; the exit status."""


def run_program(program: Program, args) -> int:
    """Run `program` for epochs up to `args.epochs` in its run directory (module doc)."""
    run = open_run(args, program.kind)
    replica = program.replica()
    config = {**vars(args), **program.config_additions(), "world_size": distributed.world_size()}
    start_epoch, step = start_or_resume(run, args, config, program.components)
    program.log_start(run, config)
    try:
        for epoch in range(start_epoch, args.epochs):
            step = run_epoch(program, run, replica, epoch, step)
    except KeyboardInterrupt:
        return stop_interrupted(run)
    status = program.finish(run)
    run.close()
    return status


def run_epoch(program: Program, run: RunDir, replica: nn.Module, epoch: int, step: int) -> int:
    """One epoch with its history record and checkpoint; the step count after it."""
    model, scheduler = program.components["model"], program.components["scheduler"]
    started = time.time()
    lr = scheduler.get_last_lr()[0]
    metrics, step = program.train_epoch(run, replica, epoch, lr, step)
    scheduler.step()
    distributed.average_buffers(model)  # every rank evaluates and saves the same BN statistics
    record = {"epoch": epoch + 1, "lr": lr, **metrics, **program.evaluate_epoch(),
              "epoch_s": time.time() - started}
    run.append_history(record)
    program.log_epoch(run, record)
    run.save_checkpoint(training_state(epoch + 1, step, program.components))
    return step


def setup(args):
    """Join the torchrun job if launched by one, seed (the same seed on every rank); return
    this rank's device."""
    device = distributed.init(args.device, args.dist_timeout)
    set_seed(args.seed)
    return device


def open_run(args, kind: str, write: bool | None = None) -> RunDir:
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


def start_or_resume(run: RunDir, args, config: dict, components: dict) -> tuple[int, int]:
    """(epoch, step) to start from: a resumed run loads its checkpoint and stretches its cosine
    schedule to the current --epochs; a new run records its config and an epoch-0 checkpoint."""
    _attach_tracker(run, args, config)
    if args.resume:
        epoch, step = restore_training_state(run.load_checkpoint(), components)
        retarget_cosine_schedule(components["scheduler"], args.epochs)
        return epoch, step
    if run.write:  # config.json and the TensorBoard config table
        run.save_config(config)
        run.writer.add_text("config", config_markdown(config), 0)
    run.save_checkpoint(training_state(0, 0, components))
    return 0, 0


def _attach_tracker(run: RunDir, args, config: dict) -> None:
    """`--wandb`: mirror the run's history to Weights & Biases (rank 0 only)."""
    if run.write and getattr(args, "wandb", False):
        from runner.wandb_logger import WandbMirror

        run.mirror = WandbMirror(run.path, config, args.wandb_project, args.wandb_mode)


def stop_interrupted(run: RunDir) -> int:
    """Ctrl-C: the checkpoint of the last completed epoch stays; say how to continue."""
    run.logger.info(f"interrupted: the checkpoint of the last completed epoch is kept in "
                    f"{run.checkpoint_path}; continue with --resume {run.path}")
    run.close()
    return EXIT_INTERRUPTED


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


def run_guarded(main: Callable[[], int]) -> int:
    """Run a program; a bad input, a non-finite loss, a failed write or a failed peer ends it
    with one clear line and its exit status (runner.errors); under torchrun, the ranks leave
    the job together at the end."""
    try:
        return exit_status(lambda: _leave_together(main), (distributed.PEER_FAILED,
                                                           *ONE_LINE_ERRORS))
    finally:
        distributed.cleanup()


def _leave_together(main: Callable[[], int]) -> int:
    status = main()
    distributed.barrier()  # ranks leave together, after rank 0 has written its results
    return status
