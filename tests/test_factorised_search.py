"""The factorised op x multiplier space: derivation, energy in deployed units, the search's
held-out record, and reproducing a run from its config.json."""

import json

import pytest
import torch
import torch.nn as nn

import energy_estimator
import train
import train_search
from genotypes import GENOTYPE_FILE
from model import NetworkCIFAR
from model_search import Network
from search.energy_model import SupernetEnergy
from search.space import SearchSpace, SearchSpaceError
from topology import NetworkShape

MULTIPLIERS = ("exact", "bam4_4", "float")
TINY = ["--dataset", "shapes", "--n_train", "64", "--n_test", "32", "--init_channels", "4",
        "--layers", "2", "--batch_size", "16", "--device", "cpu", "--image_size", "16"]


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    space = SearchSpace.of(multipliers=MULTIPLIERS)
    deployed = SupernetEnergy.priced(space, NetworkShape(6, 10, 4))  # what train.py builds
    return Network(4, 10, 3, nn.CrossEntropyLoss(), input_size=16, multipliers=MULTIPLIERS,
                   energy=deployed)


def test_derivation_never_splits_an_op_family(net):
    """The dilution case of the flat space: a conv family at logit 1.0 on two multipliers
    against skip_connect at 1.3 holds more mass than skip; the factorised space keeps the
    family's mass on one op, so the conv is chosen, on its stronger multiplier."""
    with torch.no_grad():
        net.alphas_normal.zero_()
        net.alphas_normal[:, net.candidates.index("sep_conv_3x3")] = 1.3
        net.alphas_normal[:, net.candidates.index("skip_connect")] = 1.0
        conv = net.space.conv_ops.index("sep_conv_3x3")
        net.multiplier_alphas_normal.zero_()
        net.multiplier_alphas_normal[:, conv, MULTIPLIERS.index("bam4_4")] = 0.5
    assert {op for op, _ in net.genotype().normal} == {"sep_conv_3x3@bam4_4"}


def test_one_hot_expected_energy_is_the_deployed_networks_profiled_energy(net):
    genotype = net.genotype()
    deployed = NetworkCIFAR(6, 10, 4, False, genotype)
    profiled = energy_estimator.profile(deployed, (3, 32, 32)).energy_uj
    assert net.genotype_energy_uj(genotype) == pytest.approx(profiled, rel=1e-6)


def test_multiplier_gradient_reaches_the_multiplier_alphas(net):
    net.zero_grad()
    x, y = torch.randn(2, 3, 16, 16), torch.tensor([1, 2])
    controllable = ((net.expected_energy_uj() - net.fixed_energy_uj())
                    / (net.reference_energy_uj() - net.fixed_energy_uj()))
    (net.loss(x, y) + controllable).backward()
    assert net.multiplier_alphas_normal.grad.abs().sum() > 0
    assert net.multiplier_alphas_reduce.grad.abs().sum() > 0


def test_granularities_share_the_multiplier_distribution():
    cell = Network(4, 10, 3, nn.CrossEntropyLoss(), input_size=16, multipliers=MULTIPLIERS,
                   multiplier_granularity="cell")
    network = Network(4, 10, 3, nn.CrossEntropyLoss(), input_size=16, multipliers=MULTIPLIERS,
                      multiplier_granularity="network")
    assert cell.multiplier_alphas_normal.shape == (1, 4, 3)
    assert dict(network.named_alphas()).keys() == {"alphas_normal", "alphas_reduce",
                                                   "multiplier_alphas_normal"}
    assert network.architecture.multiplier_weights("reduce").shape == (14, 4, 3)


def test_space_rejects_variants_in_the_factorised_form():
    with pytest.raises(SearchSpaceError, match="flat space"):
        SearchSpace(("none", "sep_conv_3x3@drum4"), ("exact",))


def test_random_genotypes_come_from_the_space():
    space = SearchSpace(("none", "skip_connect", "sep_conv_3x3"), ("exact", "drum4"))
    ops = {op for seed in range(20) for op, _ in space.sample_genotype(seed).normal}
    assert ops == {"skip_connect", "sep_conv_3x3@exact", "sep_conv_3x3@drum4"}


@pytest.mark.slow
def test_search_records_held_out_accuracy_and_reproduces_from_its_config(tmp_path):
    data = ["--data", str(tmp_path / "data")]
    first = tmp_path / "first"
    assert train_search.main([*TINY, *data, "--epochs", "2", "--warmup_epochs", "1",
                              "--save", str(first)]) == 0
    record = json.loads((first / GENOTYPE_FILE).read_text())
    assert {"test_acc", "proxy_acc", "costs", "energy_objective"} <= set(record)
    assert "derived_acc" not in record  # the ranking proxy scores it; no one-shot score
    assert record["costs"]["deployed"]["energy_uj"] == pytest.approx(record["energy_uj"])
    again = tmp_path / "again"
    assert train_search.main(["--config", str(first / "config.json"), "--save", str(again)]) == 0
    assert json.loads((again / GENOTYPE_FILE).read_text())["genotype"] == record["genotype"]


def test_a_search_without_the_ranking_proxy_records_the_one_shot_score(tmp_path):
    run = tmp_path / "run"
    assert train_search.main([*TINY, "--data", str(tmp_path / "data"), "--epochs", "1",
                              "--rank_proxy_epochs", "0", "--save", str(run)]) == 0
    record = json.loads((run / GENOTYPE_FILE).read_text())
    assert 0.0 <= record["derived_acc"] <= 1.0 and "proxy_acc" not in record
    assert "derived cell" in (run / "log.txt").read_text()


@pytest.mark.slow
def test_a_budget_met_in_the_search_is_met_by_the_retrain(tmp_path):
    """The search costs energy on the network train.py builds (same units both sides)."""
    data = ["--data", str(tmp_path / "data")]
    deployed = ["--energy_channels", "6", "--energy_layers", "3", "--energy_image_size", "32"]
    search_dir = tmp_path / "search"
    assert train_search.main([*TINY, *data, *deployed, "--epochs", "1", "--energy_budget", "60",
                              "--budget_control", "pi", "--save", str(search_dir)]) == 0
    record = json.loads((search_dir / GENOTYPE_FILE).read_text())
    retrain_dir = tmp_path / "retrain"
    assert train.main(["--dataset", "shapes", *data, "--n_train", "32", "--n_test", "16",
                       "--genotype", str(search_dir), "--epochs", "1", "--batch_size", "16",
                       "--init_channels", "6", "--layers", "3", "--image_size", "32",
                       "--device", "cpu", "--save", str(retrain_dir)]) == 0
    results = json.loads((retrain_dir / "results.json").read_text())
    assert results["energy_uj"] == pytest.approx(record["energy_uj"], rel=1e-9)
    assert (results["energy_uj"] <= 60) == (record["energy_uj"] <= 60)
    assert "G(energy_uj <= 60)" in json.loads((retrain_dir / "config.json").read_text())["stl"]
