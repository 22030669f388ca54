"""The weights' linear learning-rate warm-up of the search (search/bilevel.py,
train_search.py --lr_warmup_epochs): the ramp, the restored schedule, resume equivalence."""

import pytest
import torch

import train_search
from search.bilevel import EpochSettings, scaled_lr
from tests.test_search_e2e import search

pytestmark = pytest.mark.timeout(300)


def test_lr_factor_ramps_linearly_then_stays_at_one():
    settings = EpochSettings(lr_warmup_steps=4)
    assert [settings.lr_factor(step) for step in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert EpochSettings().lr_factor(0) == 1.0


def test_scaled_lr_restores_the_scheduled_rate_even_on_error():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with scaled_lr(optimizer, 0.5):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)
    with pytest.raises(RuntimeError), scaled_lr(optimizer, 0.25):
        raise RuntimeError("step failed")
    assert optimizer.param_groups[0]["lr"] == 0.1


def test_a_warm_up_changes_the_first_steps_and_resumes_bit_for_bit(tmp_path):
    warm = ("--warmup_epochs", "0", "--lr_warmup_epochs", "1.5")
    _, plain = search(tmp_path, "plain", "--epochs", "2", "--warmup_epochs", "0")
    _, full = search(tmp_path, "full", "--epochs", "2", *warm, data_dir=tmp_path / "data")
    _, part = search(tmp_path, "part", "--epochs", "1", *warm, data_dir=tmp_path / "data")
    assert train_search.main(["--resume", str(part), "--epochs", "2"]) == 0
    states = {run.name: torch.load(run / "checkpoint.pt", weights_only=True)["model"]
              for run in (plain, full, part)}
    assert all(torch.equal(value, states["part"][key]) for key, value in states["full"].items())
    assert not all(torch.equal(value, states["plain"][key])
                   for key, value in states["full"].items())


def test_a_negative_warm_up_is_one_clear_line(tmp_path, capsys):
    status, run = search(tmp_path, "bad", "--epochs", "1", "--lr_warmup_epochs", "-1")
    assert status == 2 and "--lr_warmup_epochs -1 must not be negative" in capsys.readouterr().err
    assert not run.exists()
