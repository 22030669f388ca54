"""The search prices what the derivation keeps (issue 27, part 3): the expected energy counts
the derived edges and their non-`none` ops, so at one-hot weights it equals the derived
genotype's energy; and the derivation's cap on parameter-free ops (P-DARTS)."""

import pytest
import torch
import torch.nn as nn

from genotypes import PARAMETER_FREE_PRIMITIVES, PRIMITIVES
from model_search import Network
from search.architecture import Architecture
from search.energy_model import kept_edges
from search.space import SearchSpace

MULTIPLIERS = ("exact", "bam4_4", "drum4")


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return Network(4, 10, 3, nn.CrossEntropyLoss(), input_size=16, multipliers=MULTIPLIERS)


def well_apart(shape, generator) -> torch.Tensor:
    """Random logits 12 apart within each row: a near one-hot softmax in a random order (the
    smallest weight, e^-84, stays above float32's underflow); in the op tables `none` then
    sits within +-3 of the row's top, so the edges' strengths differ."""
    logits = 12.0 * torch.rand(shape, generator=generator).argsort(-1).float()
    if shape[-1] == len(PRIMITIVES):
        none = PRIMITIVES.index("none")
        top = logits.amax(-1)
        logits[:, none] = top + 6 * torch.rand(shape[0], generator=generator) - 3
    return logits


@pytest.mark.parametrize("seed", range(4))
def test_one_hot_expected_energy_is_the_genotype_energy(net, seed):
    genotype = net.space.sample_genotype(seed)
    weights = net.architecture.one_hot_weights(genotype)
    assert float(net.energy.expected_uj(weights)) == pytest.approx(
        net.genotype_energy_uj(genotype), rel=1e-6)


def test_sharp_alphas_price_the_derived_genotype_whatever_the_other_edges_hold(net):
    """Random alphas scaled until the softmax is near one-hot: the expected energy is the
    energy of the genotype derived from them (edges the derivation drops cost nothing,
    however strong their `none` or their ops)."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for alpha in net.alphas():
            alpha.copy_(well_apart(alpha.shape, generator))
    expected = float(net.expected_energy_uj().detach())
    assert expected == pytest.approx(net.genotype_energy_uj(), rel=1e-4)


def test_pc_darts_edge_weights_count_in_the_selection():
    torch.manual_seed(0)
    model = Network(4, 10, 2, nn.CrossEntropyLoss(), input_size=16, multipliers=MULTIPLIERS,
                    partial_channels=2)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for alpha in model.alphas():
            alpha.copy_(well_apart(alpha.shape, generator))
    assert float(model.expected_energy_uj().detach()) == pytest.approx(
        model.genotype_energy_uj(), rel=1e-4)


def test_edge_selection_is_the_top_two_with_the_soft_shares_gradient():
    strength = torch.tensor([0.5, 0.1, 0.9, 0.2, 0.3], requires_grad=True)  # nodes 0 and 1
    share = kept_edges(strength, steps=2)
    assert share.tolist() == [1.0, 1.0, 1.0, 0.0, 1.0]
    (share * torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0])).sum().backward()
    assert strength.grad[4] > 0 and strength.grad[2] < 0  # edge 4 is expensive: push it out
    assert float(kept_edges(torch.ones(5), steps=2, hard=False).sum()) == pytest.approx(4.0)


def test_energy_gradient_reaches_op_multiplier_and_edge_choice(net):
    net.zero_grad(set_to_none=True)
    with torch.no_grad():
        for alpha in net.alphas():
            alpha.normal_(0, 0.5)
    net.expected_energy_uj().backward()
    assert all(float(alpha.grad.abs().sum()) > 0 for alpha in net.alphas())
    none = net.candidates.index("none")
    assert float(net.alphas_normal.grad[:, none].abs().sum()) > 0  # through the renormalising


def skip_heavy_weights(space: SearchSpace, edges: int) -> torch.Tensor:
    weights = torch.full((edges, len(space.ops)), 0.05)
    weights[:, space.ops.index("skip_connect")] = 0.6
    weights[:, space.ops.index("sep_conv_3x3")] = torch.linspace(0.1, 0.3, edges)
    return weights


@pytest.mark.parametrize("cap", [0, 1, 2])
def test_derivation_caps_parameter_free_ops(cap):
    space = SearchSpace(PRIMITIVES)
    cell = space.derive_cell(skip_heavy_weights(space, 14), None, max_parameter_free=cap)
    assert sum(name in PARAMETER_FREE_PRIMITIVES for name, _ in cell) == cap
    assert len(cell) == 8
    uncapped = space.derive_cell(skip_heavy_weights(space, 14), None)
    assert all(name == "skip_connect" for name, _ in uncapped)


def test_the_cap_applies_to_the_normal_cell_only():
    space = SearchSpace(PRIMITIVES)
    architecture = Architecture(space, max_parameter_free=2)
    with torch.no_grad():
        for table in (architecture.alphas_normal, architecture.alphas_reduce):
            table.copy_(skip_heavy_weights(space, 14).log())
    genotype = architecture.genotype()
    assert sum(name == "skip_connect" for name, _ in genotype.normal) == 2
    assert sum(name == "skip_connect" for name, _ in genotype.reduce) == 8


def test_a_space_of_parameter_free_ops_only_still_derives():
    space = SearchSpace(("none", "skip_connect", "max_pool_3x3"))
    cell = space.derive_cell(torch.rand(14, 3), None, max_parameter_free=1)
    assert len(cell) == 8
