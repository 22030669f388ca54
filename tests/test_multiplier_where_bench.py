"""bench/multiplier_where.py end to end on tiny settings: the searched genotype, its exact twin,
the greedy assignment and each candidate everywhere retrained, two seeds, one JSON summary;
a rerun finds everything on disk."""

import json

import pytest

import genotypes
from tests.bench_loader import bench_module

pytestmark = pytest.mark.timeout(300)

TINY = ("--dataset shapes --n_train 64 --n_test 32 --init_channels 4 --layers 3 "
        "--batch_size 16 --epochs 1 --device cpu")


def test_the_assignments_are_retrained_and_summarised(tmp_path, capsys):
    bench = bench_module("multiplier_where")
    searched = genotypes.on_multiplier(genotypes.DARTS_V2, "bam4_4")._replace(fixed="exact")
    genotypes.save(searched, tmp_path / "searched.json")
    argv = ["--genotype", str(tmp_path / "searched.json"), "--out", str(tmp_path / "out"),
            "--multipliers", "exact,drum4", "--mode", "lowrank", "--recalibrate", "1",
            "--tolerance", "0.5", "--train_args", TINY, "--retrain_assignments",
            "--spread_seeds", "3"]
    assert bench.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(summary["retrained"]) == ["searched", "twin", "greedy", "uniform-drum4"]
    for record in summary["retrained"].values():
        assert set(record["test_acc_by_seed"]) == {"2", "3"}
        assert record["test_acc_mean"] == pytest.approx(
            sum(record["test_acc_by_seed"].values()) / 2)
    uniform = genotypes.load(tmp_path / "out" / "uniform-drum4.json")
    assert uniform.fixed == "drum4"
    assert all(op.endswith("@drum4") for op, _ in uniform.normal if "conv" in op)
    greedy = genotypes.load(tmp_path / "out" / "greedy_genotype.json")
    assignment = genotypes.fixed_assignment(greedy.fixed)
    assert set(assignment.values()) <= {"exact", "drum4"}
    energies = {name: r["energy_uj"] for name, r in summary["retrained"].items()}
    assert energies["uniform-drum4"] < energies["twin"]
    assert energies["uniform-drum4"] <= energies["greedy"] <= energies["twin"]
    assert bench.main(argv) == 0  # everything on disk: the same summary again
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == summary
