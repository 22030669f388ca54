"""A tiny instance of bench/search_quality.py end to end: one DARTS search, one NSGA-II search
at its wall time, one random genotype, the uniform baselines, two retrain seeds each; the
JSON holds every front on both axes with intervals, the PNGs are written, and a rerun resumes
without retraining anything. Then the recipe check on the same directory."""

import json

import pytest

from tests.bench_loader import bench_module

search_quality = bench_module("search_quality")

TINY = "--n_test 16 --image_size 8 --init_channels 4 --layers 2 --batch_size 16 --device cpu"


def tiny_argv(out):
    return ["--out", str(out), "--energy_weights", "0", "--search_seeds", "1",
            "--search_epochs", "1", "--strategies", "nsga2", "--multipliers", "exact,drum4",
            "--random", "2", "--seeds", "2", "--blackbox_front", "1",
            "--blackbox_args", "--proxy_epochs 1 --population_size 2",
            "--retrain_epochs", "1", "--retrain_n_train", "32", "--bootstrap_draws", "100",
            "--search_args", f"--n_train 32 {TINY} --primitives none,skip_connect,sep_conv_3x3",
            "--train_args", TINY, "--recipe_check_genotypes", "2",
            "--recipe_check_epochs", "2", "--recipe_check_n_train", "48"]


@pytest.mark.timeout(240)
def test_tiny_benchmark_writes_json_and_pngs_and_resumes(tmp_path, capsys):
    out = tmp_path / "sq"
    assert search_quality.main(tiny_argv(out)) == 0
    summary = json.loads((out / "quality.json").read_text())
    assert summary["complete"] and summary["pending"] == []
    names = {row["name"]: row for row in summary["genotypes"]}
    assert set(names) == {"search-ew0-s1", "random-s1", "random-s2", "DARTS_V2@exact",
                          "DARTS_V2@drum4", "best-random@exact", "best-random@drum4",
                          "nsga2-s1-f1"}
    assert all(len(row["test_acc_by_seed"]) == 2 for row in names.values())
    for axis in ("total", "multiplier"):
        fronts = summary["axes"][axis]["fronts"]
        assert set(fronts) == {"searched", "random", "uniform", "nsga2"}
        for front in fronts.values():
            low, high = front["hypervolume_ci90"]
            assert low <= high
    assert (out / "quality_fronts.png").stat().st_size > 0
    assert (out / "quality_hypervolume.png").stat().st_size > 0
    assert json.loads((out / "wall" / "nsga2-s1.json").read_text())["wall_s"] > 0
    mtime = (out / "retrain" / "random-s1-seed1" / "results.json").stat().st_mtime
    capsys.readouterr()
    assert search_quality.main(tiny_argv(out)) == 0  # resumes: nothing runs again
    assert (out / "retrain" / "random-s1-seed1" / "results.json").stat().st_mtime == mtime
    assert search_quality.main([*tiny_argv(out), "--recipe_check"]) == 0
    check = json.loads((out / "recipe_check.json").read_text())
    assert check["genotypes"] == ["random-s1", "random-s2"] and len(check["long_test_acc"]) == 2
    assert len(check["long_epoch_tau"]) == 2  # one per epoch of the long recipe
    # a genotype of another group named: it joins the random ones
    assert search_quality.main([*tiny_argv(out), "--recipe_check",
                                "--recipe_check_also", "DARTS_V2@exact"]) == 0
    check = json.loads((out / "recipe_check.json").read_text())
    assert check["genotypes"] == ["random-s1", "random-s2", "DARTS_V2@exact"]
    assert check["long_epoch_tau"][-1] == 1.0 or len(set(check["long_test_acc"])) < 3
    capsys.readouterr()
    assert search_quality.main([*tiny_argv(out), "--recipe_check",
                                "--recipe_check_also", "DARTS_V3@exact"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--recipe_check_also" in err and "DARTS_V3@exact" in err and "\n" not in err
    # the finished long retrains reused as the long recipe: only the short one runs again
    reused = search_quality.main([*tiny_argv(out), "--recipe_check", "--recipe_check_long",
                                  str(out / "recipe-check")])
    assert reused == 0
    check = json.loads((out / "recipe_check.json").read_text())
    assert check["genotypes"] == ["recipe-check-DARTS_V2@exact-seed1",
                                  "recipe-check-random-s1-seed1", "recipe-check-random-s2-seed1"]
    assert check["complete"] and check["long_recipe"] == {"epochs": [2], "n_train": [48],
                                                          "reused": True}
    assert (out / "recipe-check" / "short" / "recipe-check-random-s1-seed1" /
            "results.json").is_file()
    capsys.readouterr()
    bad = search_quality.main([*tiny_argv(out), "--recipe_check", "--recipe_check_long",
                               str(out / "nowhere")])
    err = capsys.readouterr().err.strip()
    assert bad == 2 and "--recipe_check_long" in err and "\n" not in err


@pytest.mark.timeout(60)
def test_recipe_check_of_a_genotype_not_made_yet_fails_before_any_retrain(tmp_path, capsys):
    out = tmp_path / "sq"
    status = search_quality.main([*tiny_argv(out), "--recipe_check",
                                  "--recipe_check_also", "search-ew0-s1"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and "search-ew0-s1 has no genotype yet" in err and "\n" not in err
    assert not (out / "retrain").exists() and not (out / "recipe-check").exists()
