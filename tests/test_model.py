"""Discrete networks: every published genotype builds, trains a step, and DARTS_V2 has the
published parameter count."""

import pytest
import torch
import torch.nn as nn

import genotypes
from model import NetworkCIFAR, NetworkImageNet


def count_params(module, exclude=None):
    skip = {id(p) for p in exclude.parameters()} if exclude is not None else set()
    return sum(p.numel() for p in module.parameters() if id(p) not in skip)


@pytest.mark.parametrize("name", list(genotypes.PUBLISHED))
def test_published_genotypes_run_forward_backward(name):
    model = NetworkCIFAR(8, 10, 5, True, genotypes.PUBLISHED[name])
    model.drop_path_prob = 0.2
    logits, logits_aux = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == logits_aux.shape == (2, 10)
    (logits.sum() + logits_aux.sum()).backward()
    model.eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_darts_v2_has_the_published_parameter_count():
    model = NetworkCIFAR(36, 10, 20, True, genotypes.DARTS_V2)
    params_m = count_params(model, exclude=model.auxiliary_head) / 1e6
    assert params_m == pytest.approx(3.3, abs=0.05)   # DARTS paper, Table 1: 3.3 M


def test_multiplier_ops_run_on_their_multiplier():
    from approx import ApproxConv2d

    normal = genotypes.DARTS_V2.normal
    approx_cell = [(f"{op}@trunc6" if "conv" in op else op, i) for op, i in normal]
    model = NetworkCIFAR(8, 10, 3, False, genotypes.DARTS_V2._replace(normal=approx_cell,
                                                                       fixed="float"))
    layers = [m for m in model.modules() if isinstance(m, ApproxConv2d)]
    assert layers and all(m.multiplier.name == "trunc6" for m in layers)


def test_every_conv_on_the_fixed_multiplier():
    """`DARTS_V2@trunc6`: stem, preprocess, FactorizedReduce and classifier run on it too."""
    from approx import ApproxConv2d

    model = NetworkCIFAR(8, 10, 3, False, genotypes.published("DARTS_V2@trunc6"))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(isinstance(m, ApproxConv2d) and m.multiplier.name == "trunc6" for m in convs)
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    assert model.int8_deployed and model(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    old = NetworkCIFAR(8, 10, 3, False, genotypes.DARTS_V2._replace(fixed="float"))
    assert isinstance(old.stem[0], nn.Conv2d) and not isinstance(old.stem[0], ApproxConv2d)
    assert isinstance(old.classifier, nn.Linear) and not old.int8_deployed


def test_imagenet_network_runs():
    model = NetworkImageNet(8, 5, 3, True, genotypes.DARTS_V2)
    logits, logits_aux = model(torch.randn(2, 3, 224, 224))
    assert logits.shape == logits_aux.shape == (2, 5)


def test_channels_last_layout_computes_the_same_network():
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    results = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        model = NetworkCIFAR(8, 10, 5, True, genotypes.PDARTS._replace(fixed="float"),
                             channels_last=channels_last)
        model = model.double()
        logits, logits_aux = model(x)
        (logits.sum() + logits_aux.sum()).backward()
        results.append((logits, [p.grad for p in model.parameters()]))
    (logits_ref, grads_ref), (logits, grads) = results
    torch.testing.assert_close(logits, logits_ref)
    for grad, grad_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(grad, grad_ref)
