"""Run-directory plumbing: atomic files, the JSON convention, checkpoints that survive failures,
RNG capture."""

import json
import math
import random

import numpy as np
import pytest
import torch

import stl
from runner.errors import NonFiniteLossError, RunDirError, check_finite
from runner.files import atomic_torch_save, atomic_write_json, json_float
from runner.rundir import RunDir
from runner.training import rng_state, set_rng_state
from tradeoff import table


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


def test_json_convention_keeps_the_sign_of_infinities_and_reads_older_forms(tmp_path):
    path = atomic_write_json(tmp_path / "v.json", {"up": math.inf, "down": -math.inf,
                                                   "none": math.nan, "x": [1.5, torch.tensor(2)]})
    text = path.read_text()
    assert json.loads(text) == {"up": "inf", "down": "-inf", "none": None, "x": [1.5, 2]}
    assert "Infinity" not in text and "NaN" not in text
    assert [json_float(v) for v in ("inf", "-inf", "Infinity", None, 3)] == [
        math.inf, -math.inf, math.inf, None, 3.0]
    with pytest.raises(ValueError, match="expected a number"):
        json_float("fast")


def test_a_verdict_of_infinite_robustness_round_trips_and_prints(tmp_path):
    verdict = stl.explain("G[5,9](x >= 100)", {"x": [1.0, 2.0]})  # an empty window: +inf
    atomic_write_json(tmp_path / "results.json", {"stl": verdict.to_dict()})
    saved = json.loads((tmp_path / "results.json").read_text())["stl"]
    assert saved["satisfied"] is True and json_float(saved["robustness"]) == math.inf
    row = {"stl_satisfied": saved["satisfied"], "stl_robustness": saved["robustness"]}
    assert table._verdict(row) == "ok (+inf)"


def test_a_history_infinity_stays_an_stl_signal():
    trace = stl.trace_from_history([{"epoch": 1, "e": "inf", "gap": None},
                                    {"epoch": 2, "e": 3.0, "gap": 1.0}])
    assert trace == {"epoch": [1.0, 2.0], "e": [math.inf, 3.0]}  # a null is no value
