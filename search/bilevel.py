"""One epoch of the bilevel search (DARTS): for each batch of the weights' part of the training
set, an architecture step (the Architect, first or second order) on a batch of the alphas'
part (before every k-th weight step only with `arch_every` k), then a step of the weights
(SGD or AdamW, runner/weight_optimizers.py) through `replica` (the supernet, or its DDP
wrapper that averages the weight gradients over the ranks). While warming up the alphas stay
where they are and only the weights train, with every conv in float32 if asked
(`float_convs`: quantisation-aware training from float weights, 1.7x faster per step than the
emulated supernet). An optional linear learning-rate warm-up (Goyal et al., 2017) ramps the
weights' learning rate from 1/n to the schedule's over the first n steps (measured no help
against the default search's slow start, docs/supernet_stability.md)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
import torch.nn as nn

from approx.module import emulating
from approx.settings import FLOAT_MODE
from architect import alphas_frozen
from runner import distributed
from runner.errors import check_finite
from runner.training import AverageMeter, accuracy, progress


def endless(loader, epoch: int):
    """Batches of `loader` (a data.BatchLoader) for as long as asked, reshuffled on every pass."""
    passes = 0
    while True:
        loader.set_epoch(epoch * 1000 + passes)
        yield from loader
        passes += 1


@dataclass(frozen=True)
class SearchParts:
    """What a search epoch steps: the supernet, `replica` (the supernet or its DDP wrapper),
    the Architect, the weights' optimiser and the loaders ('train': the weights' part,
    'arch': the alphas' part)."""

    model: nn.Module
    replica: nn.Module
    architect: object
    w_optimizer: torch.optim.Optimizer
    loaders: dict


@dataclass(frozen=True)
class EpochSettings:
    """`unrolled`: second-order architecture step; `grad_clip`: the weights' gradient norm
    clip; `warming_up`: train the weights only (the alphas stay); `lr_warmup_steps`: steps of
    the linear learning-rate warm-up (0: none); `arch_every`: an architecture step before
    every k-th weight step only (1: before every one, as DARTS alternates); `float_convs`:
    every emulated conv computes in float32 this epoch (a float warm-up)."""

    unrolled: bool = False
    grad_clip: float = 5.0
    warming_up: bool = False
    lr_warmup_steps: int = 0
    arch_every: int = 1
    float_convs: bool = False

    def steps_alphas(self, step: int) -> bool:
        """Whether weight step `step` (from 0, counted over the run) follows an alpha step."""
        return not self.warming_up and step % self.arch_every == 0

    def lr_factor(self, step: int) -> float:
        """Share of the scheduled learning rate that step `step` (from 0) uses."""
        return min(1.0, (step + 1) / self.lr_warmup_steps) if self.lr_warmup_steps else 1.0


@contextmanager
def scaled_lr(optimizer: torch.optim.Optimizer, factor: float):
    """The optimizer's learning rates times `factor` inside the block, restored after it (the
    epoch schedule keeps its own values)."""
    scheduled = [group["lr"] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["lr"] *= factor
    try:
        yield
    finally:
        for group, lr in zip(optimizer.param_groups, scheduled, strict=True):
            group["lr"] = lr


def train_epoch(parts: SearchParts, epoch: int, lr: float, step: int, settings: EpochSettings,
                log_step: Callable[[int, dict], None]) -> tuple[dict, int]:
    """One epoch over `loaders['train']` (weights) and `loaders['arch']` (alphas), `step` steps
    done before it; `log_step(step, stats)` after each step. Returns (the epoch's metrics over
    all ranks, the step count after it)."""
    model, loaders = parts.model, parts.loaders
    model.train()
    meters = {name: AverageMeter() for name in ("loss", "acc", "arch_loss")}
    loaders["train"].set_epoch(epoch)
    arch_batches = endless(loaders["arch"], epoch)
    with emulating(model, mode=FLOAT_MODE) if settings.float_convs else nullcontext():
        stats, step = _train_batches(parts, epoch, lr, step, settings, log_step, meters,
                                     arch_batches)
    distributed.sum_meters(meters)
    return {"train_loss": meters["loss"].avg, "train_acc": meters["acc"].avg,
            "arch_loss": meters["arch_loss"].avg if meters["arch_loss"].count else None,
            "energy_weight": stats.get("energy_weight")}, step


def _train_batches(parts: SearchParts, epoch: int, lr: float, step: int,
                   settings: EpochSettings, log_step, meters: dict, arch_batches):
    """The epoch's steps (train_epoch's loop); returns the last step's stats and the step
    count."""
    architect, loaders, stats = parts.architect, parts.loaders, {}
    for x, y in progress(loaders["train"], len(loaders["train"]), f"search epoch {epoch}",
                         show=distributed.is_main()):
        factor = settings.lr_factor(step)
        stepped_alphas = settings.steps_alphas(step)
        if stepped_alphas:
            arch_x, arch_y = next(arch_batches)
            stats = architect.step(x, y, arch_x, arch_y, lr * factor, parts.w_optimizer,
                                   unrolled=settings.unrolled)
        else:  # weights only (warming up, or between alpha steps): the alphas stay
            stats = {"energy_weight": architect.energy_weight}
        with scaled_lr(parts.w_optimizer, factor):
            logits, loss, step_stats = weight_step(parts, x, y, settings.grad_clip, stats)
        meters["loss"].update(loss, len(y))
        meters["acc"].update(accuracy(logits, y), len(y))
        if stepped_alphas:
            meters["arch_loss"].update(stats["loss"], len(arch_y))
        step += 1
        log_step(step, step_stats)
    return stats, step


def weight_step(parts: SearchParts, x, y, grad_clip: float, arch_stats: dict):
    """One optimiser step of the weights (DDP averages their gradients). Returns the logits, this
    rank's loss, and the step's loss and `arch_stats` averaged over the ranks."""
    model, w_optimizer = parts.model, parts.w_optimizer
    w_optimizer.zero_grad(set_to_none=True)
    with alphas_frozen(model):  # no alpha gradients: the architect owns them
        logits = parts.replica(x)
        loss = model.criterion(logits, y)
        step_stats = distributed.mean_floats({"train_loss": loss.item(), **arch_stats})
        check_finite(torch.tensor(step_stats["train_loss"]), "training loss")
        loss.backward()
    nn.utils.clip_grad_norm_(model.weights(), grad_clip)
    w_optimizer.step()
    return logits, loss.item(), step_stats
