"""Supernet tests: shapes, parameter groups, DARTS genotype rule, energy, approximate ops."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from genotypes import PRIMITIVES, Genotype
from model_search import MixedOp, Network, num_edges
from search.architecture import CellWeights

BATCH, NUM_CLASSES = 4, 5




def tiny_network(candidates=None, layers=3, steps=4, multiplier=4, input_size=8, C=4):
    torch.manual_seed(0)
    return Network(C, NUM_CLASSES, layers, nn.CrossEntropyLoss(), steps=steps,
                   multiplier=multiplier, candidates=candidates, input_size=input_size)


@pytest.fixture(scope="module")
def net():
    return tiny_network()


def images(size=8, batch=BATCH, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, size, size, generator=generator)


def test_forward_shapes_and_loss(net):
    logits = net(images())
    assert logits.shape == (BATCH, NUM_CLASSES)
    loss = net.loss(images(), torch.arange(BATCH) % NUM_CLASSES)
    assert loss.ndim == 0 and torch.isfinite(loss)
    ce_grads = torch.autograd.grad(loss, list(net.alphas()))
    assert all(g.abs().sum().item() > 0 for g in ce_grads)
    assert net.alphas_normal.shape == (num_edges(4), len(PRIMITIVES)) == (14, 8)
    assert net.alphas_reduce.shape == (14, 8)
    assert [cell.reduction for cell in net.cells] == [False, True, True]


def test_weights_and_alphas_are_disjoint_and_complete(net):
    weight_ids = {id(p) for p in net.weights()}
    alpha_ids = {id(p) for p in net.alphas()}
    assert len(alpha_ids) == 2 and not weight_ids & alpha_ids
    assert weight_ids | alpha_ids == {id(p) for p in net.parameters()}
    assert [name for name, _ in net.named_alphas()] == ["alphas_normal", "alphas_reduce"]
    assert [id(p) for p in net.arch_parameters()] == [id(p) for p in net.alphas()]
    assert {name for name, _ in net.named_weights()}.isdisjoint({"alphas_normal",
                                                                  "alphas_reduce"})


def test_mixed_op_skipping_none_keeps_the_full_sum():
    torch.manual_seed(0)
    op = MixedOp(4, 1, PRIMITIVES)
    x, weights = images(seed=2)[:, :1].repeat(1, 4, 1, 1), F.softmax(torch.randn(8), -1)
    full_sum = sum(w * candidate(x) for w, candidate in zip(weights, op._ops, strict=True))
    torch.testing.assert_close(op(x, weights), full_sum)


def test_mixed_op_needs_a_real_op():
    with pytest.raises(ValueError, match="none"):
        MixedOp(4, 1, ["none"])


def reference_genotype_cell(weights: np.ndarray, candidates, steps):
    """An independent DARTS derivation with numpy (argsort over masked tables)."""
    masked = weights.copy()
    masked[:, [k for k, name in enumerate(candidates) if name == "none"]] = -np.inf
    best_op, strength = masked.argmax(axis=1), masked.max(axis=1)
    edges, start = [], 0
    for node in range(steps):
        inputs = np.arange(2 + node)
        order = inputs[np.argsort(-strength[start + inputs], kind="stable")][:2]
        edges += [(candidates[best_op[start + j]], int(j)) for j in order]
        start += 2 + node
    return edges


def test_genotype_on_hand_set_alphas_small_cell():
    model = tiny_network(candidates=["none", "skip_connect", "sep_conv_3x3"], steps=2,
                         multiplier=2, layers=3)
    with torch.no_grad():
        # edges: node 0 <- {0, 1}; node 1 <- {0, 1, 2}. 'none' is the largest on edge 2 but
        # is never selected; edge strength is the best non-'none' weight.
        model.alphas_normal.copy_(torch.tensor([[0.0, 2.0, 1.0],
                                                [0.0, 0.0, 3.0],
                                                [9.0, 0.5, 0.0],
                                                [0.0, 1.0, 0.0],
                                                [0.0, 0.0, 4.0]]))
        model.alphas_reduce.copy_(torch.tensor([[0.0, 0.0, 1.0],
                                                [0.0, 1.5, 0.0],
                                                [0.0, 0.0, 5.0],
                                                [0.0, 0.0, 0.1],
                                                [0.0, 2.0, 0.0]]))
    genotype = model.genotype()
    assert genotype.normal == [("sep_conv_3x3", 1), ("skip_connect", 0),
                               ("sep_conv_3x3", 2), ("skip_connect", 1)]
    assert genotype.reduce == [("skip_connect", 1), ("sep_conv_3x3", 0),
                               ("sep_conv_3x3", 0), ("skip_connect", 2)]
    assert genotype.normal_concat == genotype.reduce_concat == [2, 3]


def test_genotype_matches_independent_darts_rule(net):
    torch.manual_seed(3)
    with torch.no_grad():
        for alpha in net.alphas():
            alpha.copy_(torch.randn_like(alpha))
    tables = net.alpha_softmax()
    normal, reduce = tables["normal"].numpy(), tables["reduce"].numpy()
    genotype = net.genotype()
    assert genotype.normal == reference_genotype_cell(normal, PRIMITIVES, 4)
    assert genotype.reduce == reference_genotype_cell(reduce, PRIMITIVES, 4)
    assert genotype.normal_concat == [2, 3, 4, 5]


def one_hot_logits(cell_edges, candidates, steps, scale=1e3):
    """Alphas selecting each genotype edge's op and 'none' on the other edges."""
    logits = torch.zeros(num_edges(steps), len(candidates))
    logits[:, candidates.index("none")] = scale
    for position, (op, j) in enumerate(cell_edges):
        node = position // 2
        edge = sum(2 + k for k in range(node)) + j
        logits[edge] = 0.0
        logits[edge, candidates.index(op)] = scale
    return logits


def node_edge_sets(cell_edges):
    return [set(cell_edges[i:i + 2]) for i in range(0, len(cell_edges), 2)]


def test_genotype_energy_equals_expected_energy_with_one_hot_alphas(net):
    genotype = Genotype(
        normal=[("sep_conv_5x5", 0), ("dil_conv_3x3", 1), ("skip_connect", 2),
                ("sep_conv_3x3", 0), ("max_pool_3x3", 3), ("avg_pool_3x3", 1),
                ("dil_conv_5x5", 4), ("sep_conv_3x3", 2)],
        normal_concat=[2, 3, 4, 5],
        reduce=[("sep_conv_3x3", 1), ("max_pool_3x3", 0), ("sep_conv_5x5", 2),
                ("skip_connect", 0), ("dil_conv_3x3", 3), ("sep_conv_3x3", 0),
                ("avg_pool_3x3", 4), ("dil_conv_5x5", 1)],
        reduce_concat=[2, 3, 4, 5])
    candidates = list(PRIMITIVES)
    normal = one_hot_logits(genotype.normal, candidates, 4)
    reduce = one_hot_logits(genotype.reduce, candidates, 4)
    expected = float(net.energy.expected_uj(softmax_weights(normal, reduce)))
    assert net.genotype_energy_uj(genotype) == pytest.approx(expected, rel=1e-5)
    one_hot = net.architecture.one_hot_weights(genotype)
    assert float(net.energy.expected_uj(one_hot)) == pytest.approx(expected, rel=1e-5)
    with torch.no_grad():
        net.alphas_normal.copy_(normal)
        net.alphas_reduce.copy_(reduce)
    derived = net.genotype()  # both edges of a node have weight 1: compare them as sets
    for cell in ("normal", "reduce"):
        assert node_edge_sets(getattr(derived, cell)) == node_edge_sets(getattr(genotype, cell))
    assert net.genotype_energy_uj() == pytest.approx(expected, rel=1e-5)


def test_expected_energy_gradient_reaches_alphas_only():
    model = tiny_network()
    energy = model.expected_energy_uj()
    assert energy.ndim == 0 and energy.item() > 0
    energy.backward()
    assert all(float(a.grad.abs().sum()) > 0 for a in model.alphas())
    assert all(p.grad is None for p in model.weights())


def softmax_weights(normal, reduce):
    """{reduction: CellWeights} of op logits (flat space, no PC-DARTS)."""
    return {reduction: CellWeights(F.softmax(logits, dim=-1), None, None)
            for reduction, logits in ((False, normal), (True, reduce))}


def test_reference_energy_is_uniform_expected_energy(net):
    zeros = torch.zeros_like(net.alphas_normal)
    assert net.reference_energy_uj() == pytest.approx(  # all edges tie: each at its share
        float(net.energy.expected_uj(softmax_weights(zeros, zeros), hard_edges=False)))
    assert isinstance(net.reference_energy_uj(), float)


def test_alpha_softmax_rows_sum_to_one(net):
    assert list(net.alpha_softmax()) == ["normal", "reduce"]
    for table in net.alpha_softmax().values():
        assert not table.requires_grad
        torch.testing.assert_close(table.sum(-1), torch.ones(table.shape[0]))


def test_new_copies_alphas_and_costs(net):
    copy = net.new()
    for mine, theirs in zip(copy.alphas(), net.alphas(), strict=True):
        assert torch.equal(mine, theirs) and mine is not theirs
    assert copy.energy is net.energy
    assert copy.reference_energy_uj() == net.reference_energy_uj()


def test_approximate_candidate_computes_through_its_multiplier():
    x = images(seed=4)[:, :1].repeat(1, 4, 1, 1)
    weights = torch.tensor([0.25, 0.75])
    outputs = {}
    for multiplier in ("trunc6", "exact"):
        torch.manual_seed(0)
        op = MixedOp(4, 1, ["none", f"sep_conv_3x3@{multiplier}"])
        outputs[multiplier] = op(x, weights)
    torch.manual_seed(0)
    outputs["float"] = MixedOp(4, 1, ["none", "sep_conv_3x3"])(x, weights)
    assert outputs["trunc6"].shape == outputs["float"].shape == x.shape
    assert not torch.allclose(outputs["trunc6"], outputs["exact"])
    assert not torch.allclose(outputs["trunc6"], outputs["float"])


def test_network_with_approximate_candidates_keeps_full_op_names():
    candidates = ["none", "skip_connect", "sep_conv_3x3", "sep_conv_3x3@trunc6"]
    model = tiny_network(candidates=candidates, layers=2, steps=2, multiplier=2)
    with torch.no_grad():
        model.alphas_normal[:, 3] = 1.0
        model.alphas_reduce[:, 3] = 1.0
    genotype = model.genotype()
    assert {op for op, _ in genotype.normal + genotype.reduce} == {"sep_conv_3x3@trunc6"}
    assert model(images()).shape == (BATCH, NUM_CLASSES)
    assert model.genotype_energy_uj() > 0


def test_bf16_autocast_step_gives_float32_gradients_close_to_fp32():
    """The `--precision bf16` path: lean layers, fast depthwise gradients and approximate convs
    accept bfloat16 activations and hand back float32 gradients near the float32 ones."""
    model = tiny_network(candidates=["skip_connect", "max_pool_3x3", "sep_conv_5x5",
                                     "dil_conv_3x3", "sep_conv_3x3@mitchell"], layers=2)
    x, y = images(), torch.arange(BATCH) % NUM_CLASSES
    grads = []
    for precision in (torch.float32, torch.bfloat16):
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == torch.bfloat16):
            loss = model.loss(x, y)
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()
                                if p.grad is not None]))
    assert grads[1].dtype == torch.float32 and torch.isfinite(grads[1]).all()
    cosine = F.cosine_similarity(grads[0], grads[1], dim=0)
    assert cosine > 0.9  # bfloat16 rounding alone gives 0.94-0.97 on this tiny random net


def test_checkpoints_with_the_old_alpha_keys_still_load():
    """Before the architecture moved out, the tables were the network's own parameters."""
    net, saved = tiny_network(), tiny_network()
    with torch.no_grad():
        saved.alphas_normal.add_(1.0)
    old = {key.removeprefix("architecture."): value for key, value in saved.state_dict().items()}
    assert "alphas_normal" in old
    net.load_state_dict(old)
    assert torch.equal(net.alphas_normal, saved.alphas_normal)


def test_forward_takes_the_weights_in_and_changes_nothing():
    torch.manual_seed(0)
    net = Network(4, NUM_CLASSES, 2, nn.CrossEntropyLoss(), steps=2, multiplier=2,
                  input_size=8, multipliers=("exact", "float"))
    x = images(seed=5)
    genotype = net.genotype()
    one_hot = net(x, net.architecture.one_hot_weights(genotype))
    mixtures = [m for m in net.modules() if isinstance(m, MixedOp)][0]._mixtures.values()
    assert all(mixture.weights is None for mixture in mixtures)  # nothing set on the ops
    torch.testing.assert_close(net(x, net.architecture.one_hot_weights(genotype)), one_hot)
    assert not torch.allclose(net(x), one_hot)
