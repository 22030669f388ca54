"""bench/search_quality.py's plan: the random genotypes come from the searches' own space and
the uniform baselines put each multiplier of the set on every conv of the published cell."""

import json
import sys
from pathlib import Path

import pytest

import genotypes
from genotypes import split_op_name

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import search_quality  # noqa: E402


def ops_of(genotype):
    return {split_op_name(op) for op, _ in genotype.normal + genotype.reduce}


def test_random_genotypes_draw_from_the_search_op_set():
    args = search_quality.parse_args([])
    allowed = set(search_quality.primitive_set(args))
    multipliers = set(search_quality.multiplier_set(args))
    random_entries = [e for e in search_quality.plan(args, None) if e["group"] == "random"]
    assert len(random_entries) == args.random
    for entry in random_entries:
        for op, multiplier in ops_of(entry["genotype"]):
            assert op in allowed and op != "none"
            assert multiplier is None or multiplier in multipliers


def test_search_args_primitives_narrow_the_random_space():
    args = search_quality.parse_args(["--search_args", "--primitives skip_connect,sep_conv_3x3"])
    for entry in search_quality.plan(args, None):
        if entry["group"] == "random":
            assert {op for op, _ in ops_of(entry["genotype"])} <= {"skip_connect", "sep_conv_3x3"}


def test_uniform_baselines_cover_every_multiplier_on_every_conv():
    args = search_quality.parse_args([])
    uniform = [e for e in search_quality.plan(args, None) if e["group"] == "uniform"]
    assert [e["name"] for e in uniform] == [f"DARTS_V2@{m}"
                                            for m in search_quality.multiplier_set(args)]
    for entry in uniform:
        multiplier = entry["name"].split("@")[1]
        for op, on in ops_of(entry["genotype"]):
            assert on == (multiplier if op in genotypes.CONV_PRIMITIVES else None)


def test_a_benchmark_directory_keeps_its_recipe(tmp_path):
    first = search_quality.parse_args(["--out", str(tmp_path), "--retrain_n_train", "6000"])
    search_quality.check_recipe(first, tmp_path)
    search_quality.check_recipe(search_quality.parse_args(
        ["--out", str(tmp_path), "--retrain_n_train", "6000", "--energy_weights", "2",
         "--groups", "searched"]), tmp_path)  # weights and groups may differ per process
    other = search_quality.parse_args(["--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="retrain_n_train 6000"):
        search_quality.check_recipe(other, tmp_path)


def test_summary_gives_each_front_a_hypervolume_per_seed(tmp_path):
    args = search_quality.parse_args(["--out", str(tmp_path), "--random", "1"])
    entries = [e for e in search_quality.plan(args, tmp_path) if e["name"] == "random-s1"]
    for seed, acc in ((1, 0.5), (2, 0.7)):
        run = tmp_path / "retrain" / f"random-s1-seed{seed}"
        run.mkdir(parents=True)
        (run / "results.json").write_text(json.dumps(
            {"test_acc": acc, "energy_uj": 10.0, "energy_arith_uj": 4.0, "genotype": {}}))
    summary = search_quality.summarise(args, tmp_path, entries)
    reference_energy = summary["reference"][0]
    front = summary["fronts"]["random"]
    assert front["hypervolume"] == pytest.approx((reference_energy - 10.0) * 0.6)
    assert front["hypervolume_by_seed"] == pytest.approx(
        [(reference_energy - 10.0) * 0.5, (reference_energy - 10.0) * 0.7])


def test_a_missing_seed_leaves_the_other_seeds_front_in_place(tmp_path):
    args = search_quality.parse_args(["--out", str(tmp_path), "--random", "1"])
    entries = [e for e in search_quality.plan(args, tmp_path) if e["name"] == "random-s1"]
    run = tmp_path / "retrain" / "random-s1-seed2"  # seed 1 not run (yet)
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps(
        {"test_acc": 0.7, "energy_uj": 10.0, "energy_arith_uj": 4.0, "genotype": {}}))
    summary = search_quality.summarise(args, tmp_path, entries)
    reference_energy = summary["reference"][0]
    first, second = summary["fronts"]["random"]["hypervolume_by_seed"]
    assert first is None and second == pytest.approx((reference_energy - 10.0) * 0.7)
