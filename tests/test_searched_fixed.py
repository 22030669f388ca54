"""Fixed layers the search chooses multipliers for (`--fixed_multiplier search`): the setting
and its errors, the supernet's mixed fixed convs (one-hot: the plain emulated conv), the
derivation, the energy at one-hot weights against the profile of the network train.py builds,
the heatmap rows, and random genotypes of such a space."""

import json
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

import train
import train_search
from approx import DEFAULT_EMULATION
from approx.mixed import weighted_mixtures
from energy_estimator import profile
from genotypes import GENOTYPE_FILE, STEM, GenotypeError, fixed_assignment, from_dict
from model import NetworkCIFAR
from model_search import Network
from operations import cifar_stem, fixed_conv_factory
from search import cell_cli
from search.architecture import FIXED_KEY
from search.proxy import proxy_accuracy
from search.space import SearchSpace, SearchSpaceError

MULTIPLIERS = ("exact", "drum4", "bam4_4")
OPS = ("none", "skip_connect", "sep_conv_3x3", "max_pool_3x3")
SEARCHED = "stem=search,preprocess=search,reduce_skip=exact,classifier=search"
C, CLASSES, LAYERS, SIZE = 4, 10, 3, 8


def settings(**overrides):
    values = dict(primitives=",".join(OPS), multipliers="drum4,bam4_4", max_parameter_free=2,
                  fixed_multiplier="search", multiplier_search="factorised",
                  multiplier_granularity="edge", strategy="darts")
    return SimpleNamespace(**{**values, **overrides})


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return Network(C, CLASSES, LAYERS, nn.CrossEntropyLoss(), candidates=OPS,
                   multipliers=MULTIPLIERS, input_size=SIZE, fixed_multiplier=SEARCHED)


def test_search_leaves_stem_preprocess_and_classifier_to_the_search():
    space = cell_cli.check(settings(), DEFAULT_EMULATION)
    assert space["fixed_multiplier"] == SEARCHED
    assert SearchSpace.of(**space).searched_fixed == ("stem", "preprocess", "classifier")
    per_group = cell_cli.check(settings(fixed_multiplier="stem=search,preprocess=drum4,"
                                                         "reduce_skip=exact,classifier=exact"),
                               DEFAULT_EMULATION)
    assert SearchSpace.of(**per_group).searched_fixed == ("stem",)


@pytest.mark.parametrize("overrides, needle", [
    ({"fixed_multiplier": "stem=search,preprocess=search,reduce_skip=search,"
                          "classifier=search"}, "reduce_skip"),
    ({"strategy": "nsga2"}, "--strategy nsga2"),
    ({"multiplier_search": "flat"}, "factorised"),
    ({"multipliers": "float,drum4"}, "float"),
    ({"fixed_multiplier": "stem=search,preprocess=nomul,reduce_skip=exact,classifier=exact"},
     "nomul"),
])
def test_settings_that_cannot_be_searched_fail_in_one_line(overrides, needle):
    with pytest.raises(ValueError) as error:
        cell_cli.check(settings(**overrides), DEFAULT_EMULATION)
    assert needle in str(error.value) and "\n" not in str(error.value)


def test_a_genotype_names_its_fixed_multipliers():
    with pytest.raises(GenotypeError, match="names its multipliers"):
        fixed_assignment(SEARCHED)
    record = {"normal": [["skip_connect", 0]] * 2, "normal_concat": [2],
              "reduce": [["skip_connect", 0]] * 2, "reduce_concat": [2], "fixed": "search"}
    with pytest.raises(GenotypeError):
        from_dict(record)


def test_accuracy_and_energy_reach_the_fixed_logits(net):
    net.zero_grad(set_to_none=True)
    x, y = torch.randn(4, 3, SIZE, SIZE), torch.randint(0, CLASSES, (4,))
    net.loss(x, y).backward()
    accuracy_grad = net.architecture.multiplier_alphas_fixed.grad.clone()
    assert accuracy_grad.shape == (3, len(MULTIPLIERS)) and accuracy_grad.abs().sum() > 0
    net.zero_grad(set_to_none=True)
    net.expected_energy_uj().backward()
    energy_grad = net.architecture.multiplier_alphas_fixed.grad
    # exact costs most: the energy pushes every searched group off it
    assert torch.all(energy_grad[:, MULTIPLIERS.index("exact")] > 0)


def test_derivation_takes_each_groups_strongest_multiplier(net):
    with torch.no_grad():
        logits = net.architecture.multiplier_alphas_fixed
        saved = logits.clone()
        logits.zero_()
        logits[0, MULTIPLIERS.index("drum4")] = 1.0  # stem
        logits[1, MULTIPLIERS.index("exact")] = 1.0  # preprocess
        logits[2, MULTIPLIERS.index("bam4_4")] = 1.0  # classifier
    try:
        assert fixed_assignment(net.genotype().fixed) == {
            "stem": "drum4", "preprocess": "exact", "reduce_skip": "exact",
            "classifier": "bam4_4"}
    finally:
        with torch.no_grad():
            logits.copy_(saved)


@pytest.mark.parametrize("seed", range(3))
def test_one_hot_energy_is_the_genotype_energy_and_the_built_networks_profile(net, seed):
    genotype = net.space.sample_genotype(seed)
    assert "search" not in genotype.fixed
    weights = net.architecture.one_hot_weights(genotype)
    assert float(net.energy.expected_uj(weights)) == pytest.approx(
        net.genotype_energy_uj(genotype), rel=1e-6)
    built = NetworkCIFAR(C, CLASSES, LAYERS, False, genotype)
    assert net.genotype_energy_uj(genotype) == pytest.approx(
        profile(built, (3, SIZE, SIZE)).energy_uj, rel=1e-6)


def test_a_one_hot_fixed_mixture_is_the_plain_emulated_conv(net):
    """The stem (signed RGB input) on its mixture, one-hot on drum4, computes what the stem
    of a network built on drum4 computes."""
    plain = cifar_stem(3 * C, fixed_conv_factory("drum4", STEM))
    plain.load_state_dict(net.stem.state_dict())
    net.eval(), plain.eval()
    one_hot = torch.zeros(len(MULTIPLIERS))
    one_hot[MULTIPLIERS.index("drum4")] = 1.0
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad(), weighted_mixtures({net._fixed_mixtures["stem"]: one_hot}):
        mixed = net.stem(x)
    with torch.no_grad():
        torch.testing.assert_close(mixed, plain(x), rtol=1e-5, atol=1e-5)
    net.train()


def test_fixed_groups_are_heatmap_rows_and_sampled_one_hot(net):
    rows = net.multiplier_softmax()[FIXED_KEY][1]
    assert rows == ["stem layers", "preprocess layers", "classifier layers"]
    gumbel = Network(C, CLASSES, 2, nn.CrossEntropyLoss(), candidates=OPS,
                     multipliers=MULTIPLIERS, input_size=SIZE, fixed_multiplier=SEARCHED,
                     multiplier_sampling="gumbel")
    drawn = gumbel.architecture.forward_weights(training=True)[FIXED_KEY]
    assert torch.equal(drawn.detach().sum(-1), torch.ones(3))
    assert set(drawn.detach().unique().tolist()) <= {0.0, 1.0}


def test_random_genotypes_draw_the_searched_groups_and_keep_the_cells():
    searched = SearchSpace(OPS, MULTIPLIERS, fixed=SEARCHED)
    fixed = SearchSpace(OPS, MULTIPLIERS, fixed="exact")
    drawn = [searched.sample_genotype(seed) for seed in range(6)]
    assert all(g.normal == fixed.sample_genotype(k).normal for k, g in enumerate(drawn))
    groups = [fixed_assignment(g.fixed) for g in drawn]
    assert {a["reduce_skip"] for a in groups} == {"exact"}
    assert len({a["stem"] for a in groups}) > 1
    with pytest.raises(SearchSpaceError, match="not in the searched set"):
        searched.one_hot_fixed("trunc6", like=torch.zeros(()))


@pytest.mark.timeout(180)
def test_a_tiny_search_chooses_the_fixed_multipliers_and_train_retrains_them(tmp_path,
                                                                             monkeypatch):
    proxy_batches = []

    def recording_proxy(genotype, proxy_data, recipe, **kwargs):
        proxy_batches.append(recipe.batch_size)
        return proxy_accuracy(genotype, proxy_data, recipe, **kwargs)

    monkeypatch.setattr(train_search, "proxy_accuracy", recording_proxy)
    tiny = ["--dataset", "shapes", "--n_train", "64", "--n_test", "32", "--init_channels", "4",
            "--layers", "2", "--batch_size", "16", "--device", "cpu",
            "--data", str(tmp_path / "data")]
    run = tmp_path / "search"
    assert train_search.main([*tiny, "--epochs", "2", "--warmup_epochs", "1",
                              "--multipliers", "drum4,bam4_4", "--fixed_multiplier", "search",
                              "--rank_proxy_epochs", "1", "--rank_proxy_batch_size", "8",
                              "--save", str(run)]) == 0
    assert proxy_batches == [8]  # the proxy's own batch size, not the search's 16
    record = json.loads((run / GENOTYPE_FILE).read_text())
    fixed = record["genotype"]["fixed"]
    assert 0 <= record["proxy_acc"] <= 1  # the ranking proxy scored the searched fixed layers
    assert record["proxy"]["batch_size"] == 8 and record["proxy"]["epochs"] == 1
    assert fixed in MULTIPLIERS or set(fixed) == {"stem", "preprocess", "reduce_skip",
                                                  "classifier"}
    assert (run / "multipliers_fixed.png").is_file()
    history = json.loads((run / "history.json").read_text())
    assert len(history[-1]["multipliers"][FIXED_KEY]) == 3  # one row per searched group
    retrain = tmp_path / "retrain"
    assert train.main([*tiny, "--genotype", str(run), "--epochs", "1", "--save", str(retrain),
                       "--final_eval", "deployment"]) == 0
    results = json.loads((retrain / "results.json").read_text())
    assert results["genotype"]["fixed"] == fixed
