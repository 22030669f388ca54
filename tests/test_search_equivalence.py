"""The optimised supernet computes what a plain DARTS supernet computes.

`reference_logits` below is the straightforward DARTS forward written out in full: every op
on every edge runs on its own (its own ReLU, `none` included, the aten average pool), terms
are summed in Python, NCHW memory. It reads the parameters of a `model_search.Network`, so
both compute with the same weights; the tests compare losses and the gradients of the weights
and of the architecture parameters, for the weight step and the first- and second-order
architecture steps, in float64.
"""

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from architect import Architect
from genotypes import PRIMITIVES
from model_search import Network

BATCH, NUM_CLASSES, SIZE = 4, 3, 8
ETA, MOMENTUM, WEIGHT_DECAY, ENERGY_WEIGHT = 0.05, 0.9, 3e-4, 0.5




# --- the plain reference ------------------------------------------------------------------
def run_op(op, x):
    """One candidate op exactly as a discrete network runs it (own ReLU, aten pooling)."""
    if isinstance(op, nn.Sequential) and isinstance(op[0], nn.AvgPool2d):
        pool = op[0]
        pooled = F.avg_pool2d(x, pool.kernel_size, pool.stride, pool.padding,
                              count_include_pad=False)
        return op[1](pooled)
    return op(x)


def channel_shuffle(x, groups):
    batch, channels, height, width = x.shape
    return (x.view(batch, groups, channels // groups, height, width).transpose(1, 2)
            .reshape(batch, channels, height, width))


def reference_mixed_op(mixed, x, weights, k):
    """sum_k w_k op_k(x); with partial channels (PC-DARTS) on the first C/k channels only."""
    if k == 1:
        return sum(w * run_op(op, x) for w, op in zip(weights, mixed._ops, strict=True))
    part, rest = x[:, :x.shape[1] // k], x[:, x.shape[1] // k:]
    mixed_part = sum(w * run_op(op, part) for w, op in zip(weights, mixed._ops, strict=True))
    if mixed_part.shape[2] != x.shape[2]:
        rest = F.max_pool2d(rest, 2, 2)
    return channel_shuffle(torch.cat([mixed_part, rest], dim=1), k)


def reference_cell(cell, s0, s1, weights, edge_weights, k):
    states = [cell.preprocess0(s0), cell.preprocess1(s1)]
    offset = 0
    for _ in range(cell._steps):
        node = sum(edge_weights[offset + j]
                   * reference_mixed_op(cell._ops[offset + j], h, weights[offset + j], k)
                   for j, h in enumerate(states))
        offset += len(states)
        states.append(node)
    return torch.cat(states[-cell._multiplier:], dim=1)


def reference_edge_weights(betas, steps):
    """Per node, softmax of the betas of its input edges (PC-DARTS edge normalisation)."""
    if betas is None:
        return None
    parts, start = [], 0
    for i in range(steps):
        parts.append(F.softmax(betas[start:start + 2 + i], dim=-1))
        start += 2 + i
    return torch.cat(parts)


def reference_logits(model, x):
    k = model.partial_channels
    weights = {False: F.softmax(model.alphas_normal, -1), True: F.softmax(model.alphas_reduce, -1)}
    betas = {False: getattr(model, "betas_normal", None),
             True: getattr(model, "betas_reduce", None)}
    s0 = s1 = model.stem(x.contiguous())
    for cell in model.cells:
        edge_weights = reference_edge_weights(betas[cell.reduction], cell._steps)
        if edge_weights is None:
            edge_weights = torch.ones(len(cell._ops), dtype=x.dtype)
        s0, s1 = s1, reference_cell(cell, s0, s1, weights[cell.reduction], edge_weights, k)
    return model.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))


def reference_arch_loss(model, x, y):
    ce = F.cross_entropy(reference_logits(model, x), y)
    controllable = ((model.expected_energy_uj() - model.fixed_energy_uj())
                    / (model.reference_energy_uj() - model.fixed_energy_uj()))
    return ce + ENERGY_WEIGHT * controllable


def reference_second_order(model, w_optimizer, train, val):
    """DARTS eq. 7-8 written out with model copies: unrolled model, then central differences."""
    weights = list(model.weights())
    train_grads = torch.autograd.grad(F.cross_entropy(reference_logits(model, train[0]),
                                                      train[1]), weights)
    unrolled = copy.deepcopy(model)
    with torch.no_grad():
        for w_new, w, g in zip(unrolled.weights(), weights, train_grads, strict=True):
            buffer = w_optimizer.state[w]["momentum_buffer"]
            w_new.copy_(w - ETA * (MOMENTUM * buffer + g + WEIGHT_DECAY * w))
    grads = torch.autograd.grad(reference_arch_loss(unrolled, *val),
                                list(unrolled.alphas()) + list(unrolled.weights()))
    n_alphas = len(list(model.alphas()))
    alpha_grads, vector = grads[:n_alphas], grads[n_alphas:]
    eps = 0.01 / torch.cat([v.flatten() for v in vector]).norm()
    finite = []
    for sign in (1.0, -1.0):
        shifted = copy.deepcopy(model)
        with torch.no_grad():
            for w, v in zip(shifted.weights(), vector, strict=True):
                w.add_(sign * eps * v)
        loss = F.cross_entropy(reference_logits(shifted, train[0]), train[1])
        finite.append(torch.autograd.grad(loss, list(shifted.alphas())))
    return [g - ETA * (p - m) / (2 * eps)
            for g, p, m in zip(alpha_grads, *finite, strict=True)]


# --- fixtures -----------------------------------------------------------------------------
def tiny_network(partial_channels=1, candidates=PRIMITIVES):
    torch.manual_seed(0)
    model = Network(8, NUM_CLASSES, 3, nn.CrossEntropyLoss(), steps=3, multiplier=3,
                    candidates=candidates, input_size=SIZE, partial_channels=partial_channels)
    with torch.no_grad():
        for alpha in model.alphas():
            alpha.normal_(0.0, 0.5)
    return model.double()


def batch(seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, 3, SIZE, SIZE, generator=generator, dtype=torch.float64)
    return x, torch.randint(0, NUM_CLASSES, (BATCH,), generator=generator)


def assert_all_close(actual, expected):
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-7, atol=1e-9)


PARTIAL = [1, 2]


@pytest.mark.parametrize("partial_channels", PARTIAL)
def test_weight_step_loss_and_gradients_match_reference(partial_channels):
    model = tiny_network(partial_channels)
    x, y = batch(1)
    params = list(model.parameters())
    loss = model.loss(x, y)
    reference = F.cross_entropy(reference_logits(model, x), y)
    torch.testing.assert_close(loss, reference, rtol=1e-10, atol=0)
    assert_all_close(torch.autograd.grad(loss, params), torch.autograd.grad(reference, params))


@pytest.mark.parametrize("partial_channels", PARTIAL)
def test_first_order_arch_gradient_matches_reference(partial_channels):
    model = tiny_network(partial_channels)
    architect = Architect(model, energy_weight=ENERGY_WEIGHT)
    train, val = batch(1), batch(2)
    w_optimizer = torch.optim.SGD(model.weights(), ETA, momentum=MOMENTUM)
    grads, info = architect.arch_gradient(*train, *val, ETA, w_optimizer, unrolled=False)
    reference = reference_arch_loss(model, *val)
    assert info["loss"] == pytest.approx(reference.item(), rel=1e-10)
    assert_all_close(grads, torch.autograd.grad(reference, list(model.alphas())))


@pytest.mark.parametrize("partial_channels", PARTIAL)
def test_second_order_arch_gradient_matches_reference(partial_channels):
    model = tiny_network(partial_channels)
    architect = Architect(model, energy_weight=ENERGY_WEIGHT, momentum=MOMENTUM,
                          weight_decay=WEIGHT_DECAY)
    train, val = batch(1), batch(2)
    w_optimizer = torch.optim.SGD(model.weights(), ETA, momentum=MOMENTUM)
    model.loss(*batch(3)).backward()  # one real step: momentum buffers exist
    w_optimizer.step()
    model.zero_grad(set_to_none=True)
    expected = reference_second_order(model, w_optimizer, train, val)
    grads, _ = architect.arch_gradient(*train, *val, ETA, w_optimizer, unrolled=True)
    for a, e in zip(grads, expected, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-8)


def test_approximate_candidates_match_reference():
    """The emulation computes in float32 inside a float64 net: float32 tolerance."""
    candidates = ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3",
                  "sep_conv_3x3@trunc6", "dil_conv_3x3@trunc6"]
    model = tiny_network(candidates=candidates)
    x, y = batch(1)
    params = list(model.parameters())
    loss = model.loss(x, y)
    reference = F.cross_entropy(reference_logits(model, x), y)
    torch.testing.assert_close(loss, reference, rtol=1e-5, atol=1e-6)
    for a, e in zip(torch.autograd.grad(loss, params), torch.autograd.grad(reference, params),
                    strict=True):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-6)
