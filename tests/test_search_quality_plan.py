"""bench/search_quality.py's plan (quality/plan.py): searches per weight and seed, black-box
searches, random genotypes from the searches' own space at equal compute, uniform baselines
on the published and the best random cell, black-box front picks, the recipe kept, and the
summary's per-genotype and per-front figures."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import genotypes
from defaults import SEARCH_DEFAULTS
from genotypes import split_op_name
from quality import plan, recipe, runs, sizing
from quality.summary import summarise
from runner.files import atomic_write_json
from tests.bench_loader import bench_module

search_quality = bench_module("search_quality")


def ops_of(genotype):
    return {split_op_name(op) for op, _ in genotype.normal + genotype.reduce}


def test_default_design_meets_the_issue_minima():
    args = search_quality.parse_args([])
    searches = plan.searches(args)
    darts = [s for s in searches if s["strategy"] == "darts"]
    assert len(darts) == 3 * len(args.energy_weights.split(","))  # >= 3 seeds per weight
    assert {s["strategy"] for s in searches} == {"darts", "nsga2", "tpe"}
    entries = plan.genotypes_plan(args)
    assert sum(e["group"] == "random" for e in entries) >= 8
    assert args.seeds >= 3
    uniform = [e["name"] for e in entries if e["group"] == "uniform"]
    for multiplier in plan.multiplier_set(args):
        assert f"DARTS_V2@{multiplier}" in uniform and f"best-random@{multiplier}" in uniform


def test_the_estimate_sums_the_measured_sub_runs():
    args = search_quality.parse_args([])
    counts = search_quality.counts(args, plan.genotypes_plan(args))
    # 20 epochs: 8 warm-up epochs, 12 with an alpha step before every K-th weight step
    # (the default K), then the held-out evaluations
    alpha_steps_s = (sizing.SEARCH_EPOCH_S - sizing.SEARCH_WARMUP_EPOCH_S) / SEARCH_DEFAULTS[
        "shapes"]["arch_every"]
    assert sizing.search_s(args) == pytest.approx(
        8 * sizing.SEARCH_WARMUP_EPOCH_S + 12 * (sizing.SEARCH_WARMUP_EPOCH_S + alpha_steps_s)
        + sizing.SEARCH_END_S)
    one_thread = (8 * sizing.search_s(args)
                  + counts["genotypes"] * args.seeds * sizing.retrain_s(args)) / 60
    estimate = sizing.estimate(args, counts)
    assert estimate["one_thread_min"] == pytest.approx(one_thread, abs=0.1)
    assert estimate["wall_min"] == pytest.approx(one_thread / 2, abs=0.1)


def test_a_directory_keeps_the_random_count_it_was_planned_with(tmp_path):
    args = search_quality.parse_args(["--out", str(tmp_path)])
    recipe.check_recipe(args, tmp_path)
    planned = args.random
    assert planned == plan.random_count(search_quality.parse_args([]))
    again = search_quality.parse_args(["--out", str(tmp_path)])
    (tmp_path / recipe.RECIPE_FILE).write_text(json.dumps(
        {**json.loads((tmp_path / recipe.RECIPE_FILE).read_text()), "random": planned - 1}))
    recipe.check_recipe(again, tmp_path)  # the sizing figures changed since: the record holds
    assert again.random == planned - 1


def test_a_directory_keeps_the_search_defaults_it_was_recorded_with(tmp_path):
    search = plan.searches(search_quality.parse_args([]))[0]
    new = search_quality.parse_args(["--out", str(tmp_path / "new")])
    recipe.check_recipe(new, tmp_path / "new")
    argv = runs.search_argv(new, tmp_path / "new", search)
    assert argv[argv.index("--arch_every") + 1] == str(SEARCH_DEFAULTS["shapes"]["arch_every"])
    old = tmp_path / "old"  # recorded before the search defaults were: every-step, lr 5e-3
    atomic_write_json(old / recipe.RECIPE_FILE, {
        key: value for key, value in json.loads(
            (tmp_path / "new" / recipe.RECIPE_FILE).read_text()).items()
        if key != "search_defaults"})
    resumed = search_quality.parse_args(["--out", str(old)])
    recipe.check_recipe(resumed, old)
    argv = runs.search_argv(resumed, old, search)
    assert argv[argv.index("--arch_every") + 1] == "1"
    assert argv[argv.index("--arch_learning_rate") + 1] == "0.005"


def test_random_count_is_equal_compute_but_at_least_eight():
    args = search_quality.parse_args(["--search_epochs", "200"])
    expected = int(6 * sizing.search_s(args) // (args.seeds * sizing.retrain_s(args)))
    assert plan.random_count(args) == expected > 8
    assert plan.random_count(search_quality.parse_args(["--search_epochs", "1"])) == 8
    assert plan.random_count(search_quality.parse_args(["--random", "3"])) == 3


def test_random_genotypes_draw_from_the_search_op_set():
    args = search_quality.parse_args(["--search_args", "--primitives skip_connect,sep_conv_3x3"])
    multipliers = set(plan.multiplier_set(args))
    for entry in plan.genotypes_plan(args):
        if entry["group"] == "random":
            assert entry["genotype"].fixed == "exact"  # as the searches' stem and preprocess
            for op, multiplier in ops_of(entry["genotype"]):
                assert op in {"skip_connect", "sep_conv_3x3"}
                assert multiplier is None or multiplier in multipliers


def test_on_every_conv_replaces_any_multiplier():
    cell = genotypes.PUBLISHED["DARTS_V2"]
    twice = plan.on_every_conv(plan.on_every_conv(cell, "drum4"), "exact")
    for op, multiplier in ops_of(twice):
        assert multiplier == ("exact" if op in genotypes.CONV_PRIMITIVES else None)
    assert twice.fixed == "exact"  # the stem and preprocess convs too


@pytest.mark.parametrize("size, wanted, picks", [(5, 3, [0, 2, 4]), (1, 2, [0, None]),
                                                 (2, 3, [0, 1, None]), (0, 2, [None, None]),
                                                 (4, 1, [0])])
def test_front_pick_spreads_over_the_front(size, wanted, picks):
    assert [plan.front_pick(size, wanted, k) for k in range(1, wanted + 1)] == picks


def test_retrains_run_seed_by_seed_with_best_random_last():
    args = search_quality.parse_args(["--random", "2", "--multipliers", "drum4",
                                      "--strategies", "", "--energy_weights", "0",
                                      "--search_seeds", "1", "--seeds", "2"])
    order = [(e["name"], seed) for e, seed in plan.retrain_jobs(args, plan.genotypes_plan(args))]
    assert order[:3] == [("search-ew0-s1", 1), ("random-s1", 1), ("DARTS_V2@exact", 1)]
    assert order[-2:] == [("best-random@exact", 2), ("best-random@drum4", 2)]


def write_result(out, name, seed, acc, energy=10.0, mult=2.0):
    run = runs.retrain_dir(out, name, seed)
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps(
        {"test_acc": acc, "energy_uj": energy, "energy_mult_uj": mult, "genotype": {}}))


def test_best_random_waits_for_every_seed_then_stays(tmp_path):
    args = search_quality.parse_args(["--random", "2", "--seeds", "2"])
    write_result(tmp_path, "random-s1", 1, 0.6)
    write_result(tmp_path, "random-s1", 2, 0.6)
    write_result(tmp_path, "random-s2", 1, 0.9)
    assert runs.best_random(args, tmp_path) is None
    write_result(tmp_path, "random-s2", 2, 0.1)
    assert runs.best_random(args, tmp_path) == "random-s1"  # mean 0.6 > 0.5
    entry = next(e for e in plan.genotypes_plan(args) if e["name"] == "best-random@drum4")
    for e in plan.genotypes_plan(args):
        if e["group"] == "random":
            runs.genotype_source(args, tmp_path, e)
    made = genotypes.load(runs.genotype_source(args, tmp_path, entry))
    assert {m for op, m in ops_of(made) if op in genotypes.CONV_PRIMITIVES} <= {"drum4"}
    assert made.fixed == "drum4"


def test_a_benchmark_directory_keeps_its_recipe(tmp_path):
    first = search_quality.parse_args(["--out", str(tmp_path), "--retrain_n_train", "6000"])
    recipe.check_recipe(first, tmp_path)
    recipe.check_recipe(search_quality.parse_args(
        ["--out", str(tmp_path), "--retrain_n_train", "6000", "--energy_weights", "2",
         "--groups", "searched"]), tmp_path)  # weights and groups may differ per process
    with pytest.raises(SystemExit, match="retrain_n_train 6000"):
        recipe.check_recipe(search_quality.parse_args(["--out", str(tmp_path)]), tmp_path)


def test_summary_gives_each_front_a_hypervolume_and_interval_on_both_axes(tmp_path):
    args = search_quality.parse_args(["--random", "1", "--seeds", "2", "--strategies", "",
                                      "--energy_weights", "0", "--search_seeds", "1"])
    entries = [e for e in plan.genotypes_plan(args) if e["name"] == "random-s1"]
    write_result(tmp_path, "random-s1", 1, 0.5)
    write_result(tmp_path, "random-s1", 2, 0.7)
    summary = summarise(args, tmp_path, entries)
    row = summary["genotypes"][0]
    assert row["test_acc_by_seed"] == {1: 0.5, 2: 0.7}
    assert row["test_acc_mean"] == pytest.approx(0.6)
    for axis, energy in (("total", 10.0), ("multiplier", 2.0)):
        result = summary["axes"][axis]
        assert result["reference"] == pytest.approx([1.1 * energy, 0.0])
        front = result["fronts"]["random"]
        width = 0.1 * energy
        assert front["hypervolume"] == pytest.approx(width * 0.6)
        assert front["hypervolume_ci90"] == pytest.approx([width * 0.5, width * 0.7])
        assert front["front"] == ["random-s1"]


def test_bad_settings_fail_in_one_line():
    with pytest.raises(ValueError, match="--strategies"):
        search_quality.check_args(search_quality.parse_args(["--strategies", "cmaes"]), Path("x"))
    assert search_quality.main(["--search_seeds", "0", "--estimate"]) == 2


def test_a_claimed_sub_run_is_left_to_its_live_owner_and_a_dead_ones_is_taken(tmp_path):
    ran = []

    def program(argv):
        ran.append(argv)
        run_dir = Path(argv[argv.index("--save") + 1])
        run_dir.mkdir(parents=True)
        (run_dir / "results.json").write_text("{}")
        return 0

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run_dir = tmp_path / "retrain" / "a-seed1"
        runs.claim_path(run_dir).parent.mkdir(parents=True)
        runs.claim_path(run_dir).write_text(str(live.pid))
        assert runs.run_program(program, ["--x"], run_dir, "results.json") is None
        assert ran == [] and runs.others_working(tmp_path)
    finally:
        live.kill()
        live.wait()
    assert not runs.others_working(tmp_path)  # its owner died: the claim is stale
    assert runs.run_program(program, ["--x"], run_dir, "results.json") >= 0
    assert len(ran) == 1 and not runs.claim_path(run_dir).exists()
    assert runs.run_program(program, ["--x"], run_dir, "results.json") == 0.0  # done: kept
    assert len(ran) == 1
