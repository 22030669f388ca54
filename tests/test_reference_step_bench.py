"""bench/reference_step.py: the reference's step timed through pt.darts's interface (a stand-in
checkout here: pt.darts itself is not shipped), both sides run per setting and round with the
same flags, the ratios against issue 28's targets, and bad flags in one line."""

import json
import subprocess
import sys
import textwrap

import pytest

from tests.bench_loader import BENCH, bench_module

reference_step = bench_module("reference_step")

# pt.darts's interface as search.py uses it: SearchCNNController(C_in, C, n_classes, n_layers,
# criterion, device_ids) with weights(), alphas(), loss(); Architect(net, w_momentum,
# w_weight_decay).unrolled_backward(...) setting the alphas' gradients
STAND_IN = {
    "models/__init__.py": "",
    "models/search_cnn.py": """
        import torch
        import torch.nn as nn


        class SearchCNNController(nn.Module):
            def __init__(self, C_in, C, n_classes, n_layers, criterion, device_ids=None):
                super().__init__()
                self.convs = nn.ModuleList(nn.Conv2d(C_in, C, 3, padding=1) for _ in range(2))
                self.head = nn.Linear(C, n_classes)
                self.alpha = nn.Parameter(torch.zeros(2))
                self.criterion = criterion

            def forward(self, x):
                w = self.alpha.softmax(0)
                y = sum(wk * conv(x) for wk, conv in zip(w, self.convs))
                return self.head(y.mean((2, 3)))

            def loss(self, x, y):
                return self.criterion(self(x), y)

            def weights(self):
                return [p for n, p in self.named_parameters() if n != "alpha"]

            def alphas(self):
                return [self.alpha]
        """,
    "architect.py": """
        import torch


        class Architect:
            def __init__(self, net, w_momentum, w_weight_decay):
                self.net = net

            def unrolled_backward(self, trn_X, trn_y, val_X, val_y, xi, w_optim):
                loss = self.net.loss(val_X, val_y)
                (self.net.alpha.grad,) = torch.autograd.grad(loss, self.net.alphas())
        """,
}


@pytest.fixture
def stand_in(tmp_path):
    for name, text in STAND_IN.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    return tmp_path


@pytest.mark.parametrize("order", ["first", "second"])
def test_the_worker_times_a_reference_step_through_its_interface(stand_in, order):
    done = subprocess.run(
        [sys.executable, str(BENCH / "reference_step.py"), f"--worker={order}",
         f"--reference_dir={stand_in}", "--batch_size=2", "--steps=2", "--warmup=1",
         "--threads=1", "--init_channels=4", "--layers=1", "--input_size=8"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["step_s_median"] > 0 and figures["peak_rss_gb"] > 0


def test_each_setting_runs_both_sides_per_round_with_the_same_flags(stand_in, monkeypatch,
                                                                     capsys):
    commands = []

    def fake_run(command):
        commands.append(command)
        reference = "--worker" in " ".join(command)
        return {"step_s_median": 6.0 if reference else 2.0,
                "peak_rss_gb": 4.0 if reference else 1.0}

    monkeypatch.setattr(reference_step, "run_json", fake_run)
    assert reference_step.main([f"--reference_dir={stand_in}", "--orders=second",
                                "--batch_sizes=16,64", "--rounds=2", "--steps=4"]) == 0
    assert len(commands) == 2 * 2 * 2
    ours, reference = commands[0], commands[1]
    assert ours[1].endswith("search_step.py") and "--order=second" in ours
    assert "--worker=second" in reference
    shared = [flag for flag in ours if flag.startswith(("--steps", "--threads", "--layers"))]
    assert shared and all(flag in reference for flag in shared)
    printed = json.loads(capsys.readouterr().out)
    setting = printed["settings"]["second_order_batch_64"]
    assert setting["speedup"] == 3.0 and setting["speedup_met"]
    assert setting["memory_ratio"] == 0.25 and setting["memory_met"]
    assert setting["axdarts_step_s_rounds"] == [2.0, 2.0]


def test_the_ratios_are_of_the_medians_over_rounds():
    ours = [{"step_s_median": s, "peak_rss_gb": 2.0} for s in (1.0, 1.2, 5.0)]
    reference = [{"step_s_median": s, "peak_rss_gb": 3.0} for s in (2.0, 3.0, 3.3)]
    figures = reference_step.compare(ours, reference)
    assert figures["speedup"] == pytest.approx(2.5) and not figures["speedup_met"]
    assert figures["memory_ratio"] == pytest.approx(0.67) and not figures["memory_met"]


@pytest.mark.parametrize("flags, named", [
    (["--reference_dir={empty}"], "--reference_dir"),
    (["--reference_dir={stand_in}", "--orders=third"], "--orders"),
    (["--reference_dir={stand_in}", "--batch_sizes=16,x"], "--batch_sizes"),
    (["--reference_dir={stand_in}", "--batch_sizes=0"], "--batch_sizes"),
    (["--reference_dir={stand_in}", "--steps=0"], "--steps"),
])
def test_bad_flags_fail_in_one_line(stand_in, tmp_path, capsys, flags, named):
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = [flag.format(stand_in=stand_in, empty=empty) for flag in flags]
    assert reference_step.main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and named in error
