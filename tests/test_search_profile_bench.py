"""bench/search_profile.py's whole-run projection: warm-up epochs of weight steps only, search
epochs with one alpha step per --arch_every K weight steps, a float warm-up at the float
mode's weight step, each epoch's records (its pictures redrawn in the search epochs only),
and bad K values in one line."""

import pytest

from tests.bench_loader import bench_module

search_profile = bench_module("search_profile")


RECORDS = {"epoch_log_s": 1.5, "epoch_log_still_s": 0.5}


def test_run_projection_counts_alpha_steps_per_k():
    timed = {"steps_per_epoch": 13, "step_s": 3.0, "alpha_step_s": 2.0, "evaluation_s": 4.0,
             **RECORDS}
    weight_epoch = 13 * 1.0 + 4.0
    # weight steps 260-649 are the search's; an alpha step before those divisible by k
    for k, alpha_steps in ((1, 390), (2, 195), (3, 130)):
        expected = (20 * (weight_epoch + 0.5) + 30 * (weight_epoch + 1.5)
                    + alpha_steps * 2.0) / 60
        assert search_profile.run_minutes(timed, 20, k) == pytest.approx(expected, abs=0.05)


def test_a_float_warm_up_takes_the_float_mode_step_and_is_evaluated_emulated():
    timed = {"steps_per_epoch": 13, "step_s": 3.0, "alpha_step_s": 2.0, "evaluation_s": 4.0,
             **RECORDS}
    warmup_epoch = 13 * 0.5 + 4.0 + 0.5  # float-mode weight steps, the emulated evaluation
    expected = (20 * warmup_epoch + 30 * (13 * 1.0 + 4.0 + 1.5) + 195 * 2.0) / 60
    assert search_profile.run_minutes(timed, 20, 2, 0.5) == pytest.approx(expected, abs=0.05)


@pytest.mark.parametrize("text", ["0", "2,x", "", "-1"])
def test_bad_arch_every_values_fail_in_one_line(text):
    with pytest.raises(ValueError, match="--arch_every"):
        search_profile.arch_every_values(text)
