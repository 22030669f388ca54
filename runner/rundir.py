"""A run's directory: its file names, config, log, per-epoch history, TensorBoard events and
checkpoint."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from pathlib import Path

import torch

from runner.errors import RunDirError, RunWriteError
from runner.files import atomic_torch_save, atomic_write_json

CHECKPOINT_FILE = "checkpoint.pt"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
LOG_FILE = "log.txt"


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
        self.mirror = None  # optional experiment tracker (runner.wandb_logger.WandbMirror)

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
