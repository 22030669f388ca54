"""Sweep planning and resumption, with the programs replaced by fakes (no training)."""

import json

import pytest

import genotypes
import sweep
from tradeoff import plan

TINY = ["--n_train", "64", "--n_test", "32", "--search_epochs", "1", "--retrain_epochs", "1",
        "--search_channels", "4", "--search_layers", "2", "--retrain_channels", "4",
        "--retrain_layers", "2", "--search_batch_size", "16", "--retrain_batch_size", "16",
        "--device", "cpu"]


def planned(tmp_path, *flags):
    args, _ = sweep.resolve_args([*TINY, "--out", str(tmp_path), *flags])
    return plan.plan_sweep(args, tmp_path)


def test_plan_names_are_deterministic(tmp_path):
    runs = planned(tmp_path, "--energy_weights", "0,0.5", "--random_baselines", "2",
                   "--multiplier_sets", "exact,trunc6", "--published", "DARTS_V2")
    assert [r.name for r in runs] == [
        "search-ew0", "train-ew0", "baseline-exact-ew0", "search-ew0.5", "train-ew0.5",
        "baseline-exact-ew0.5", "baseline-random-s1", "baseline-random-s2", "baseline-DARTS_V2",
        "baseline-DARTS_V2@exact", "baseline-DARTS_V2@trunc6"]
    assert [r.name for r in runs] == [r.name for r in planned(
        tmp_path, "--energy_weights", "0,0.5", "--random_baselines", "2",
        "--multiplier_sets", "exact,trunc6", "--published", "DARTS_V2")]
    search = runs[3].argv
    assert search[search.index("--energy_weight") + 1] == "0.5"
    assert search[search.index("--multipliers") + 1] == "exact,trunc6"
    train = runs[4].argv
    assert train[train.index("--genotype") + 1] == str(tmp_path / "search-ew0.5")
    assert train[train.index("--epochs") + 1] == "1"


def test_budgets_and_multiplier_sets_get_their_own_names(tmp_path):
    runs = planned(tmp_path, "--energy_budgets", "2.5", "--multiplier_sets", "trunc6;float",
                   "--random_baselines", "1", "--published", "", "--no-exact_baselines")
    assert [r.name for r in runs] == ["search-b2.5-trunc6", "train-b2.5-trunc6",
                                      "baseline-random-s1-trunc6", "search-b2.5-float",
                                      "train-b2.5-float", "baseline-random-s1-float"]
    argv = runs[0].argv
    assert argv[argv.index("--budget_control") + 1] == "pi"
    assert argv[argv.index("--multipliers") + 1] == "trunc6"


def test_baseline_genotypes(tmp_path):
    candidates = ["none", "skip_connect", "sep_conv_3x3", "sep_conv_3x3@trunc6"]
    sampled = plan.sample_genotype(candidates, seed=3)
    assert sampled == plan.sample_genotype(candidates, seed=3)
    genotypes.validate(sampled)
    assert {op for op, _ in sampled.normal + sampled.reduce} <= set(candidates) - {"none"}
    approximate = plan.with_multiplier(genotypes.DARTS_V2, "trunc6")
    assert all(op.endswith("@trunc6") == (op.split("@")[0] in genotypes.CONV_PRIMITIVES)
               for op, _ in approximate.normal + approximate.reduce)
    assert plan.stripped(approximate) == genotypes.DARTS_V2
    assert plan.with_multiplier(genotypes.DARTS_V2, None) == genotypes.DARTS_V2


class FakePrograms:
    """Stands in for train_search.main / train.main: writes config, checkpoint and result."""

    def __init__(self, fail_on=None):
        self.calls = []
        self.fail_on = fail_on

    def __call__(self, run, argv, use_subprocess):
        save = argv[argv.index("--save") + 1]
        self.calls.append((run.name, "--resume" in argv))
        if run.name == self.fail_on:
            return 2
        path = plan.Path(save)
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text("{}")
        (path / "checkpoint.pt").write_text("")
        if run.program == "search":
            cell = [("sep_conv_3x3@trunc6", 0), ("skip_connect", 1)] * 4
            genotypes.save(genotypes.Genotype(cell, [2, 3, 4, 5], cell, [2, 3, 4, 5]),
                           path / "genotype.json")
        else:
            (path / "results.json").write_text(json.dumps({"genotype": {}}))
        return 0


@pytest.fixture
def fake(monkeypatch):
    programs = FakePrograms()
    monkeypatch.setattr(sweep, "run_program", programs)
    return programs


def sweep_args(tmp_path, *flags):
    return sweep.resolve_args([*TINY, "--out", str(tmp_path), "--energy_weights", "0.5,2",
                               "--random_baselines", "1", "--published", "DARTS_V2",
                               "--multiplier_sets", "trunc6", *flags])


def test_partial_sweep_resumes_without_redoing_finished_runs(tmp_path, fake):
    args, argv = sweep_args(tmp_path, "--max_runs", "2")
    sweep.run_sweep(args, argv)
    assert fake.calls == [("search-ew0.5", False), ("train-ew0.5", False)]
    manifest = json.loads((tmp_path / sweep.MANIFEST_FILE).read_text())
    status = {entry["name"]: entry["status"] for entry in manifest["runs"]}
    assert status["train-ew0.5"] == "finished" and status["search-ew2"] == "planned"
    finished_mtime = (tmp_path / "train-ew0.5" / "results.json").stat().st_mtime_ns
    # an interrupted run: a checkpoint but no results -> resumed with --resume
    (tmp_path / "baseline-exact-ew0.5").mkdir()
    (tmp_path / "baseline-exact-ew0.5" / "checkpoint.pt").write_text("")
    fake.calls.clear()
    args, argv = sweep_args(tmp_path)
    sweep.run_sweep(args, argv)
    assert fake.calls == [("baseline-exact-ew0.5", True), ("search-ew2", False),
                          ("train-ew2", False), ("baseline-exact-ew2", False),
                          ("baseline-random-s1", False), ("baseline-DARTS_V2", False),
                          ("baseline-DARTS_V2@trunc6", False)]
    assert (tmp_path / "train-ew0.5" / "results.json").stat().st_mtime_ns == finished_mtime
    exact = genotypes.load(tmp_path / "genotypes" / "baseline-exact-ew0.5.json")
    assert all("@" not in op for op, _ in exact.normal + exact.reduce)
    fake.calls.clear()
    sweep.run_sweep(args, argv)
    assert fake.calls == []


def test_resume_flag_replays_the_saved_command_line(tmp_path, fake):
    args, argv = sweep_args(tmp_path, "--max_runs", "1")
    sweep.run_sweep(args, argv)
    replayed, _ = sweep.resolve_args(["--resume", str(tmp_path), "--max_runs", "5"])
    assert replayed.out == str(tmp_path) and replayed.energy_weights == "0.5,2"
    assert replayed.max_runs == 5 and replayed.retrain_epochs == 1


def test_failed_sub_run_stops_the_sweep_clearly(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sweep, "run_program", FakePrograms(fail_on="train-ew0.5"))
    assert sweep.main([*TINY, "--out", str(tmp_path), "--energy_weights", "0.5",
                       "--random_baselines", "0", "--published", ""]) == 1
    error = capsys.readouterr().err
    assert "train-ew0.5 failed with exit status 2" in error and "train.py" in error


def test_retrain_seeds_repeat_every_retrain_with_its_own_seed_and_directory(tmp_path):
    runs = planned(tmp_path, "--energy_weights", "1", "--random_baselines", "1",
                   "--published", "", "--no-exact_baselines", "--retrain_seeds", "2",
                   "--seed", "5")
    assert [r.name for r in runs] == ["search-ew1", "train-ew1-seed5", "train-ew1-seed6",
                                      "baseline-random-s1-seed5", "baseline-random-s1-seed6"]
    argv = runs[2].argv
    assert argv[argv.index("--seed") + 1] == "6"
    assert argv[argv.index("--save") + 1] == str(tmp_path / "train-ew1-seed6")


def test_seed_groups_give_mean_and_spread():
    from tradeoff.table import seed_groups

    rows = [{"name": "train-ew1-seed5", "kind": "searched", "test_acc": 0.8, "energy_uj": 3.0},
            {"name": "train-ew1-seed6", "kind": "searched", "test_acc": 0.9, "energy_uj": 3.0},
            {"name": "baseline-DARTS_V2", "kind": "published", "test_acc": 0.7}]
    (group,) = seed_groups(rows)
    assert group["name"] == "train-ew1" and group["seeds"] == 2
    assert group["test_acc_mean"] == pytest.approx(0.85)
    assert group["test_acc_std"] == pytest.approx(0.0707107, rel=1e-5)
    assert (group["test_acc_min"], group["test_acc_max"]) == (0.8, 0.9)
