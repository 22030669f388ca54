"""The recipe check's per-epoch rank agreement (quality.recipe.epoch_taus) against a hand
count: each epoch's test accuracies of the long runs ranked against their final ones."""

import json

import pytest

from quality.recipe import epoch_taus
from runner.rundir import HISTORY_FILE


def write_history(run_dir, accuracies):
    run_dir.mkdir()
    (run_dir / HISTORY_FILE).write_text(json.dumps(
        [{"epoch": k + 1, "test_acc": acc} for k, acc in enumerate(accuracies)]))
    return run_dir


@pytest.mark.timeout(10)
def test_epoch_taus_rank_each_epoch_against_the_final(tmp_path):
    runs = [write_history(tmp_path / "a", [0.3, 0.5, 0.9]),
            write_history(tmp_path / "b", [0.2, 0.6, 0.8]),
            write_history(tmp_path / "c", [0.1, 0.1, 0.7]),
            tmp_path / "no-history"]
    # epoch 1: a > b > c, as the final: tau 1; epoch 2: b > a > c, one pair of three
    # inverted: (2 - 1) / 3; the last epoch is the final itself
    assert epoch_taus(runs) == [1.0, round(1 / 3, 3), 1.0]


@pytest.mark.timeout(10)
def test_epoch_taus_leave_unrankable_epochs_empty(tmp_path):
    runs = [write_history(tmp_path / "a", [0.1, 0.5]), write_history(tmp_path / "b", [0.1])]
    # epoch 1 ties throughout; epoch 2 has one run
    assert epoch_taus(runs) == [None, None]
    assert epoch_taus([]) == []
