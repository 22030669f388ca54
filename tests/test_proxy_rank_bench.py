"""bench/proxy_rank.py on a hand-made search_quality directory: every genotype gets a proxy
score per recipe, tau-b is computed against the retrained means, a rerun finds the scores on
disk, and bad settings fail in one line."""

import json

import pytest

import genotypes
from quality.plan import on_every_conv
from runner.files import atomic_write_json
from tests.bench_loader import bench_module

proxy_rank = bench_module("proxy_rank")

TINY = "--n_train 32 --n_test 16 --image_size 8 --init_channels 4 --layers 2 --batch_size 16"


def quality_dir(tmp_path):
    quality = tmp_path / "sq"
    atomic_write_json(quality / "recipe.json", {"search_args": TINY,
                                               "multipliers": "exact,drum4"})
    cells = {"DARTS_V2@exact": on_every_conv(genotypes.PUBLISHED["DARTS_V2"], "exact"),
             "DARTS_V2@drum4": on_every_conv(genotypes.PUBLISHED["DARTS_V2"], "drum4"),
             "DARTS_V1@drum4": on_every_conv(genotypes.PUBLISHED["DARTS_V1"], "drum4")}
    rows = [{"name": name, "group": "uniform", "test_acc_mean": 0.5 + 0.1 * k,
             "genotype": genotypes.to_dict(g)} for k, (name, g) in enumerate(cells.items())]
    atomic_write_json(quality / "quality.json", {"genotypes": rows})
    return quality


@pytest.mark.timeout(120)
def test_scores_every_genotype_per_recipe_and_resumes(tmp_path, capsys):
    quality = quality_dir(tmp_path)
    argv = ["--quality", str(quality), "--proxy_epochs", "1,2"]
    assert proxy_rank.main(argv) == 0
    report = json.loads((quality / "proxy_rank.json").read_text())
    assert report["complete"] and set(report["scores"]) == {"derived_acc", "proxy_1ep",
                                                            "proxy_2ep"}
    assert report["scores"]["proxy_1ep"]["genotypes"] == 3
    assert report["scores"]["derived_acc"]["genotypes"] == 0  # no DARTS search here
    for row in report["genotypes"]:
        assert 0 <= row["proxy_1ep"] <= 1 and row["proxy_2ep_s"] > 0
    kept = quality / "proxy" / "1ep" / "DARTS_V2@drum4.json"
    mtime = kept.stat().st_mtime
    capsys.readouterr()
    assert proxy_rank.main(argv) == 0
    assert kept.stat().st_mtime == mtime and not list(quality.rglob("*.claim"))
    assert json.loads(capsys.readouterr().out)["scores"] == report["scores"]
    # against the recipe check's long retrains: only the genotypes it holds, its accuracies
    atomic_write_json(quality / "recipe_check.json",
                      {"genotypes": ["DARTS_V1@drum4", "DARTS_V2@exact"],
                       "long_test_acc": [0.9, 0.8]})
    assert proxy_rank.main([*argv, "--reference", "recipe_check"]) == 0
    long = json.loads((quality / "proxy_rank_long.json").read_text())
    assert long["reference"] == "recipe_check" and long["scores"]["proxy_1ep"]["genotypes"] == 2
    assert {r["name"]: r["test_acc_mean"] for r in long["genotypes"]} == {
        "DARTS_V2@exact": 0.8, "DARTS_V1@drum4": 0.9}
    assert kept.stat().st_mtime == mtime  # the kept scores serve both references


@pytest.mark.timeout(60)
@pytest.mark.parametrize("flags, needle", [(["--proxy_epochs", "1.5"], "--proxy_epochs"),
                                           (["--proxy_epochs", "0"], "--proxy_epochs"),
                                           (["--quality", "nowhere"], "quality.json"),
                                           (["--reference", "recipe_check"],
                                            "recipe_check.json")])
def test_bad_settings_fail_in_one_line(tmp_path, capsys, flags, needle):
    quality = quality_dir(tmp_path)
    assert proxy_rank.main(["--quality", str(quality), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err


@pytest.mark.timeout(120)
def test_another_batch_size_is_kept_and_reported_apart(tmp_path):
    quality = quality_dir(tmp_path)
    assert proxy_rank.main(["--quality", str(quality), "--proxy_epochs", "1",
                            "--proxy_batch_size", "8"]) == 0
    report = json.loads((quality / "proxy_rank.json").read_text())
    assert set(report["scores"]) == {"derived_acc", "proxy_1ep-b8"}
    assert report["recipes"]["proxy_1ep-b8"]["batch_size"] == 8
    assert (quality / "proxy" / "1ep-b8" / "DARTS_V2@exact.json").is_file()
    assert not (quality / "proxy" / "1ep").exists()  # the search's batch keeps its own scores
