"""The trade-off table, front and figures built from hand-made run directories (no training)."""

import json
from types import SimpleNamespace

import pytest

import analyze
import genotypes
from tradeoff import pareto, plan, table
from tradeoff.records import find_runs

CANDIDATES = ["none", "skip_connect", "max_pool_3x3", "sep_conv_3x3", "sep_conv_3x3@trunc6"]


def write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def searched_genotype():
    cell = [("sep_conv_3x3@trunc6", 0), ("sep_conv_3x3", 1), ("skip_connect", 0),
            ("sep_conv_3x3@trunc6", 2), ("max_pool_3x3", 1), ("skip_connect", 3),
            ("sep_conv_3x3", 0), ("skip_connect", 4)]
    return genotypes.Genotype(cell, [2, 3, 4, 5], cell, [2, 3, 4, 5])


def make_search(root, name, energy_weight, epochs=2):
    run = root / name
    write_json(run / "config.json", {"energy_weight": energy_weight, "candidates": CANDIDATES})
    alphas = [[[1.0 / len(CANDIDATES)] * len(CANDIDATES)] * 14] * 1
    write_json(run / "history.json", [
        {"epoch": e + 1, "val_acc": 0.3 + 0.1 * e, "alphas": {"normal": alphas[0],
                                                              "reduce": alphas[0]}}
        for e in range(epochs)])
    genotypes.save(searched_genotype(), run / "genotype.json", energy_uj=1.5, val_acc=0.4,
                   energy_budget_uj=None, epochs=epochs, candidates=CANDIDATES,
                   settings={"energy_weight": energy_weight, "multipliers": "trunc6"})
    return run


def make_train(root, name, source, test_acc, energy_uj, genotype=None):
    run = root / name
    if genotype is None:
        genotype = genotypes.load(source) if source.endswith(".json") else searched_genotype()
    write_json(run / "config.json", {"genotype": genotypes.to_dict(genotype)})
    write_json(run / "history.json", [{"epoch": 1, "test_acc": test_acc / 2},
                                      {"epoch": 2, "test_acc": test_acc}])
    write_json(run / "results.json", {
        "genotype": genotypes.to_dict(genotype), "genotype_source": source,
        "test_acc": test_acc, "test_acc_surrogate": test_acc, "test_acc_exact_arith": test_acc,
        "epochs": 2, "params": 1000, "macs": 2_000_000, "energy_uj": energy_uj,
        "energy_arith_uj": energy_uj / 2, "energy_memory_uj": energy_uj / 2,
        "latency_ms_per_image": 0.5, "train_s": 1.0,
        "stl": {"satisfied": test_acc > 0.5, "robustness": test_acc - 0.5, "clauses": []},
        "cost": {}})
    return run


@pytest.fixture
def sweep_dir(tmp_path):
    root = tmp_path / "sweep"
    search = make_search(root, "search-ew0.5", 0.5)
    make_search(root, "search-ew2", 2.0)  # never retrained
    make_train(root, "train-ew0.5", str(search), 0.7, 2.0)
    args = SimpleNamespace(primitives="none,skip_connect,max_pool_3x3,sep_conv_3x3",
                           lut_dir=None, **{k: None for k in ("data", "n_train", "n_test")})
    for run in (plan.file_run(args_for_plan(args), root, "baseline-exact-ew0.5", "exact",
                              needs="search-ew0.5", make={"strip": "search-ew0.5"}),
                plan.file_run(args_for_plan(args), root, "baseline-random-s1", "random",
                              make={"random": CANDIDATES, "seed": 1, "label": "random s1"}),
                plan.file_run(args_for_plan(args), root, "baseline-DARTS_V2@trunc6",
                              "published",
                              make={"published": "DARTS_V2", "multiplier": "trunc6"})):
        assert plan.make_genotype(run, root)
    make_train(root, "baseline-exact-ew0.5", run_genotype(root, "baseline-exact-ew0.5"), 0.8, 3.0)
    make_train(root, "baseline-random-s1", run_genotype(root, "baseline-random-s1"), 0.6, 2.5)
    make_train(root, "baseline-DARTS_V2@trunc6", run_genotype(root, "baseline-DARTS_V2@trunc6"),
               0.9, 5.0)
    make_train(root, "baseline-PC_DARTS", "PC_DARTS", 0.8, 6.0, genotype=genotypes.PC_DARTS)
    return root


def args_for_plan(base):
    return SimpleNamespace(dataset="shapes", seed=2, device="cpu", retrain_epochs=1,
                           retrain_channels=4, retrain_layers=2, retrain_batch_size=16,
                           train_args="", **vars(base))


def run_genotype(root, name):
    return str(root / plan.GENOTYPE_DIR / f"{name}.json")


def test_rows_are_labelled_by_their_genotype_source(sweep_dir):
    rows = {row["name"]: row for row in table.build_rows(find_runs(sweep_dir))}
    assert rows["train-ew0.5"]["kind"] == "searched"
    assert rows["train-ew0.5"]["energy_weight"] == 0.5
    assert rows["train-ew0.5"]["search_dir"] == str((sweep_dir / "search-ew0.5").resolve())
    assert rows["baseline-exact-ew0.5"]["kind"] == "exact"
    assert rows["baseline-exact-ew0.5"]["share_float32"] == 1.0
    assert rows["baseline-exact-ew0.5"]["energy_weight"] == 0.5
    assert rows["baseline-random-s1"]["kind"] == "random"
    assert rows["baseline-DARTS_V2@trunc6"]["share_trunc6"] == 1.0
    assert rows["baseline-PC_DARTS"]["kind"] == "published"
    assert rows["search-ew2"]["kind"] == "search-only"
    assert "search-ew0.5" not in rows  # represented by its retrain
    # the searched cell: 4 of 8 normal ops are conv ops (2 on trunc6) in each cell
    assert rows["train-ew0.5"]["conv_ops"] == 8
    assert rows["train-ew0.5"]["share_trunc6"] == pytest.approx(0.5)


def test_front_matches_brute_force_and_files_are_written(sweep_dir, tmp_path):
    out = tmp_path / "analysis"
    assert analyze.main([str(sweep_dir), "--out", str(out)]) == 0
    written = json.loads((out / table.TABLE_JSON).read_text())
    scored = [r for r in written["rows"] if r["test_acc"] is not None]
    points = [(r["energy_uj"], r["test_acc"]) for r in scored]
    brute = [not any(pareto.dominates(q, p) for q in points) for p in points]
    assert [r["pareto"] for r in scored] == brute
    assert {r["name"] for r in scored if r["pareto"]} == {
        "train-ew0.5", "baseline-exact-ew0.5", "baseline-DARTS_V2@trunc6"}
    # reference 1.1 x 6.0 uJ: [2, 3) x .7 + [3, 5) x .8 + [5, 6.6) x .9
    assert written["pareto"]["hypervolume"] == pytest.approx(0.7 + 1.6 + 1.6 * 0.9)
    header = (out / table.TABLE_CSV).read_text().splitlines()[0].split(",")
    assert set(table.ROW_FIELDS) <= set(header)
    for stem in ("tradeoff", "curves", "multipliers", "alphas-search-ew0.5", "alphas-search-ew2"):
        assert (out / "plots" / f"{stem}.png").stat().st_size > 0
    assert list((out / "summary").glob("events.out.tfevents.*"))


def test_missing_directory_is_a_clear_error(tmp_path, capsys):
    assert analyze.main([str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err
