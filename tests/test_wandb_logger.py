"""`--wandb`: the history mirrored to a W&B run (a fake wandb module stands in), and a clear
error when the package is missing."""

import sys
import types

import train_search

TINY = ["--dataset", "shapes", "--n_train", "32", "--n_test", "16", "--init_channels", "4",
        "--layers", "2", "--batch_size", "16", "--device", "cpu", "--image_size", "16",
        "--multiplier_search", "flat", "--multipliers", ""]


class FakeRun:
    def __init__(self, **settings):
        self.settings, self.logged, self.summary, self.finished = settings, [], {}, False

    def log(self, values, step):
        self.logged.append((step, values))

    def finish(self):
        self.finished = True


def test_search_history_goes_to_wandb(tmp_path, monkeypatch):
    runs = []
    fake = types.SimpleNamespace(init=lambda **kw: runs.append(FakeRun(**kw)) or runs[-1])
    monkeypatch.setitem(sys.modules, "wandb", fake)
    argv = [*TINY, "--data", str(tmp_path / "data"), "--save", str(tmp_path / "run"),
            "--epochs", "2", "--wandb"]
    assert train_search.main(argv) == 0
    (run,) = runs
    assert run.settings["mode"] == "offline" and run.settings["config"]["epochs"] == 2
    assert [step for step, _ in run.logged] == [1, 2]
    assert "val_acc" in run.logged[0][1] and "proxy_acc" in run.summary and run.finished


def test_missing_wandb_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import fails
    argv = [*TINY, "--data", str(tmp_path / "data"), "--save", str(tmp_path / "run"),
            "--epochs", "1", "--wandb"]
    assert train_search.main(argv) == 2
    assert "pip install wandb" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # stopped before the run directory
