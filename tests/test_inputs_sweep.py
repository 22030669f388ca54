"""Issue 25 for the programs that launch others (sweep.py, bench/search_quality.py) and the
benchmarks: every sub-run's flags are checked before the first one runs, in one line naming the
sub-run and the fix, exit status 2, and nothing written."""

import pytest

import sweep
from tests.bench_loader import bench_module

approx_conv, search_quality, search_step = (bench_module(name) for name in
                                            ("approx_conv", "search_quality", "search_step"))

SWEEP = ["--search_epochs", "1", "--search_layers", "2", "--search_channels", "4",
         "--n_train", "32", "--n_test", "32", "--random_baselines", "0", "--published", "",
         "--device", "cpu"]


def refused(capsys, main, out, argv, message):
    status = main(argv)
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert err.startswith("error: ") and err.count("\n") == 0, err
    assert message in err, err
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["--energy_weights", "0,a"], "--energy_weights '0,a': give comma-separated numbers"),
    (["--energy_budgets", "-1"], "sub-run search-b-1 (train_search.py): --energy_budget -1.0: "
                                 "an energy budget must be positive"),
    (["--multiplier_sets", "exact;bogus"], "(train_search.py): unknown multiplier 'bogus'"),
    (["--search_epochs", "0"], "sub-run search-ew0 (train_search.py): --epochs 0"),
    (["--search_args=--warmup_epochs 3"], "--warmup_epochs 3: 3 warm-up epoch(s) of --epochs 1"),
    (["--train_args=--drop_path_prob x"], "sub-run train-ew0 (train.py): argument "
                                          "--drop_path_prob: invalid float value: 'x'; fix the "
                                          "flag that sets it (--search_*/--retrain_*"),
    (["--retrain_layers", "0"], "sub-run train-ew0 (train.py): --layers 0"),
    (["--retrain_seeds", "0"], "--retrain_seeds 0: each genotype is retrained once or more"),
])
def test_sweep_checks_every_sub_run_first(tmp_path, capsys, argv, message):
    out = tmp_path / "sweep"
    refused(capsys, sweep.main, out, [*SWEEP, "--out", str(out), *argv], message)


@pytest.mark.parametrize("argv, message", [
    (["--energy_weights", "x"], "--energy_weights 'x': give comma-separated numbers"),
    (["--search_args=--warmup_epochs 100%"], "sub-run search-ew0-s1 (train_search.py): "
                                             "--warmup_epochs 100%: 20 warm-up epoch(s)"),
    (["--train_args=--layers 0"], "sub-run retrain (train.py): --layers 0"),
    (["--seeds", "0"], "--seeds 0: every genotype is retrained once or more"),
    (["--published", "X"], "--published X: not one of DARTS_V1"),
])
def test_search_quality_checks_its_sub_runs_first(tmp_path, capsys, argv, message):
    out = tmp_path / "quality"
    refused(capsys, search_quality.main, out, ["--out", str(out), *argv], message)


def test_search_step_input_size(tmp_path, capsys):
    refused(capsys, search_step.main, tmp_path / "none", ["--input_size", "6"],
            "--input_size 6: the 2 reduction cell(s) of --layers 8")


def test_approx_conv_names_need_their_tables(tmp_path):
    with pytest.raises(ValueError, match="--names needs --lut_dir"):
        approx_conv.check_tables(None, ["mul8u_1JFF"])
    with pytest.raises(ValueError, match="--names: no nope .bin in --lut_dir"):
        approx_conv.check_tables(tmp_path, ["nope"])
