"""End to end: a tiny sweep through the real programs (two energy weights, one random
baseline), its table, front and plots, and resuming it without redoing finished runs."""

import csv
import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import sweep
from tradeoff import pareto, table

TINY = ["--n_train", "64", "--n_test", "32", "--search_epochs", "1", "--retrain_epochs", "1",
        "--search_channels", "4", "--search_layers", "2", "--retrain_channels", "4",
        "--retrain_layers", "2", "--search_batch_size", "16", "--retrain_batch_size", "16",
        "--device", "cpu", "--energy_weights", "0,2", "--random_baselines", "1",
        "--multiplier_sets", "trunc6", "--published", "", "--no-exact_baselines",
        "--primitives", "none,skip_connect,max_pool_3x3,sep_conv_3x3"]
RUNS = ("search-ew0", "train-ew0", "search-ew2", "train-ew2", "baseline-random-s1")


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    assert sweep.main([*TINY, "--out", str(out)]) == 0
    return out


def test_tiny_sweep_writes_every_run_and_the_table(tiny_sweep):
    manifest = json.loads((tiny_sweep / sweep.MANIFEST_FILE).read_text())
    assert [entry["name"] for entry in manifest["runs"]] == list(RUNS)
    assert all(entry["status"] == "finished" for entry in manifest["runs"])
    written = json.loads((tiny_sweep / table.TABLE_JSON).read_text())
    rows = {row["name"]: row for row in written["rows"]}
    assert set(rows) == {"train-ew0", "train-ew2", "baseline-random-s1"}
    for row in rows.values():
        missing = [key for key in table.ROW_FIELDS
                   if key not in row or (row[key] is None and key not in OPTIONAL)]
        assert not missing, (row["name"], missing)
    assert rows["train-ew2"]["energy_weight"] == 2.0
    with (tiny_sweep / table.TABLE_CSV).open() as handle:
        assert set(table.ROW_FIELDS) <= set(csv.DictReader(handle).fieldnames)


OPTIONAL = {"energy_weight", "energy_budget_uj", "multipliers", "search_val_acc",
            "search_energy_uj", "search_dir"}  # empty for baselines without a search


def test_front_agrees_with_brute_force(tiny_sweep):
    written = json.loads((tiny_sweep / table.TABLE_JSON).read_text())
    points = [(row["energy_uj"], row["test_acc"]) for row in written["rows"]]
    brute = [not any(pareto.dominates(q, p) for q in points) for p in points]
    assert [row["pareto"] for row in written["rows"]] == brute
    assert written["pareto"]["reference_energy_uj"] == pytest.approx(
        1.1 * max(energy for energy, _ in points))
    assert written["pareto"]["hypervolume"] > 0


def test_plots_and_tensorboard_are_written(tiny_sweep):
    for stem in ("tradeoff", "curves", "multipliers", "alphas-search-ew0", "alphas-search-ew2"):
        assert (tiny_sweep / "plots" / f"{stem}.png").stat().st_size > 0
    assert list((tiny_sweep / "summary").glob("events.out.tfevents.*"))
    hparams = EventAccumulator(str(tiny_sweep / "summary" / "hparams" / "train-ew2")).Reload()
    assert "final/test_acc" in hparams.Tags()["scalars"]  # the HParams dashboard's metric


def markers(sweep_dir):
    return {name: sweep_dir / name / ("genotype.json" if name.startswith("search")
                                      else "results.json") for name in RUNS}


def rerun_after_losing(sweep_dir, lost: str) -> None:
    """Delete one run's result (as if stopped after its last checkpoint), rerun the sweep and
    check that only that run was finished again, from its checkpoint."""
    files = markers(sweep_dir)
    mtimes = {name: path.stat().st_mtime_ns for name, path in files.items()}
    files[lost].unlink()
    assert sweep.main(["--resume", str(sweep_dir)]) == 0
    assert files[lost].is_file()
    for name in RUNS:
        if name != lost:
            assert files[name].stat().st_mtime_ns == mtimes[name], name
    history = json.loads((sweep_dir / lost / "history.json").read_text())
    assert len(history) == 1  # resumed from the final checkpoint, not run again


def test_rerun_resumes_only_the_unfinished_search(tiny_sweep):
    rerun_after_losing(tiny_sweep, "search-ew2")


def test_rerun_resumes_only_the_unfinished_retrain(tiny_sweep):
    rerun_after_losing(tiny_sweep, "train-ew2")
