"""bench/retrain_profile.py: the retrain's projection (float warm-up epochs at the float step,
the rest at the emulated step, each with its test pass), its truncated loader, bad counts."""

import pytest

from tests.bench_loader import bench_module

retrain_profile = bench_module("retrain_profile")


def test_the_projection_prices_float_and_emulated_epochs_apart():
    timed = {"steps_per_epoch": 79, "emulated_step_s": 0.4, "float_step_s": 0.2,
             "epoch_start_s": 0.5, "evaluation_s": 1.5}
    expected = (5 * (79 * 0.2 + 2.0) + 10 * (79 * 0.4 + 2.0)) / 60
    assert retrain_profile.run_minutes(timed, 15, 5) == pytest.approx(expected, abs=0.05)
    assert retrain_profile.run_minutes(timed, 15, 0) == pytest.approx(15 * 33.6 / 60, abs=0.05)


def test_first_batches_stops_early_and_passes_the_epoch_on():
    class Loader:
        epoch = None

        def set_epoch(self, epoch):
            self.epoch = epoch

        def __len__(self):
            return 5

        def __iter__(self):
            return iter(range(5))

    loader = Loader()
    first = retrain_profile.FirstBatches(loader, 2)
    first.set_epoch(3)
    assert (len(first), list(first), loader.epoch) == (2, [0, 1], 3)
    assert len(retrain_profile.FirstBatches(loader, 9)) == 5


def test_bad_step_counts_fail_in_one_line():
    with pytest.raises(ValueError, match="--steps 0"):
        retrain_profile.main(["--steps", "0"])
