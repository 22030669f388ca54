"""The run skeleton (runner/skeleton.py) driving a stand-in program, and the one error path
(runner/errors.py): the files of a run, Ctrl-C and resume, and each error's exit status."""

import argparse
import json

import pytest
import torch
import torch.nn as nn

from runner import errors, skeleton
from runner.rundir import CHECKPOINT_FILE, CONFIG_FILE, HISTORY_FILE

EPOCHS = 3


class LineFit(skeleton.Program):
    """A linear fit trained by SGD, two steps per epoch; Ctrl-C at epoch `interrupt_at`."""

    kind = "fit"

    def __init__(self, interrupt_at=None):
        torch.manual_seed(0)
        self.model = nn.Linear(2, 1)
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, EPOCHS)
        self.components = {"model": self.model, "optimizer": optimizer, "scheduler": scheduler}
        self.interrupt_at, self.logged, self.finished = interrupt_at, [], False

    def replica(self):
        return self.model

    def config_additions(self):
        return {"extra": "recorded"}

    def log_start(self, run, config):
        self.config = config

    def train_epoch(self, run, replica, epoch, lr, step):
        if epoch == self.interrupt_at:
            raise KeyboardInterrupt
        x, y = torch.tensor([[1.0, 2.0], [3.0, -1.0]]), torch.tensor([[1.0], [0.0]])
        for _ in range(2):
            self.components["optimizer"].zero_grad()
            loss = nn.functional.mse_loss(replica(x), y)
            loss.backward()
            self.components["optimizer"].step()
        return {"train_loss": loss.item()}, step + 2

    def evaluate_epoch(self):
        return {"val_acc": 0.5}

    def log_epoch(self, run, record):
        self.logged.append(record["epoch"])

    def finish(self, run):
        self.finished = True
        return errors.EXIT_OK


def run_args(tmp_path, name, resume=False) -> argparse.Namespace:
    path = str(tmp_path / name)
    return argparse.Namespace(save=None if resume else path, resume=path if resume else None,
                              runs_dir=str(tmp_path), epochs=EPOCHS, wandb=False)


def untimed(run_dir):
    return [{k: v for k, v in r.items() if k != "epoch_s"}
            for r in json.loads((run_dir / HISTORY_FILE).read_text())]


def test_a_run_writes_a_record_and_a_checkpoint_per_epoch(tmp_path):
    program = LineFit()
    assert skeleton.run_program(program, run_args(tmp_path, "run")) == 0
    run = tmp_path / "run"
    history = json.loads((run / HISTORY_FILE).read_text())
    assert [list(r) for r in history] == [["epoch", "lr", "train_loss", "val_acc", "epoch_s"]] * 3
    assert [r["lr"] for r in history] == pytest.approx([0.1, 0.075, 0.025])  # cosine, 3 epochs
    checkpoint = torch.load(run / CHECKPOINT_FILE, weights_only=True)
    assert (checkpoint["epoch"], checkpoint["step"]) == (3, 6)
    config = json.loads((run / CONFIG_FILE).read_text())
    assert config["extra"] == "recorded" and config["world_size"] == 1
    assert program.logged == [1, 2, 3] and program.finished and program.config == config


def test_ctrl_c_keeps_the_last_epoch_and_a_resume_ends_as_an_uninterrupted_run(tmp_path):
    skeleton.run_program(LineFit(), run_args(tmp_path, "straight"))
    interrupted = LineFit(interrupt_at=1)
    status = skeleton.run_program(interrupted, run_args(tmp_path, "cut"))
    assert status == errors.EXIT_INTERRUPTED and not interrupted.finished
    cut = tmp_path / "cut"
    assert torch.load(cut / CHECKPOINT_FILE, weights_only=True)["epoch"] == 1
    assert len(json.loads((cut / HISTORY_FILE).read_text())) == 1
    resumed = LineFit()
    assert skeleton.run_program(resumed, run_args(tmp_path, "cut", resume=True)) == 0
    assert resumed.logged == [2, 3] and resumed.finished
    assert untimed(cut) == untimed(tmp_path / "straight")
    final = torch.load(cut / CHECKPOINT_FILE, weights_only=True)
    expected = torch.load(tmp_path / "straight" / CHECKPOINT_FILE, weights_only=True)
    assert all(torch.equal(final["model"][k], v) for k, v in expected["model"].items())


@pytest.mark.parametrize("error, status", [
    (ValueError("--epochs -1 must be positive"), errors.EXIT_BAD_INPUT),
    (FileNotFoundError("no such genotype file"), errors.EXIT_BAD_INPUT),
    (errors.NonFiniteLossError("training loss is nan"), errors.EXIT_NON_FINITE),
    (errors.RunWriteError("cannot write history.json"), errors.EXIT_WRITE_FAILED),
])
def test_each_reported_error_is_one_line_and_its_status(error, status, capsys, monkeypatch):
    monkeypatch.delenv("AXDARTS_DEBUG", raising=False)

    def fail():
        raise error

    assert errors.exit_status(fail) == status
    assert capsys.readouterr().err == f"error: {error}\n"


def test_other_errors_keep_their_traceback_and_debug_reraises(capsys, monkeypatch):
    def bug():
        raise RuntimeError("a bug")

    def bad_flag():
        raise ValueError("bad flag")

    with pytest.raises(RuntimeError, match="a bug"):  # alone, a RuntimeError is no peer failure
        skeleton.run_guarded(bug)
    monkeypatch.setenv("AXDARTS_DEBUG", "1")
    with pytest.raises(ValueError, match="bad flag"):
        errors.exit_status(bad_flag)
    assert capsys.readouterr().err == "error: bad flag\n"


def test_a_program_adds_its_own_errors_in_front():
    kinds = (errors.OneLineError((KeyError,), errors.EXIT_FAILED, "sweep error",
                                 applies=lambda: True), *errors.ONE_LINE_ERRORS)
    assert errors.describe(KeyError("x"), kinds) == ("sweep error", "'x'", errors.EXIT_FAILED)
    assert errors.describe(KeyError("x")) is None
    assert errors.exit_status(lambda: None) == errors.EXIT_OK
