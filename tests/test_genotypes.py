"""Genotypes: published cells, JSON round trip without eval, validation errors, resolution."""

import json

import pytest

import genotypes
from genotypes import DARTS_V2, Genotype, GenotypeError
from search import runs


def test_published_genotypes_are_valid():
    for name, genotype in genotypes.PUBLISHED.items():
        assert genotypes.validate(genotype, name).normal == genotype.normal


def test_json_round_trip_keeps_multiplier_names(tmp_path):
    approx_cell = [(f"{op}@trunc6" if op.startswith("sep") else op, i) for op, i in DARTS_V2.normal]
    genotype = DARTS_V2._replace(normal=approx_cell)
    path = genotypes.save(genotype, tmp_path / "g.json", val_acc=0.5)
    assert genotypes.load(path) == genotypes.validate(genotype)
    assert json.loads(path.read_text())["val_acc"] == 0.5


@pytest.mark.parametrize("normal, message", [
    ([("conv_9x9", 0), ("skip_connect", 1)], "unknown op 'conv_9x9'"),
    ([("max_pool_3x3@trunc6", 0), ("skip_connect", 1)], "only conv ops"),
    ([("sep_conv_3x3", 2), ("skip_connect", 1)], "reads input 2"),
    ([("sep_conv_3x3", 0)], "two (op, input) pairs"),
])
def test_bad_genotypes_give_clear_errors(normal, message):
    genotype = Genotype(normal, [2], DARTS_V2.reduce[:2], [2])
    with pytest.raises(GenotypeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        genotypes.validate(genotype)


def test_fixed_layers_on_one_multiplier_or_one_per_group(tmp_path):
    """`fixed` is one name, or a multiplier per fixed-layer group: a {group: name} object in
    the file, a canonical `group=name,...` string in memory, one name when all agree."""
    per_group = {"classifier": "exact", "stem": "drum4", "reduce_skip": "bam4_4",
                 "preprocess": "bam4_4"}
    path = genotypes.save(DARTS_V2, tmp_path / "g.json")
    record = json.loads(path.read_text())
    record["genotype"]["fixed"] = per_group
    path.write_text(json.dumps(record))
    loaded = genotypes.load(path)
    assert loaded.fixed == "stem=drum4,preprocess=bam4_4,reduce_skip=bam4_4,classifier=exact"
    assert genotypes.fixed_assignment(loaded.fixed) == per_group
    assert genotypes.fixed_multiplier(loaded.fixed, genotypes.PREPROCESS) == "bam4_4"
    assert json.loads(genotypes.save(loaded, tmp_path / "h.json").read_text())[
        "genotype"]["fixed"] == per_group
    agreeing = dict.fromkeys(genotypes.FIXED_LAYER_GROUPS, "drum4")
    assert genotypes.from_dict({**genotypes.to_dict(DARTS_V2), "fixed": agreeing}).fixed == "drum4"
    assert genotypes.validate(DARTS_V2).fixed == "exact"


@pytest.mark.parametrize("fixed, message", [
    ("", "must name the multiplier"),
    ("sep_conv_3x3@drum4", "must name the multiplier"),
    ("stem=drum4,preprocess=exact", "must give each of stem, preprocess, reduce_skip, classifier"),
    ("stem=a,stem=b,reduce_skip=c,classifier=d", "once"),
    ({"stem": "float", "preprocess": "exact", "reduce_skip": "exact", "classifier": "exact"},
     "8-bit multipliers"),
    (7, "must name the multiplier"),
])
def test_bad_fixed_layers_give_clear_errors(fixed, message):
    with pytest.raises(GenotypeError, match=message):
        genotypes.from_dict({**genotypes.to_dict(DARTS_V2), "fixed": fixed}, source="g.json")


def test_bad_json_file_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(GenotypeError, match="broken.json"):
        genotypes.load(path)
    path.write_text(json.dumps({"normal": []}))
    with pytest.raises(GenotypeError, match="missing field"):
        genotypes.load(path)


def _fake_search(runs, name, val_acc, energy, budget=None, derived_acc=None):
    genotypes.save(DARTS_V2, runs / name / "genotype.json", val_acc=val_acc, energy_uj=energy,
                   energy_budget_uj=budget, derived_acc=derived_acc)


def test_best_prefers_budget_meeting_runs(tmp_path):
    _fake_search(tmp_path, "a", val_acc=0.9, energy=5.0, budget=4.0)   # misses its budget
    _fake_search(tmp_path, "b", val_acc=0.7, energy=3.0, budget=4.0)
    _fake_search(tmp_path, "c", val_acc=0.6, energy=9.0)               # no budget: eligible
    genotype, record = runs.resolve("best", tmp_path)
    assert record["source"].endswith("b") and "met their energy budget" in record["reason"]
    assert genotype == genotypes.validate(DARTS_V2)


def test_best_ranks_by_held_out_derived_accuracy_among_budget_meeting_runs(tmp_path):
    _fake_search(tmp_path, "over", val_acc=0.95, energy=5.0, budget=4.0, derived_acc=0.9)
    _fake_search(tmp_path, "met", val_acc=0.5, energy=3.0, budget=4.0, derived_acc=0.7)
    _fake_search(tmp_path, "free", val_acc=0.9, energy=9.0, derived_acc=0.6)  # no budget
    _fake_search(tmp_path, "old", val_acc=0.99, energy=1.0)  # no held-out figure
    _, record = runs.resolve("best", tmp_path)
    assert record["source"].endswith("met")  # not the higher val acc, not the over-budget run
    assert "3 of 4 completed searches" in record["reason"]
    assert all(name in record["reason"] for name in ("over", "free", "old"))
    assert "over budget" in record["reason"]


def test_resolve_name_file_dir_and_errors(tmp_path):
    assert runs.resolve("PC_DARTS")[0] == genotypes.PC_DARTS
    _fake_search(tmp_path, "run", val_acc=0.5, energy=1.0)
    assert runs.resolve(str(tmp_path / "run"))[1]["val_acc"] == 0.5
    assert runs.resolve(str(tmp_path / "run" / "genotype.json"))[0].normal == DARTS_V2.normal
    with pytest.raises(GenotypeError, match="not 'best', a published name"):
        runs.resolve("NO_SUCH")
    with pytest.raises(GenotypeError, match="no completed search"):
        runs.resolve("best", tmp_path / "empty")
