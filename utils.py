"""Shared plumbing of the two programs: run directories, atomic files and checkpoints, seeding and
RNG state, devices, meters and the epoch progress bar."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

CHECKPOINT_FILE = "checkpoint.pt"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
LOG_FILE = "log.txt"


class NonFiniteLossError(ValueError):
    """A NaN or infinite loss; the run stops and keeps its last good checkpoint."""


class RunDirError(ValueError):
    """A run directory that cannot be created, reused or resumed."""


class RunWriteError(Exception):
    """A run file that could not be written (a full disk): the previous version is intact."""


def check_finite(value: torch.Tensor, what: str) -> torch.Tensor:
    if not torch.isfinite(value).all():
        raise NonFiniteLossError(
            f"{what} is {value.item() if value.numel() == 1 else 'non-finite'}; stopping with the "
            f"last good checkpoint kept (lower --learning_rate / --arch_learning_rate, or check "
            f"--energy_weight)")
    return value


# ----------------------------------------------------------------------------- atomic files
def _atomic_replace(path: Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as tmp:
            write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` through a temporary file and a rename (never a torn file)."""
    return _atomic_replace(Path(path), lambda f: f.write(text.encode()))


def atomic_write_json(path: str | Path, data) -> Path:
    """Strict JSON (NaN and infinities become null), written atomically."""
    text = json.dumps(json_safe(data), indent=2, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def json_safe(value):
    """`value` with paths, tensors and arrays made plain and non-finite floats made None."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if hasattr(value, "tolist"):
        return json_safe(value.tolist())
    return str(value)


def atomic_torch_save(obj, path: str | Path) -> Path:
    return _atomic_replace(Path(path), lambda f: torch.save(obj, f))


# ----------------------------------------------------------------------------- seeding and RNG
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


@contextlib.contextmanager
def single_thread():
    """Run a block on one intra-op thread (small kernels and LAPACK calls gain nothing from more,
    and on a shared machine spinning OpenMP threads slow them down), then restore the count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available here; use --device cpu or auto")
    return torch.device(name)


# ----------------------------------------------------------------------------- run directory
class RunDir:
    """One run's directory: config, log, per-epoch history, TensorBoard events, checkpoint."""

    def __init__(self, path: str | Path, resume: bool = False, write: bool = True):
        self.path = Path(path)
        self.write = write
        self.history: list[dict] = []
        if write:
            self._prepare(resume)
        self.logger = _make_logger(self.path / LOG_FILE if write else None)
        self._writer = None
        self.mirror = None  # optional experiment tracker (wandb_logger.WandbMirror)

    def _prepare(self, resume: bool) -> None:
        if resume and not (self.path / CHECKPOINT_FILE).is_file():
            raise RunDirError(f"--resume {self.path}: no {CHECKPOINT_FILE} there; start a new run "
                              f"with --save instead")
        if not resume and (self.path / CHECKPOINT_FILE).exists():
            raise RunDirError(f"--save {self.path} already holds a run; pass --resume {self.path} "
                              f"to continue it or choose another --save directory")
        self.path.mkdir(parents=True, exist_ok=True)
        for stale in self.path.glob(".*.tmp"):  # an atomic write cut short by a kill
            stale.unlink(missing_ok=True)

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_FILE

    @property
    def writer(self):
        """The TensorBoard SummaryWriter (created on first use; None when not writing)."""
        if self._writer is None and self.write:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.path))
        return self._writer

    @contextlib.contextmanager
    def _writing(self, name: str):
        """An OSError (a full disk) writing `name` becomes a one-line RunWriteError; the atomic
        write leaves the file's previous version in place."""
        try:
            yield
        except OSError as error:
            raise RunWriteError(
                f"cannot write {self.path / name} ({error.strerror or error}); its previous "
                f"version is kept: free disk space and continue with --resume {self.path}"
            ) from None

    def save_config(self, config: dict) -> None:
        if self.write:
            with self._writing(CONFIG_FILE):
                atomic_write_json(self.path / CONFIG_FILE, config)

    def load_config(self) -> dict:
        return json.loads((self.path / CONFIG_FILE).read_text())

    def append_history(self, record: dict) -> None:
        self.history.append(record)
        if self.write:
            with self._writing(HISTORY_FILE):
                atomic_write_json(self.path / HISTORY_FILE, self.history)
            if self.mirror is not None:
                self.mirror.log_epoch(record)

    def save_checkpoint(self, state: dict) -> None:
        if self.write:
            with self._writing(CHECKPOINT_FILE):
                atomic_torch_save({**state, "history": self.history}, self.checkpoint_path)

    def load_checkpoint(self, map_location="cpu") -> dict:
        try:
            state = torch.load(self.checkpoint_path, map_location=map_location, weights_only=True)
        except Exception as error:  # noqa: BLE001 - any unreadable file gets the same message
            raise RunDirError(f"cannot read checkpoint {self.checkpoint_path}: {error}") from None
        self.history = list(state.get("history", []))
        return state

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self.mirror is not None:
            self.mirror.finish()
            self.mirror = None
        for handler in list(self.logger.handlers):
            handler.close()
            self.logger.removeHandler(handler)


def _make_logger(log_file: Path | None) -> logging.Logger:
    logger = logging.getLogger(f"axdarts.{id(log_file)}.{time.time_ns()}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    formatter = logging.Formatter("%(asctime)s %(message)s", datefmt="%m/%d %H:%M:%S")
    handlers = [logging.StreamHandler(sys.stdout)]
    if log_file is not None:
        handlers.append(logging.FileHandler(log_file))
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger


def default_run_dir(kind: str, runs_dir: str | Path = "runs") -> Path:
    return Path(runs_dir) / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def config_markdown(config: dict) -> str:
    """The run configuration as a markdown table (for TensorBoard's text tab)."""
    rows = "\n".join(f"| {key} | {value} |" for key, value in sorted(config.items()))
    return "| setting | value |\n| --- | --- |\n" + rows


# ----------------------------------------------------------------------------- metrics
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


# ----------------------------------------------------------------------------- checkpoints
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
