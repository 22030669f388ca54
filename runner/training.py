"""Training-loop plumbing of both programs: seeding and RNG state, devices, meters, the epoch
progress bar, and the resumable training state."""

from __future__ import annotations

import random
import sys
import warnings

import numpy as np
import torch


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """All global RNG states, in a form `torch.load(weights_only=True)` accepts."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": list(random.getstate()[1]),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate((3, tuple(state["python"]), None))
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["pos"], numpy_state["has_gauss"],
                         numpy_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available here; use --device cpu or auto")
    return torch.device(name)


class AverageMeter:
    """Running average weighted by sample count."""

    def __init__(self):
        self.sum = 0.0
        self.count = 0

    def update(self, value: float, n: int = 1) -> None:
        self.sum += float(value) * n
        self.count += n

    @property
    def avg(self) -> float:
        return self.sum / max(self.count, 1)


def accuracy(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Top-1 accuracy as a fraction in [0, 1]."""
    return (logits.argmax(dim=1) == target).float().mean().item()


def progress(iterable, total: int, desc: str, show: bool = True):
    """A progress bar with ETA on interactive terminals; plain iteration elsewhere (or when
    not `show`, e.g. on all ranks but the first)."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True,
                disable=None if show else True, file=sys.stderr)


def training_state(epoch: int, step: int, components: dict) -> dict:
    """A checkpoint: the epoch and step reached, every component's state_dict and the RNGs."""
    return {"epoch": epoch, "step": step, "rng": rng_state(),
            **{name: component.state_dict() for name, component in components.items()}}


def restore_training_state(state: dict, components: dict) -> tuple[int, int]:
    """Load every component's state and the RNGs; return (epoch, step) to continue from."""
    for name, component in components.items():
        component.load_state_dict(state[name])
    set_rng_state(state["rng"])
    return state["epoch"], state["step"]


def retarget_cosine_schedule(scheduler, epochs: int) -> None:
    """Aim a restored CosineAnnealingLR at `epochs` in all (a resumed run's --epochs may extend
    it; the saved state keeps the old length): replay its steps from the start, so the learning
    rates equal those of an uninterrupted run of `epochs` epochs, bit for bit."""
    done = scheduler.last_epoch
    scheduler.T_max, scheduler.last_epoch = epochs, 0
    for group, base_lr in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, strict=True):
        group["lr"] = base_lr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "scheduler.step() before optimizer.step()"
        for _ in range(done):
            scheduler.step()
