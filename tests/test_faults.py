"""Faults: a search or retrain killed with SIGKILL (mid-epoch, while writing its checkpoint,
during a resumed run) and resumed ends exactly as an uninterrupted run; a full disk while
writing a checkpoint keeps the previous one and stops with one line."""

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import train
import train_search
from runner import files, rundir

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "shapes", "--n_train", "64", "--n_test", "32", "--init_channels", "4",
        "--batch_size", "16", "--device", "cpu"]
SEARCH = [*TINY, "--layers", "2"]
RETRAIN = [*TINY, "--layers", "3", "--genotype", "DARTS_V2"]
# Runs a CLI whose checkpoint write number KILL_AT_SAVE (counting from 1) writes a few bytes of
# its temporary file and then SIGKILLs the process (a real kill -9 in the middle of the write).
LAUNCHER = """
import os, signal, sys
from runner import files, rundir
real_save, calls = rundir.atomic_torch_save, [0]
def save(obj, path):
    calls[0] += 1
    if calls[0] != int(os.environ.get("KILL_AT_SAVE", "0")):
        return real_save(obj, path)
    def torn(handle):
        handle.write(b"PK\\x03\\x04 torn")
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    files._atomic_replace(path, torn)
rundir.atomic_torch_save = save
program = __import__(sys.argv[1])
sys.exit(program.main(sys.argv[2:]))
"""


def launch(program, argv, kill_at_save=0):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "KILL_AT_SAVE": str(kill_at_save)}
    return subprocess.Popen([sys.executable, "-c", LAUNCHER, program, *argv], cwd=REPO_ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(process) -> int:
    _, err = process.communicate(timeout=240)
    assert process.returncode in (0, -9), err.decode()[-2000:]
    return process.returncode


def kill_after_first_epoch(process, run: Path) -> None:
    """SIGKILL as soon as the first epoch's history is written (before, during or just after
    its checkpoint write)."""
    deadline = time.time() + 240
    while not (run / rundir.HISTORY_FILE).exists() and process.poll() is None:
        assert time.time() < deadline, "the run wrote no history"
        time.sleep(0.02)
    process.kill()
    process.wait()


def assert_same_run(run: Path, reference: Path, result_file: str, timing_keys: set) -> None:
    got = torch.load(run / rundir.CHECKPOINT_FILE, weights_only=True)
    expected = torch.load(reference / rundir.CHECKPOINT_FILE, weights_only=True)
    assert got["epoch"] == expected["epoch"]
    for key, value in expected["model"].items():
        assert torch.equal(got["model"][key], value), key
    def untimed(path):
        records = json.loads(path.read_text())
        records = records if isinstance(records, list) else [records]
        return [{k: v for k, v in r.items() if k not in timing_keys} for r in records]
    for name in (rundir.HISTORY_FILE, result_file):
        assert untimed(run / name) == untimed(reference / name), name
    assert not list(run.glob(".*.tmp"))


@pytest.mark.slow
def test_search_killed_anywhere_resumes_to_the_uninterrupted_result(tmp_path):
    common = [*SEARCH, "--data", str(tmp_path / "data"), "--epochs", "2", "--multipliers", ""]
    reference = tmp_path / "reference"  # in this process: one thread, as the launched runs
    assert train_search.main([*common, "--save", str(reference)]) == 0
    run = tmp_path / "killed"
    kill_after_first_epoch(launch("train_search", [*common, "--save", str(run)]), run)
    resumed = ["--resume", str(run), "--epochs", "2"]
    # the resumed run dies while writing its first checkpoint, then a second resume finishes
    assert finish(launch("train_search", resumed, kill_at_save=1)) == -9
    assert finish(launch("train_search", resumed)) == 0
    assert_same_run(run, reference, "genotype.json", {"epoch_s", "settings"})  # paths differ


@pytest.mark.slow
def test_retrain_killed_in_a_checkpoint_write_resumes_to_the_uninterrupted_result(tmp_path):
    common = [*RETRAIN, "--data", str(tmp_path / "data"), "--epochs", "2"]
    reference = tmp_path / "reference"
    assert train.main([*common, "--save", str(reference)]) == 0
    run = tmp_path / "killed"
    # writes 1 and 2 are the epoch-0 and epoch-1 checkpoints: die in the epoch-1 one
    assert finish(launch("train", [*common, "--save", str(run)], kill_at_save=2)) == -9
    assert torch.load(run / rundir.CHECKPOINT_FILE, weights_only=True)["epoch"] == 0
    assert finish(launch("train", ["--resume", str(run), "--epochs", "2"])) == 0
    assert_same_run(run, reference, "results.json",
                    {"epoch_s", "train_s", "final_eval_s", "latency_ms_per_image"})


def test_full_disk_during_a_checkpoint_write_keeps_the_previous_one(tmp_path, capsys,
                                                                    monkeypatch):
    real_save, calls = rundir.atomic_torch_save, []

    def save(obj, path):  # the second checkpoint (epoch 1's) finds the disk full mid-write
        calls.append(path)
        if len(calls) != 2:
            return real_save(obj, path)

        def write(handle):
            handle.write(b"PK\x03\x04 part")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return files._atomic_replace(path, write)

    monkeypatch.setattr(rundir, "atomic_torch_save", save)
    run = tmp_path / "run"
    status = train_search.main([*SEARCH, "--data", str(tmp_path / "data"), "--epochs", "2",
                                "--save", str(run)])
    err = capsys.readouterr().err.strip()
    assert status == 5 and err.count("\n") == 0, err
    assert "No space left on device" in err and f"--resume {run}" in err
    assert torch.load(run / rundir.CHECKPOINT_FILE, weights_only=True)["epoch"] == 0
    assert not list(run.glob(".*.tmp"))
