"""The float warm-ups: the search's warm-up epochs (train_search.py --float_warmup,
search/bilevel.py) and the retrain's first epochs (train.py --float_warmup_epochs) compute
every emulated conv in float32; the emulation takes over after them."""

import pytest
import torch

import genotypes
import train
import train_search
from approx.module import EmulatedConv2d
from approx.settings import FLOAT_MODE
from tests.test_search_e2e import search
from tests.test_train_e2e import APPROX_V2, retrain

pytestmark = pytest.mark.timeout(300)


def float_epochs(*flags) -> list[bool]:
    args = train_search.parse_args(["--dataset", "shapes", "--epochs", "5", *flags])
    return [train_search.epoch_settings(args, epoch, 4).float_convs for epoch in range(5)]


def test_only_the_warm_up_epochs_compute_in_float():
    assert float_epochs("--warmup_epochs", "3") == [True, True, True, False, False]  # default
    assert float_epochs("--warmup_epochs", "3", "--no-float_warmup") == [False] * 5
    assert float_epochs("--warmup_epochs", "0") == [False] * 5


def recorded_training_modes(monkeypatch) -> list[str]:
    """The emulation mode of every training forward of an emulated conv, in order."""
    training_modes = []
    forward = EmulatedConv2d.forward

    def recorded(self, x):
        if self.training:
            training_modes.append(self.emulation.mode)
        return forward(self, x)

    monkeypatch.setattr(EmulatedConv2d, "forward", recorded)
    return training_modes


def test_the_warm_up_trains_in_float_and_the_search_on_the_multipliers(tmp_path, monkeypatch):
    training_modes = recorded_training_modes(monkeypatch)
    status, _ = search(tmp_path, "float-warmup", "--epochs", "2", "--warmup_epochs", "1",
                       "--rank_proxy_epochs", "0")
    assert status == 0
    # epoch 1 (the warm-up): every conv in float; epoch 2 and after: emulated again
    switch = training_modes.index(next(m for m in training_modes if m != FLOAT_MODE))
    assert switch > 0 and set(training_modes[:switch]) == {FLOAT_MODE}
    assert FLOAT_MODE not in training_modes[switch:]


def test_a_resumed_search_with_a_float_warm_up_matches_the_uninterrupted_one(tmp_path):
    # a constant learning rate: the cosine schedule over 2 and over 3 epochs would differ
    flags = ("--warmup_epochs", "1", "--float_warmup", "--rank_proxy_epochs", "0",
             "--learning_rate", "0.05", "--learning_rate_min", "0.05")
    _, full = search(tmp_path, "full", "--epochs", "3", *flags)
    _, part = search(tmp_path, "part", "--epochs", "2", *flags)
    assert train_search.main(["--resume", str(part), "--epochs", "3"]) == 0
    full_state = torch.load(full / "checkpoint.pt", weights_only=True)["model"]
    part_state = torch.load(part / "checkpoint.pt", weights_only=True)["model"]
    for key, value in full_state.items():
        assert torch.equal(value, part_state[key]), key


def retrain_float_epochs(*flags) -> int:
    return train.float_warmup_epochs(train.parse_args(["--dataset", "shapes", *flags]))


def test_the_retrain_s_float_epochs_default_to_a_third_of_them():
    assert retrain_float_epochs() == 5  # the shapes default: 33 % of 15 epochs
    assert retrain_float_epochs("--epochs", "1") == 0
    assert retrain_float_epochs("--epochs", "4", "--float_warmup_epochs", "2") == 2
    assert retrain_float_epochs("--dataset", "cifar10") == 0


def test_the_retrain_trains_its_first_epochs_in_float_then_on_the_multipliers(
        tmp_path, monkeypatch):
    training_modes = recorded_training_modes(monkeypatch)
    genotype_file = genotypes.save(APPROX_V2, tmp_path / "g.json")
    status, run = retrain(tmp_path, "run", "--genotype", str(genotype_file), "--epochs", "3",
                          "--float_warmup_epochs", "2", "--final_eval", "tables")
    assert status == 0
    steps_per_epoch = len(training_modes) // 3
    assert set(training_modes[:2 * steps_per_epoch]) == {FLOAT_MODE}
    assert FLOAT_MODE not in training_modes[2 * steps_per_epoch:]
    assert "the first 2 epoch(s) train in float32" in (run / "log.txt").read_text()
