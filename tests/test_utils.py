"""Run-directory plumbing: atomic files, checkpoints that survive failures, RNG capture."""

import random

import numpy as np
import pytest
import torch

from runner.errors import NonFiniteLossError, RunDirError, check_finite
from runner.files import atomic_torch_save, atomic_write_json
from runner.rundir import RunDir
from runner.training import rng_state, set_rng_state


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "checkpoint.pt"
    atomic_torch_save({"epoch": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_torch_save({"epoch": 2, "bad": Unpicklable()}, path)
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_rng_state_round_trip_through_a_weights_only_checkpoint(tmp_path):
    state = rng_state()
    atomic_torch_save({"rng": state}, tmp_path / "c.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(torch.load(tmp_path / "c.pt", weights_only=True)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_run_dir_refuses_to_overwrite_and_to_resume_nothing(tmp_path):
    run = RunDir(tmp_path / "run")
    run.save_checkpoint({"epoch": 0})
    run.close()
    with pytest.raises(RunDirError, match="already holds a run"):
        RunDir(tmp_path / "run")
    with pytest.raises(RunDirError, match="no checkpoint.pt"):
        RunDir(tmp_path / "other", resume=True)
    resumed = RunDir(tmp_path / "run", resume=True)
    assert resumed.load_checkpoint()["epoch"] == 0
    resumed.close()


def test_corrupt_checkpoint_gives_clear_error(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    run = RunDir(tmp_path, resume=True)
    with pytest.raises(RunDirError, match="cannot read checkpoint"):
        run.load_checkpoint()
    run.close()


def test_history_is_rewritten_atomically(tmp_path):
    run = RunDir(tmp_path / "run")
    run.append_history({"epoch": 1, "x": float("nan")})
    run.append_history({"epoch": 2, "x": 1.0})
    run.close()
    text = (tmp_path / "run" / "history.json").read_text()
    assert '"epoch": 2' in text and '"x": null' in text and "NaN" not in text
    atomic_write_json(tmp_path / "a.json", {"p": tmp_path})


def test_check_finite():
    assert check_finite(torch.tensor(1.0), "loss").item() == 1.0
    with pytest.raises(NonFiniteLossError, match="training loss is nan"):
        check_finite(torch.tensor(float("nan")), "training loss")
