"""Two CPU processes on gloo (torch.multiprocessing, spawn) run the real programs on tiny settings.

One session of two ranks runs, in order: a 1-epoch second-order search, its resumption to 2
epochs, a 1-epoch retrain (default run directory), a search whose --save already exists
(rank 0 alone can tell), and a search where rank 1 fails at its first step. The tests compare
what each rank ended with, what was written, and single-process runs of the same flags.

BatchNorm: with per-rank batch statistics, 2 ranks x 8 images cannot equal 1 x 16 images.
Both the 2-process and the 1-process runs here therefore normalise with the (fixed) running
statistics (`frozen_batch_norm`); everything else (sharding, DDP weight averaging, averaged
alpha gradients and second-order terms, optimiser states, resumption) must then agree to float
rounding. That batch statistics are the only difference is the documented convention.
"""

from __future__ import annotations

import io
import json
import os
import socket
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

import architect
import train
import train_search
from kernels import lean
from reporting import retrain_report, search_report

# float32 networks throughout (a training batch's emulated convs quantise with the batch's own
# max|x|, which a rank's half of the batch does not share)
SEARCH = ["--dataset", "shapes", "--n_train", "64", "--n_test", "32", "--init_channels", "4",
          "--layers", "2", "--batch_size", "16", "--device", "cpu", "--multipliers", "",
          "--fixed_multiplier", "float",
          "--primitives", "none,max_pool_3x3,skip_connect,sep_conv_3x3", "--warmup_epochs", "0"]
RETRAIN = ["--dataset", "shapes", "--n_train", "64", "--n_test", "32", "--init_channels", "4",
           "--layers", "3", "--batch_size", "16", "--device", "cpu", "--genotype",
           "DARTS_V1@float", "--epochs", "1"]
PROGRAMS = {"search": train_search, "train": train}
FLOAT_TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def frozen_batch_norm(self, x):
    """BatchNorm normalising with its running statistics even in training (see module doc)."""
    return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False,
                        0.0, self.eps)


class Capture:
    """Keeps each run's final model state (the rank's own, before anything is written)."""

    def __init__(self):
        self.state = None
        self._write_result, self._finish = search_report.write_result, retrain_report.finish
        search_report.write_result = self._on_search_result
        retrain_report.finish = self._on_retrain_result

    def _keep(self, model):
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def _on_search_result(self, run, args, model, *rest, **options):
        self._keep(model)
        self.state["genotype"] = str(model.genotype())
        return self._write_result(run, args, model, *rest, **options)

    def _on_retrain_result(self, run, args, model, *rest):
        self._keep(model)
        return self._finish(run, args, model, *rest)

    def pop(self):
        state, self.state = self.state, None
        return state

    def restore(self):
        search_report.write_result, retrain_report.finish = self._write_result, self._finish


def fail_at_first_step(*args, **kwargs):
    raise ValueError("injected failure")


def run_phase(phase: dict, capture: Capture, rank: int) -> dict:
    os.environ["MASTER_PORT"] = str(phase["port"])
    original_step = architect.Architect.step
    if phase.get("fail_rank") == rank:
        architect.Architect.step = fail_at_first_step
    out, err, started = io.StringIO(), io.StringIO(), time.time()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            status = PROGRAMS[phase["program"]].main(phase["argv"])
    finally:
        architect.Architect.step = original_step
    return {"status": status, "stdout": out.getvalue(), "stderr": err.getvalue(),
            "seconds": time.time() - started, "state": capture.pop()}


def worker(rank: int, world_size: int, phases: list, out_dir: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1")
    _BatchNorm.forward = frozen_batch_norm
    lean.LeanBatchNorm2d.lean = False  # its own forward would bypass the frozen one
    capture = Capture()
    results = [run_phase(phase, capture, rank) for phase in phases]
    torch.save(results, Path(out_dir) / f"rank{rank}.pt")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def session_phases(tmp: Path) -> dict:
    data = ["--data", str(tmp / "data")]
    search = [*SEARCH, *data, "--unrolled"]
    phases = {
        "search": ("search", [*search, "--save", str(tmp / "search"), "--epochs", "1"]),
        "resume": ("search", ["--resume", str(tmp / "search"), "--epochs", "2"]),
        "train": ("train", [*RETRAIN, *data, "--runs_dir", str(tmp / "train_runs")]),
        "save_taken": ("search", [*search, "--save", str(tmp / "search"), "--epochs", "1"]),
        "rank_fails": ("search", [*search, "--save", str(tmp / "fail"), "--epochs", "1",
                                  "--dist_timeout", "30"]),
    }
    return {name: {"program": program, "argv": argv, "port": free_port(),
                   "fail_rank": 1 if name == "rank_fails" else None}
            for name, (program, argv) in phases.items()}


def single_process_runs(tmp: Path) -> dict:
    """The same search (2 epochs straight) and retrain in this process, one rank."""
    data = ["--data", str(tmp / "data")]
    runs = {"search": ("search", [*SEARCH, *data, "--unrolled", "--epochs", "2", "--save",
                                  str(tmp / "single_search")]),
            "train": ("train", [*RETRAIN, *data, "--save", str(tmp / "single_train")])}
    capture = Capture()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_BatchNorm, "forward", frozen_batch_norm)
            patch.setattr(lean.LeanBatchNorm2d, "lean", False)
            return {name: run_phase({"program": program, "argv": argv, "port": 0}, capture, 0)
                    for name, (program, argv) in runs.items()}
    finally:
        capture.restore()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("distributed")
    single = single_process_runs(tmp)
    phases = session_phases(tmp)
    mp.spawn(worker, args=(2, list(phases.values()), str(tmp)), nprocs=2, join=True)
    ranks = [dict(zip(phases, torch.load(tmp / f"rank{r}.pt", weights_only=False), strict=True))
             for r in range(2)]
    return {"tmp": tmp, "single": single, "ranks": ranks}


def test_every_rank_ends_with_the_same_alphas_weights_and_genotype(runs):
    for phase in ("search", "resume", "train"):
        first, second = (rank[phase] for rank in runs["ranks"])
        assert first["status"] == second["status"] == 0, first["stderr"] + second["stderr"]
        for key, value in first["state"].items():
            assert value == second["state"][key] if key == "genotype" else torch.equal(
                value, second["state"][key]), (phase, key)


def test_two_ranks_match_one_rank_with_the_same_global_batch(runs):
    for phase, single in (("resume", "search"), ("train", "train")):
        expected = runs["single"][single]["state"]
        got = runs["ranks"][0][phase]["state"]
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            if key == "genotype":
                assert got[key] == value
            else:
                torch.testing.assert_close(got[key], value, **FLOAT_TOLERANCE, msg=key)


def test_metrics_are_reduced_over_the_ranks(runs):
    tmp = runs["tmp"]
    two = json.loads((tmp / "search" / "history.json").read_text())
    one = json.loads((tmp / "single_search" / "history.json").read_text())
    assert [r["epoch"] for r in two] == [1, 2]
    for key in ("train_loss", "train_acc", "arch_loss", "val_loss", "val_acc",
                "expected_energy_uj", "energy_uj"):
        assert [r[key] for r in two] == pytest.approx([r[key] for r in one], rel=1e-4), key


def test_only_rank_zero_writes_and_logs(runs):
    tmp = runs["tmp"]
    train_runs = list((tmp / "train_runs").iterdir())  # the default directory, named by rank 0
    assert len(train_runs) == 1 and (train_runs[0] / "results.json").is_file()
    assert len(list((tmp / "search").glob("events.out.tfevents*"))) == 2  # two launches
    log = (tmp / "search" / "log.txt").read_text()
    assert log.count("epoch 1:") == 1 and log.count("epoch 2:") == 1
    for phase, line in (("search", "epoch 1:"), ("resume", "epoch 2:"), ("train", "epoch 1:")):
        assert runs["ranks"][1][phase]["stdout"] == ""
        assert line in runs["ranks"][0][phase]["stdout"]


def test_a_setup_error_on_rank_zero_stops_both_ranks_cleanly(runs):
    first, second = (rank["save_taken"] for rank in runs["ranks"])
    assert (first["status"], second["status"]) == (2, 2)
    assert "already holds a run" in first["stderr"]
    assert "rank 0 failed while setting up" in second["stderr"]


def test_a_failed_rank_ends_the_job_with_a_clear_message(runs):
    first, second = (rank["rank_fails"] for rank in runs["ranks"])
    assert second["status"] == 2 and "injected failure" in second["stderr"]
    assert first["status"] == 4 and "another rank has probably stopped" in first["stderr"]
    assert first["seconds"] < 60
