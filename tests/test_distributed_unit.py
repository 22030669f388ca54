"""runner/distributed.py alone (one process): identity helpers, launch checks, the batch rule,
the DDP view of the supernet, and the architect's gradient hook."""

import pytest
import torch
import torch.nn as nn

from architect import Architect
from model_search import Network
from runner import distributed
from runner.training import AverageMeter

CANDIDATES = ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"]


@pytest.fixture
def supernet():
    torch.manual_seed(0)
    return Network(4, 3, 2, nn.CrossEntropyLoss(), candidates=CANDIDATES, input_size=8)


def test_alone_every_helper_is_the_identity():
    assert not distributed.launched() and not distributed.is_enabled()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    grads = [torch.ones(2), torch.zeros(3)]
    assert distributed.average_gradients(grads) is grads
    assert distributed.mean_floats({"loss": 1.5}) == {"loss": 1.5}
    meter = AverageMeter()
    meter.update(0.5, 4)
    distributed.sum_meters({"acc": meter})
    assert (meter.sum, meter.count) == (2.0, 4)
    assert distributed.broadcast_object("runs/x") == "runs/x"
    assert distributed.agree(lambda: 7) == 7


def test_agree_reraises_this_ranks_own_error():
    with pytest.raises(KeyError, match="boom"):
        distributed.agree(lambda: {}["boom"])


def test_batch_size_is_the_global_batch(monkeypatch):
    assert distributed.shard(16) == {"batch_size": 16, "rank": 0, "world_size": 1}
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    assert distributed.shard(16)["batch_size"] == 8
    with pytest.raises(ValueError, match="multiple of the 2 processes"):
        distributed.shard(15)


def test_a_partial_torchrun_environment_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(ValueError, match="torchrun"):
        distributed.init("cpu")


def test_the_ddp_view_holds_the_weights_but_not_the_alphas(supernet):
    view = distributed.WeightsView(supernet)
    assert {id(p) for p in view.parameters()} == {id(p) for p in supernet.weights()}
    assert not {id(a) for a in supernet.alphas()} & {id(p) for p in view.parameters()}
    x = torch.randn(2, 3, 8, 8)
    supernet.eval()
    assert torch.equal(view(x), supernet(x))


@pytest.mark.parametrize("unrolled, calls", [(False, 1), (True, 3)])
def test_the_architect_reduces_every_gradient_list(supernet, unrolled, calls):
    seen = []

    def record(grads):
        seen.append(len(grads))
        return grads

    architect = Architect(supernet, reduce_gradients=record)
    w_optimizer = torch.optim.SGD(supernet.weights(), 0.1, momentum=0.9)
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 3, (4,))
    architect.step(x, y, x, y, 0.1, w_optimizer, unrolled=unrolled)
    n_weights, n_alphas = len(list(supernet.weights())), 2
    expected = [n_weights, n_alphas + n_weights, n_alphas] if unrolled else [n_alphas]
    assert seen == expected and len(seen) == calls
