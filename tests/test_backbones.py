"""The ResNet backbone space: published parameter counts, genotype files, the supernet's energy
model against the profiled derived network, the energy report, and a tiny search + retrain."""

import json

import pytest
import torch
import torch.nn as nn
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import energy_estimator
import genotypes
import train
import train_search
from approx import Emulation
from architect import Architect
from backbones import BackboneError, from_dict, named
from backbones.costs import ResNetSpace, space_costs
from backbones.resnet import ResNetCIFAR
from backbones.search import ResNetSupernet
from energy_estimator.__main__ import main as energy_cli
from search import runs
from tradeoff.plan import stripped, with_multiplier

# He et al. 2016 (Table 6): ResNet-20 0.27 M; ResNet-14 0.17 M by the same definition
# (shortcut A); ResNet-8 0.078 M is the figure of the projection-shortcut variant (Keras
# ResNet v1, as in TFApprox/ALWANN), here `resnet8b`.
PUBLISHED_PARAMS = {"resnet20": 0.27e6, "resnet14": 0.17e6, "resnet8b": 0.078e6}
TINY_SPACE = dict(stage_choices=(2, 3), block_choices=(1, 2), width_choices=(2, 4),
                  candidates=("float", "exact", "bam4_4"))


def params(genotype) -> int:
    return sum(p.numel() for p in ResNetCIFAR(genotype, 10).parameters())


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_parameter_counts_match_the_published_figures(name):
    assert params(named(name)) == pytest.approx(PUBLISHED_PARAMS[name], rel=0.02)


def test_parameter_counts_follow_the_6n_plus_2_definition():
    # stem 3x3x3x16 + BN; per block two 3x3 convs + two BNs; classifier 64 x 10 + 10
    per_n = sum(2 * (9 * c * c + 2 * c) for c in (16, 32, 64))
    first = 9 * 16 * 32 + 9 * 32 * 64 - 9 * 32 * 32 - 9 * 64 * 64  # stage entries read C / 2
    for n, name in ((1, "resnet8"), (2, "resnet14"), (3, "resnet20")):
        expected = 432 + 32 + n * per_n + first + 650
        assert params(named(name)) == expected
    assert params(named("resnet20")) == 269_722


def test_names_files_and_errors():
    genotype = named("resnet20@bam4_4")
    assert genotype.blocks == (3, 3, 3) and set(genotype.multipliers) == {"bam4_4"}
    assert len(genotype.multipliers) == 19  # 6n + 1 convs (+ the classifier = 6n + 2)
    assert len(named("resnet8b").multipliers) == 9  # two projection convs
    record = json.loads(json.dumps(genotypes.to_dict(genotype)))
    assert genotypes.from_dict(record) == genotype
    assert from_dict({"kind": "resnet", "blocks": [1, 2], "width": 8}).widths == (8, 16)
    assert runs.resolve("resnet8@exact")[0] == named("resnet8").with_multiplier("exact")
    for bad in ({"kind": "resnet", "blocks": [1], "widths": [8], "multipliers": ["exact"] * 2},
                {"kind": "resnet", "blocks": [1, 1], "widths": [16, 8]}):
        with pytest.raises(BackboneError):
            genotypes.from_dict(bad)
    with pytest.raises(genotypes.GenotypeError, match="6n"):
        runs.resolve("resnet9")
    assert stripped(genotype) == named("resnet20")
    assert with_multiplier(named("resnet8"), "exact") == named("resnet8@exact")


COSTING = Emulation(mode="float")  # profiled without the emulation's cost


def profiled_uj(genotype) -> float:
    network = ResNetCIFAR(genotype, 10, emulation=COSTING)
    return energy_estimator.profile(network, (3, 32, 32)).energy_uj


@pytest.mark.parametrize("shortcut,granularity", [("A", "layer"), ("B", "stage")])
def test_one_hot_energy_equals_the_profiled_derived_network(shortcut, granularity):
    torch.manual_seed(0)
    space = ResNetSpace(**TINY_SPACE, shortcut=shortcut, granularity=granularity)
    model = ResNetSupernet(space, 10, nn.CrossEntropyLoss())
    for _ in range(3):
        with torch.no_grad():
            for alpha in model.alphas():  # a random architecture, then its one-hot alphas
                alpha.copy_(torch.randn_like(alpha))
        genotype = model.genotype()
        energy = profiled_uj(genotype)
        assert model.genotype_energy_uj(genotype) == pytest.approx(energy, rel=1e-12)
        with torch.no_grad():
            for alpha in model.alphas():
                one_hot = torch.nn.functional.one_hot(alpha.argmax(-1), alpha.shape[-1])
                alpha.copy_(1e4 * one_hot - 5e3)
        assert float(model.expected_energy_uj().detach()) == pytest.approx(energy, rel=1e-5)
        assert model.genotype() == genotype


@pytest.mark.parametrize("objective", ["multiplier", "arithmetic"])
def test_energy_objective_reaches_the_backbone_costs(objective):
    """--energy_objective prices the backbone's tables too (it did only the cell space's)."""
    torch.manual_seed(0)
    space = ResNetSpace(**TINY_SPACE)
    costs = space_costs(space, 10, objective=objective, emulation=COSTING)
    model = ResNetSupernet(space, 10, nn.CrossEntropyLoss(), costs=costs)
    genotype = model.genotype()
    report = energy_estimator.profile(ResNetCIFAR(genotype, 10, emulation=COSTING), (3, 32, 32))
    field = {"multiplier": "mult_energy_uj", "arithmetic": "arith_energy_uj"}[objective]
    assert model.genotype_energy_uj(genotype) == pytest.approx(getattr(report, field), rel=1e-9)
    assert model.genotype_energy_uj(genotype) < report.energy_uj


def test_expected_energy_is_differentiable_in_every_choice():
    model = ResNetSupernet(ResNetSpace(**TINY_SPACE), 10, nn.CrossEntropyLoss())
    model.expected_energy_uj().backward()
    assert all(alpha.grad.abs().sum() > 0 for alpha in model.alphas())
    near_uniform_uj = float(model.expected_energy_uj().detach())  # alphas start at 1e-3 N(0, 1)
    assert model.reference_energy_uj() == pytest.approx(near_uniform_uj, rel=1e-2)


def test_supernet_trains_alphas_through_the_architect():
    torch.manual_seed(0)
    model = ResNetSupernet(ResNetSpace(**TINY_SPACE), 10, nn.CrossEntropyLoss())
    architect = Architect(model, arch_learning_rate=0.1, energy_weight=1.0)
    optimizer = torch.optim.SGD(model.weights(), 0.01, momentum=0.9)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    before = [alpha.detach().clone() for alpha in model.alphas()]
    for unrolled in (False, True):
        info = architect.step(x, y, x, y, 0.01, optimizer, unrolled=unrolled)
    assert info["expected_energy_uj"] > 0
    assert all(not torch.equal(a, b) for a, b in zip(before, model.alphas(), strict=True))


def test_energy_report_lists_the_multiplier_of_every_layer(tmp_path, capsys):
    genotype = named("resnet8")
    multipliers = ["exact", "bam4_4", "float", "trunc6", "exact", "bam4_4", "float"]
    genotype = from_dict({**genotype.to_dict(), "multipliers": multipliers})
    report = energy_estimator.profile(ResNetCIFAR(genotype, 10, emulation=COSTING), (3, 32, 32))
    rows = {row.name: row.multiplier for row in report.layers}
    labels = {"exact": "int8 exact", "float": "float32"}
    for layer, multiplier in zip(genotype.layers(), multipliers, strict=True):
        assert rows[layer.name] == labels.get(multiplier, multiplier)
    path = tmp_path / "resnet8-mixed.json"
    genotypes.save(genotype, path)
    energy_cli(["--genotype", str(path), "--depth", "0"])
    out = capsys.readouterr().out
    assert "stage1.0.conv2" in out and "trunc6" in out and "ResNetCIFAR" in out


def test_tiny_backbone_search_writes_a_genotype_that_retrains(tmp_path):
    common = ["--dataset", "shapes", "--data", str(tmp_path / "data"), "--n_train", "32",
              "--n_test", "32", "--batch_size", "16", "--device", "cpu", "--epochs", "1"]
    search = tmp_path / "search"
    assert train_search.main([*common, "--space", "resnet", "--resnet_widths", "2,4",
                              "--resnet_blocks", "1,2", "--resnet_stages", "2,3",
                              "--multipliers", "bam4_4", "--save", str(search)]) == 0
    assert train_search.main(["--resume", str(search), "--epochs", "2"]) == 0
    history = json.loads((search / "history.json").read_text())
    assert [record["epoch"] for record in history] == [1, 2]
    assert set(history[-1]["alphas"]) == {"multipliers", "depth", "width", "stages"}
    images = EventAccumulator(str(search), size_guidance={"images": 0}).Reload().Tags()["images"]
    assert {f"alphas/{table}" for table in history[-1]["alphas"]} <= set(images)
    record = json.loads((search / genotypes.GENOTYPE_FILE).read_text())
    assert record["genotype"]["kind"] == "resnet" and record["epochs"] == 2
    assert record["candidates"] == ["float", "exact", "bam4_4"]
    retrain = tmp_path / "train"
    assert train.main([*common, "--genotype", str(search), "--save", str(retrain)]) == 0
    results = json.loads((retrain / "results.json").read_text())
    assert results["genotype"] == record["genotype"]
    assert results["energy_uj"] == pytest.approx(record["energy_uj"], rel=1e-9)
    assert {"test_acc", "test_acc_exact_arith", "stl", "cost"} <= set(results)


def test_bad_backbone_flags_stop_with_one_line(tmp_path, capsys):
    argv = ["--space", "resnet", "--multipliers", "no_such_mul", "--save", str(tmp_path / "r"),
            "--data", str(tmp_path / "data"), "--n_train", "32", "--device", "cpu"]
    assert train_search.main(argv) == 2
    assert "no_such_mul" in capsys.readouterr().err


def test_one_hot_supernet_computes_the_derived_network():
    """With one-hot alphas the mixtures (multiplier, depth, width mask, stage head) reduce to
    the derived network: the same logits from the supernet's weights, sliced."""
    torch.manual_seed(1)
    space = ResNetSpace(stage_choices=(2, 3), block_choices=(1, 2), width_choices=(2, 4),
                        candidates=("float", "exact", "trunc6"))
    model = ResNetSupernet(space, 10, nn.CrossEntropyLoss()).eval()
    with torch.no_grad():
        for alpha in model.alphas():
            alpha.copy_(1e4 * torch.nn.functional.one_hot(torch.randn_like(alpha).argmax(-1),
                                                          alpha.shape[-1]))
    genotype = model.genotype()
    derived = ResNetCIFAR(genotype, 10).eval()
    supernet_state = model.state_dict()
    head = f"heads.{space.stage_choices.index(genotype.stages)}."
    state = {}
    for key, value in derived.state_dict().items():
        if key.endswith("act_max"):  # unset observers: both quantise with the batch's scale
            state[key] = value
            continue
        source = key.replace("head.", head).replace("conv.weight", "conv.convs.0.weight")
        source = source.replace("conv1.weight", "conv1.convs.0.weight")
        source = source.replace("conv2.weight", "conv2.convs.0.weight")
        full = supernet_state[source]
        state[key] = full[tuple(slice(0, size) for size in value.shape)] if value.dim() else full
    derived.load_state_dict(state)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        difference = (model(x) - derived(x)).abs().max()
    # equal for float convs; the emulated ones sum over the masked (zero) channels too, whose
    # float32 accumulation order can flip an 8-bit code downstream (logits ~0.2 here)
    assert difference < 1e-3, difference


def test_sweep_plans_published_backbones_as_baselines(tmp_path):
    import sweep
    from tradeoff import plan
    from tradeoff.table import multiplier_shares

    args, _ = sweep.resolve_args(["--out", str(tmp_path), "--energy_weights", "0",
                                  "--multiplier_sets", "bam4_4", "--random_baselines", "0",
                                  "--published", "resnet8"])
    runs = {run.name: run for run in plan.plan_sweep(args, tmp_path)}
    assert {"baseline-resnet8", "baseline-resnet8@bam4_4"} <= set(runs)
    run = runs["baseline-resnet8@bam4_4"]
    assert plan.make_genotype(run, tmp_path)
    record = genotypes.read_record(run.genotype)
    assert record["genotype"] == named("resnet8@bam4_4")
    assert multiplier_shares(genotypes.to_dict(record["genotype"])) == (7, {"bam4_4": 1.0})


@pytest.mark.parametrize("argv,stray", [
    (["--space", "resnet", "--partial_channels", "2"], "--partial_channels"),
    (["--primitives", "none,skip_connect", "--resnet_blocks", "1,2"], "--resnet_blocks"),
])
def test_a_flag_of_the_other_space_stops_the_run_with_one_line(tmp_path, capsys, argv, stray):
    argv += ["--save", str(tmp_path / "r"), "--data", str(tmp_path / "data"), "--device", "cpu"]
    assert train_search.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert stray in err and "apply to --space" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_both_supernets_implement_the_one_interface():
    from model_search import Network
    from search.supernet import Supernet
    cells = Network(4, 10, 2, nn.CrossEntropyLoss(), steps=2, multiplier=2, input_size=8)
    backbone = ResNetSupernet(ResNetSpace(**TINY_SPACE), 10, nn.CrossEntropyLoss())
    for supernet in (cells, backbone):
        assert isinstance(supernet, Supernet)
        assert set(supernet.describe()) == {"search_space", "multiplier_set"}
        for table in supernet.alpha_softmax():
            rows, columns = supernet.alpha_axes(table)
            assert len(columns) == supernet.alpha_softmax()[table].shape[-1]
