"""Multiplier decisions driven by accuracy and energy (issue 27, part 2): on a toy problem
where one layer tolerates a cheap multiplier and the other does not, the search gives the
cheap one to the first and the exact one to the second; sampled single multipliers and the
decay-free Adam group of the multiplier tables."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from approx.mixed import MultiplierMixture, mixed_approx_conv2d
from architect import Architect, alpha_groups
from model_search import Network
from search import sampling

MEMBERS = ("exact", "bam4_4")  # bam4_4: half the energy, 13.6 % mean relative error


class ToyChoice(nn.Module):
    """Two fixed convs side by side, each on a multiplier its logits choose. The task cares
    about `sensitive`'s output 1000x as much as about `tolerant`'s (as a layer whose errors
    the network downstream averages away); the multipliers' energies are their relative
    energies. The conv weights are fixed: only the multiplier choice learns."""

    def __init__(self, sampling_kind: str):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.kernels = {name: torch.randn(6, 4, 3, 3, generator=generator)
                        for name in ("tolerant", "sensitive")}
        self.mixture = MultiplierMixture(MEMBERS)
        # each starts leaning the wrong way: the search has to turn both round
        self.multiplier_alphas_tolerant = nn.Parameter(torch.tensor([0.3, 0.0]))
        self.multiplier_alphas_sensitive = nn.Parameter(torch.tensor([0.0, 0.3]))
        self.energy = torch.tensor([m.relative_energy for m in self.mixture.multipliers])
        self.sampling = sampling_kind

    def named_alphas(self):
        return self.named_parameters()

    def weights_of(self, logits):
        if self.sampling == "gumbel":
            return sampling.straight_through_gumbel(logits)
        return F.softmax(logits, dim=-1)

    def loss(self, x, energy_weight):
        error = {}
        for name, kernel in self.kernels.items():
            logits = getattr(self, f"multiplier_alphas_{name}")
            out = mixed_approx_conv2d(x, kernel, self.mixture, self.weights_of(logits), padding=1)
            exact = F.conv2d(x, kernel, padding=1)
            error[name] = ((out - exact) ** 2).mean() / (exact ** 2).mean()
        energy = sum((F.softmax(a, -1) * self.energy).sum() for a in self.parameters()) / 2
        return 1000 * error["sensitive"] + error["tolerant"] + energy_weight * energy

    def choice(self, name):
        return MEMBERS[int(getattr(self, f"multiplier_alphas_{name}").argmax())]


@pytest.mark.parametrize("sampling_kind", ["gumbel", "mixture"])
def test_the_search_gives_the_cheap_multiplier_to_the_tolerant_layer(sampling_kind):
    torch.manual_seed(0)
    toy = ToyChoice(sampling_kind)
    optimizer = torch.optim.Adam(alpha_groups(toy, 1e-3), lr=0.05, betas=(0.5, 0.999))
    for _ in range(60):
        x = torch.relu(torch.randn(8, 4, 8, 8))
        optimizer.zero_grad()
        toy.loss(x, energy_weight=1.0).backward()
        optimizer.step()
    assert toy.choice("tolerant") == "bam4_4"
    assert toy.choice("sensitive") == "exact"


def test_multiplier_tables_have_no_weight_decay():
    model = Network(4, 10, 2, nn.CrossEntropyLoss(), input_size=8, multipliers=MEMBERS)
    groups = Architect(model, arch_weight_decay=1e-3).optimizer.param_groups
    decay = {id(p): group["weight_decay"] for group in groups for p in group["params"]}
    named = dict(model.named_alphas())
    assert decay[id(named["alphas_normal"])] == 1e-3
    assert decay[id(named["multiplier_alphas_normal"])] == 0.0
    assert len(decay) == len(named)


def test_a_gumbel_forward_runs_one_multiplier_per_conv_op_and_trains_the_logits():
    torch.manual_seed(0)
    model = Network(4, 10, 2, nn.CrossEntropyLoss(), input_size=8, multipliers=MEMBERS,
                    multiplier_sampling="gumbel")
    weights = model.architecture.forward_weights(training=True)
    for cell in weights.values():
        assert torch.equal((cell.multipliers != 0).sum(-1), torch.ones(14, 4, dtype=torch.long))
    x, y = torch.randn(2, 3, 8, 8), torch.tensor([1, 2])
    model.loss(x, y).backward()
    assert float(model.multiplier_alphas_reduce.grad.abs().sum()) > 0  # 2 cells: both reduce
    model.eval()
    strongest = model.architecture.forward_weights(training=False)[True].multipliers
    assert torch.equal(strongest.argmax(-1),
                       model.multiplier_alphas_reduce.detach().argmax(-1))


def test_an_unknown_sampling_is_one_clear_error():
    with pytest.raises(ValueError, match="multiplier sampling 'hard'"):
        Network(4, 10, 2, nn.CrossEntropyLoss(), multipliers=MEMBERS,
                multiplier_sampling="hard")


def test_without_the_energy_term_both_layers_keep_the_exact_multiplier():
    torch.manual_seed(0)
    toy = ToyChoice("gumbel")
    optimizer = torch.optim.Adam(alpha_groups(toy, 1e-3), lr=0.05, betas=(0.5, 0.999))
    for _ in range(40):
        optimizer.zero_grad()
        toy.loss(torch.relu(torch.randn(8, 4, 8, 8)), energy_weight=0.0).backward()
        optimizer.step()
    assert toy.choice("tolerant") == toy.choice("sensitive") == "exact"
