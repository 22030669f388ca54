"""`python -m sensitivity` (sensitivity/): the layer groups of a tiny retrained DARTS_V2 network,
moving groups to other multipliers and back, the energy saved against energy_estimator's own
figures, the greedy assignment's tolerance, the JSON and table, and the one-line errors."""

import json

import pytest
import torch

import energy_estimator
import genotypes
from approx import Emulation, load_multiplier
from approx.module import emulated_convs
from export.source import load_run
from sensitivity.__main__ import GREEDY_GENOTYPE_FILE
from sensitivity.__main__ import main as sensitivity_main
from sensitivity.compare import assignment_of, genotype_of
from sensitivity.costs import GroupEnergy
from sensitivity.greedy import greedy_assignment
from sensitivity.groups import layer_groups
from sensitivity.measure import Evaluator, evaluation_loader

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A train.py run of DARTS_V2 with every conv on the exact 8-bit multiplier (1 epoch)."""
    import train

    root = tmp_path_factory.mktemp("sensitivity")
    run = root / "run"
    assert train.main(["--dataset", "shapes", "--n_train", "64", "--n_test", "32",
                       "--init_channels", "4", "--layers", "3", "--batch_size", "16",
                       "--device", "cpu", "--data", str(root / "data"), "--save", str(run),
                       "--genotype", "DARTS_V2@exact", "--epochs", "1"]) == 0
    return run


@pytest.fixture(scope="module")
def loaded(tiny_run):
    model, dataset, config = load_run(tiny_run)
    groups = layer_groups(model, genotypes.from_dict(config["genotype"]))
    return model, dataset, groups


@pytest.fixture(scope="module")
def evaluator(loaded):
    model, dataset, groups = loaded
    return Evaluator(model, groups, evaluation_loader(dataset, n_test=16))


def test_groups_cover_every_emulated_conv_exactly_once(loaded):
    model, _, groups = loaded
    grouped = [id(conv) for group in groups for conv in group.convs]
    assert len(grouped) == len(set(grouped))
    assert set(grouped) == {id(conv) for conv in emulated_convs(model)}
    names = [group.name for group in groups]
    assert names[0] == "stem" and names[-1] == "classifier"
    assert {"preprocess", "reduce_skip", "normal c_{k-2}->0 sep_conv_3x3",
            "normal 0->3 dil_conv_3x3"} <= set(names)
    assert 10 <= len(groups) <= 25 and all(group.multiplier == "exact" for group in groups)


def test_moving_a_group_to_its_own_multiplier_changes_no_logit(evaluator):
    exact = load_multiplier("exact")
    before = evaluator.logits({})
    assert torch.equal(evaluator.logits({g.name: exact for g in evaluator.groups}), before)


def test_a_moved_group_is_restored_afterwards(evaluator):
    group = next(g for g in evaluator.groups if g.name == "preprocess")
    own = [conv.multiplier for conv in group.convs]
    before = evaluator.logits({})
    moved = evaluator.logits({group.name: load_multiplier("drum4")})
    assert not torch.equal(moved, before)
    assert [conv.multiplier for conv in group.convs] == own
    assert torch.equal(evaluator.logits({}), before)


def network_energy_uj(model, input_size, moved: dict) -> float:
    """energy_estimator.profile of `model` with the convs of `moved` (group -> multiplier)
    rebound by hand."""
    own = {conv: conv.multiplier for group in moved for conv in group.convs}
    try:
        for group, multiplier in moved.items():
            for conv in group.convs:
                conv.multiplier = multiplier
        return energy_estimator.profile(model, input_size).energy_uj
    finally:
        for conv, multiplier in own.items():
            conv.multiplier = multiplier


def test_energy_saved_is_the_difference_of_the_profiled_networks(loaded):
    model, dataset, groups = loaded
    drum4, kulkarni = load_multiplier("drum4"), load_multiplier("kulkarni")
    input_size = (3, *dataset.test.images.shape[-2:])
    energy = GroupEnergy(model, groups, [drum4, kulkarni], input_size)
    trained_uj = network_energy_uj(model, input_size, {})
    by_name = {g.name: g for g in groups}
    for name in ("stem", "preprocess", "classifier"):
        independent = trained_uj - network_energy_uj(model, input_size, {by_name[name]: drum4})
        assert independent > 0
        assert energy.saved_uj(name, drum4) == pytest.approx(independent, rel=1e-9)
    mixed = {by_name["stem"]: drum4, by_name["reduce_skip"]: kulkarni}
    assert energy.energy_uj({g.name: m for g, m in mixed.items()}) == pytest.approx(
        network_energy_uj(model, input_size, mixed), rel=1e-9)
    assert energy.uniform_uj["drum4"] == pytest.approx(
        network_energy_uj(model, input_size, {g: drum4 for g in groups}), rel=1e-9)


class AdditiveAccuracy:
    """A stand-in Evaluator: each moved group costs its own accuracy drop."""

    def __init__(self, groups, drops: dict):
        self.groups, self.drops, self.count = groups, drops, 0

    def accuracy(self, choice) -> float:
        self.count += 1
        return 0.9 - sum(self.drops[g, m.name] for g, m in choice.items())


def test_the_greedy_assignment_stays_within_the_tolerance(loaded):
    model, dataset, groups = loaded
    drum6, drum4 = load_multiplier("drum6"), load_multiplier("drum4")
    energy = GroupEnergy(model, groups, [drum6, drum4], (3, *dataset.test.images.shape[-2:]))
    drops = {}
    for i, group in enumerate(groups):
        drops[group.name, "drum6"], drops[group.name, "drum4"] = 0.002 * (i % 3), 0.01 * (i % 4)
    table = [{"group": g, "multiplier": m, "accuracy_drop": d} for (g, m), d in drops.items()]
    stand_in = AdditiveAccuracy(groups, drops)
    result = greedy_assignment(stand_in, energy, [drum6, drum4], table, 0.9, tolerance=0.02)
    assert result["accuracy_drop"] <= 0.02 + 1e-12
    assert any(not step["kept"] for step in result["steps"])  # the tolerance bit
    assert result["energy_uj"] < energy.trained_uj
    assert result["energy_uj"] == pytest.approx(energy.energy_uj(
        {g: {"drum6": drum6, "drum4": drum4}[m] for g, m in result["assignment"].items()
         if g in result["moved"]}), rel=1e-9)
    assert set(result["assignment"]) == {g.name for g in groups}


def test_the_command_writes_the_document_and_the_table(tiny_run, tmp_path, capsys):
    out = tmp_path / "s.json"
    assert sensitivity_main([str(tiny_run), "--multipliers", "drum6,drum4", "--n_test", "16",
                             "--tolerance", "0.05", "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["test_images"] == 16 and document["multipliers"] == ["drum6", "drum4"]
    assert len(document["sensitivity"]) == 2 * len(document["groups"])
    assert document["greedy"]["accuracy_drop"] <= 0.05 + 1e-12
    assert [u["multiplier"] for u in document["uniform"]] == ["drum6", "drum4"]
    text = capsys.readouterr().out
    assert "greedy (tolerance 0.05)" in text and "uniform drum4" in text and str(out) in text


@pytest.mark.parametrize("case, needle", [
    ("missing", "no such directory"),
    ("not_a_run", "not a retrain run directory"),
    ("search_run", "not a train.py run's config"),
    ("unknown_multiplier", "unknown multiplier 'nosuch'"),
    ("negative_tolerance", "--tolerance -0.1"),
])
def test_bad_inputs_exit_2_with_one_line(case, needle, tiny_run, tmp_path, capsys):
    run, extra = str(tiny_run), []
    if case == "missing":
        run = str(tmp_path / "nowhere")
    elif case == "not_a_run":
        run = str(tmp_path)
    elif case == "search_run":
        (tmp_path / "config.json").write_text(json.dumps({"epochs": 1}))
        (tmp_path / "checkpoint.pt").write_bytes(b"")
        run = str(tmp_path)
    elif case == "unknown_multiplier":
        extra = ["--multipliers", "drum4,nosuch"]
    else:
        extra = ["--tolerance", "-0.1"]
    assert sensitivity_main([run, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err


def test_a_compared_genotype_is_measured_on_the_run_s_weights(tiny_run, tmp_path):
    """DARTS_V2@drum4 given with --compare is the uniform drum4 assignment (same accuracy and
    energy); a genotype with one op moved to bam4_4 moves that group alone."""
    one_moved = genotypes.on_multiplier(genotypes.DARTS_V2, "exact")
    normal = list(one_moved.normal)
    normal[0] = ("sep_conv_3x3@bam4_4", normal[0][1])
    genotypes.save(one_moved._replace(normal=normal), tmp_path / "one.json")
    out = tmp_path / "s.json"
    assert sensitivity_main([str(tiny_run), "--multipliers", "drum4", "--n_test", "16",
                             "--compare", "DARTS_V2@drum4", "--compare",
                             str(tmp_path / "one.json"), "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    everywhere, one = document["compared"]
    (uniform_drum4,) = document["uniform"]
    assert everywhere["genotype"] == "DARTS_V2@drum4"
    assert set(everywhere["assignment"].values()) == {"drum4"}
    assert everywhere["accuracy"] == uniform_drum4["accuracy"]
    assert everywhere["energy_uj"] == pytest.approx(uniform_drum4["energy_uj"], rel=1e-9)
    assert one["moved"] == ["normal c_{k-2}->0 sep_conv_3x3"]
    assert one["assignment"]["normal c_{k-2}->0 sep_conv_3x3"] == "bam4_4"
    assert 0 < one["energy_saved_uj"] < everywhere["energy_saved_uj"]


def test_an_assignment_and_its_genotype_are_inverses(loaded):
    """genotype_of writes an assignment (fixed groups apart included) into the run's cells;
    assignment_of reads the same assignment back from it."""
    model, _, groups = loaded
    run_genotype = genotypes.on_multiplier(genotypes.DARTS_V2, "exact")
    choice = {group.name: ("drum4", "bam4_4", "exact")[i % 3] for i, group in enumerate(groups)}
    genotype = genotypes.validate(genotype_of(choice, run_genotype))
    assert len(set(genotypes.fixed_assignment(genotype.fixed).values())) > 1
    read = assignment_of(genotype, run_genotype, groups, Emulation(), "greedy")
    assert {name: multiplier.name for name, multiplier in read.items()} == choice


def test_the_greedy_genotype_retrains_what_was_measured(tiny_run, tmp_path):
    """The greedy assignment's genotype file, given back with --compare, is measured at the
    greedy's own accuracy and energy on the same weights."""
    out = tmp_path / "s.json"
    assert sensitivity_main([str(tiny_run), "--multipliers", "drum4,bam4_4", "--n_test", "16",
                             "--tolerance", "0.1", "--out", str(out)]) == 0
    greedy_file = tmp_path / GREEDY_GENOTYPE_FILE
    record = json.loads(greedy_file.read_text())
    assert "greedy within 0.1" in record["assignment"]
    greedy = json.loads(out.read_text())["greedy"]
    assert greedy["moved"]
    again = tmp_path / "again.json"
    assert sensitivity_main([str(tiny_run), "--multipliers", "drum4", "--n_test", "16",
                             "--compare", str(greedy_file), "--out", str(again)]) == 0
    (measured,) = json.loads(again.read_text())["compared"]
    assert measured["assignment"] == greedy["assignment"]
    assert measured["accuracy"] == greedy["accuracy"]
    assert measured["energy_uj"] == pytest.approx(greedy["energy_uj"], rel=1e-9)


@pytest.mark.parametrize("change, needle", [
    (lambda g: g._replace(normal=[("max_pool_3x3", 0), *g.normal[1:]]), "cells differ"),
    (lambda g: g._replace(fixed="float"), "no 8-bit multiplier"),
])
def test_a_compared_genotype_that_does_not_fit_exits_2(change, needle, tiny_run, tmp_path,
                                                       capsys):
    genotypes.save(change(genotypes.on_multiplier(genotypes.DARTS_V2, "exact")),
                   tmp_path / "other.json")
    out = tmp_path / "s.json"
    assert sensitivity_main([str(tiny_run), "--multipliers", "drum4", "--n_test", "16",
                             "--compare", str(tmp_path / "other.json"),
                             "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "--compare" in err
    assert not out.exists()


def test_recalibrated_statistics_are_the_batches_and_are_restored(loaded):
    """Inside the block the stem's BatchNorm (its input depends on no other BatchNorm) holds
    the mean and (unbiased) variance of its input over the recalibration batch, computed apart
    by a hook; afterwards every buffer is back."""
    from sensitivity.measure import recalibration_batches
    from sensitivity.recalibrate import batchnorm_layers, recalibrated_batchnorm

    model, dataset, _ = loaded
    (batch,) = recalibration_batches(dataset, 1, batch_size=32)
    first = model.stem[-1]
    assert first in batchnorm_layers(model)
    inputs = []
    handle = first.register_forward_hook(lambda module, args, out: inputs.append(args[0]))
    model.eval()
    with torch.no_grad():
        model(batch)
    handle.remove()
    seen = inputs[0].double()
    before = {name: t.clone() for name, t in model.state_dict().items()}
    with recalibrated_batchnorm(model, [batch]):
        assert torch.allclose(first.running_mean.double(), seen.mean((0, 2, 3)), atol=1e-5)
        assert torch.allclose(first.running_var.double(), seen.var((0, 2, 3), unbiased=True),
                              rtol=1e-4, atol=1e-6)
        assert not model.training and all(not m.training for m in batchnorm_layers(model))
    after = model.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_the_command_recalibrates_when_asked(tiny_run, tmp_path, capsys):
    out = tmp_path / "s.json"
    assert sensitivity_main([str(tiny_run), "--multipliers", "bam4_4", "--n_test", "16",
                             "--recalibrate", "1", "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["recalibration_images"] == 64  # the run's whole (64-image) training set
    assert sensitivity_main([str(tiny_run), "--recalibrate", "-1"]) == 2
    assert "--recalibrate -1" in capsys.readouterr().err
