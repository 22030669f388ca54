"""The float warm-up (train_search.py --float_warmup, search/bilevel.py): the warm-up epochs
compute every emulated conv in float32, and the emulation takes over when the alphas move."""

import pytest
import torch

import train_search
from approx.module import EmulatedConv2d
from approx.settings import FLOAT_MODE
from tests.test_search_e2e import search

pytestmark = pytest.mark.timeout(300)


def float_epochs(*flags) -> list[bool]:
    args = train_search.parse_args(["--dataset", "shapes", "--epochs", "5", *flags])
    return [train_search.epoch_settings(args, epoch, 4).float_convs for epoch in range(5)]


def test_only_the_warm_up_epochs_compute_in_float():
    assert float_epochs("--warmup_epochs", "3") == [True, True, True, False, False]  # default
    assert float_epochs("--warmup_epochs", "3", "--no-float_warmup") == [False] * 5
    assert float_epochs("--warmup_epochs", "0") == [False] * 5


def test_the_warm_up_trains_in_float_and_the_search_on_the_multipliers(tmp_path, monkeypatch):
    training_modes = []
    forward = EmulatedConv2d.forward

    def recorded(self, x):
        if self.training:
            training_modes.append(self.emulation.mode)
        return forward(self, x)

    monkeypatch.setattr(EmulatedConv2d, "forward", recorded)
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
