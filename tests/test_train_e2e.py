"""End-to-end retraining on tiny settings: results.json fields, STL verdict and exit status,
resume, and `--genotype best`."""

import json

import pytest
import torch

import genotypes
import stl
import train
from reporting import retrain_report

TINY = ["--dataset", "shapes", "--n_train", "64", "--n_test", "32", "--init_channels", "4",
        "--layers", "3", "--batch_size", "16", "--device", "cpu"]
APPROX_V2 = genotypes.DARTS_V2._replace(
    normal=[(f"{op}@trunc6" if "conv" in op else op, i) for op, i in genotypes.DARTS_V2.normal])


def retrain(tmp_path, name, *extra):
    run = tmp_path / name
    argv = [*TINY, "--data", str(tmp_path / "data"), "--save", str(run), *extra]
    return train.main(argv), run


def test_tiny_retrain_writes_results_with_every_field(tmp_path):
    genotype_file = genotypes.save(APPROX_V2, tmp_path / "g.json", energy_budget_uj=1e9)
    status, run = retrain(tmp_path, "run", "--genotype", str(genotype_file), "--epochs", "2")
    assert status == 0
    results = json.loads((run / "results.json").read_text())
    for key in ("test_acc", "test_acc_surrogate", "test_acc_exact_arith", "params", "macs",
                "energy_uj", "energy_arith_uj", "energy_memory_uj", "latency_ms_per_image",
                "stl", "genotype", "epochs"):
        assert key in results, key
    assert results["stl"]["spec"].startswith("G(energy_uj <= 1e+09)")
    history = json.loads((run / "history.json").read_text())
    assert {"test_acc", "train_loss", "lr", "energy_uj"} <= set(history[-1])
    # the signals the STL preflight accepts are exactly those the retrain records
    assert set(stl.trace_from_history(history)) == set(retrain_report.RETRAIN_SIGNALS)


def test_final_eval_deployment_skips_the_comparison_passes(tmp_path):
    genotype_file = genotypes.save(APPROX_V2, tmp_path / "g.json")
    status, run = retrain(tmp_path, "run", "--genotype", str(genotype_file), "--epochs", "1",
                          "--final_eval", "deployment")
    assert status == 0
    results = json.loads((run / "results.json").read_text())
    assert results["test_acc_exact_arith"] is None and results["test_acc_float32"] is None
    assert 0 <= results["test_acc"] <= 1 and results["test_acc_deployed_int8"] is not None
    # the surrogate's score is the last epoch's test pass: same weights, same images
    history = json.loads((run / "history.json").read_text())
    assert results["test_acc_surrogate"] == history[-1]["test_acc"]
    status, run = retrain(tmp_path, "tables", "--genotype", str(genotype_file), "--epochs", "1",
                          "--final_eval", "tables")
    tables = json.loads((run / "results.json").read_text())
    assert status == 0 and tables["test_acc_deployed_int8"] is None
    assert tables["test_acc"] == results["test_acc"]  # same seed, same network


def test_stl_strict_exit_status(tmp_path):
    ok, _ = retrain(tmp_path, "ok", "--genotype", "DARTS_V2", "--epochs", "1",
                    "--stl", "G(epoch >= 1)", "--stl_strict")
    violated, run = retrain(tmp_path, "bad", "--genotype", "DARTS_V2", "--epochs", "1",
                            "--stl", "F(test_acc >= 1.5)", "--stl_strict")
    assert (ok, violated) == (0, 1)
    assert json.loads((run / "results.json").read_text())["stl"]["satisfied"] is False


def test_bad_stl_spec_fails_before_training(tmp_path, capsys):
    status, run = retrain(tmp_path, "x", "--genotype", "DARTS_V2", "--stl", "G(test_acc >= )")
    assert status == 2 and "expected a number" in capsys.readouterr().err
    assert not run.exists()


def test_resume_matches_uninterrupted_training(tmp_path):
    """Also across the float warm-up's end: the resumed run keeps its count of float epochs."""
    float_epoch = ("--float_warmup_epochs", "1")
    _, full = retrain(tmp_path, "full", "--genotype", "DARTS_V1", "--epochs", "2", *float_epoch)
    _, part = retrain(tmp_path, "part", "--genotype", "DARTS_V1", "--epochs", "1", *float_epoch)
    assert json.loads((part / "config.json").read_text())["float_warmup_epochs"] == 1
    assert train.main(["--resume", str(part), "--epochs", "2"]) == 0
    a = torch.load(full / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(part / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_genotype_best_uses_the_runs_dir(tmp_path, capsys):
    runs = tmp_path / "runs"
    genotypes.save(genotypes.PC_DARTS, runs / "search-a" / "genotype.json", val_acc=0.4)
    status, run = retrain(tmp_path, "best", "--runs_dir", str(runs), "--epochs", "1")
    assert status == 0
    assert json.loads((run / "results.json").read_text())["genotype_source"].endswith("search-a")


@pytest.mark.parametrize("spec", ["NO_SUCH_GENOTYPE"])
def test_unknown_genotype_is_a_clear_error(tmp_path, capsys, spec):
    status, _ = retrain(tmp_path, "x", "--genotype", spec)
    assert status == 2 and "not 'best', a published name" in capsys.readouterr().err
