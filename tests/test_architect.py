"""Architect tests: finite-difference HVP and second-order gradient vs autograd, energy losses,
the PI budget controller, checkpoint state and the NaN guard."""

import math

import pytest
import torch
import torch.nn as nn
from torch.func import functional_call

from architect import (
    Architect,
    BudgetController,
    EnergyLoss,
    EnergySettings,
    NonFiniteLossError,
    finite_difference_hvp,
)
from kernels.lean import set_lean
from model_search import Network

BATCH, NUM_CLASSES = 4, 3


SMOOTH_CANDIDATES = ["none", "skip_connect", "avg_pool_3x3", "sep_conv_3x3", "dil_conv_3x3"]


def tiny_network(criterion=None, candidates=SMOOTH_CANDIDATES, dtype=torch.float64, seed=0,
                 layers=3):
    torch.manual_seed(seed)
    model = Network(4, NUM_CLASSES, layers, criterion or nn.CrossEntropyLoss(), steps=2,
                    multiplier=2, candidates=candidates, input_size=8)
    with torch.no_grad():
        for alpha in model.alphas():
            alpha.normal_(0.0, 0.5)
    return model.to(dtype)


def batch(seed, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, 3, 8, 8, generator=generator, dtype=dtype)
    return x, torch.randint(0, NUM_CLASSES, (BATCH,), generator=generator)


def flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])


def relative_error(actual, expected):
    return float((flat(actual) - flat(expected)).norm() / flat(expected).norm())


# --- second order -----------------------------------------------------------------------
# The DARTS step eps = 0.01 / ||v|| moves w by 0.01 in norm. Within that radius a tiny ReLU net
# crosses activation kinks, where the exact (pointwise) HVP is not the derivative of any
# finite difference; the tight checks therefore swap ReLU for a smooth Softplus, and the real
# ReLU net is checked with a small eps.
def smooth_activations(model):
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(module, name, nn.Softplus(beta=4.0))
    return model


def double_differentiable(model):
    """The lean BatchNorm saves its output only and has no double backward: switch it off."""
    set_lean(model, False)
    return model


def exact_hvp(model, vector, x, y):
    """d/dalpha (dL_train/dw . v) by double backward."""
    grads = torch.autograd.grad(model.loss(x, y), list(model.weights()), create_graph=True)
    dot = sum((g * v).sum() for g, v in zip(grads, vector, strict=True))
    return torch.autograd.grad(dot, list(model.alphas()))


@pytest.mark.parametrize(("smooth", "eps_scale"), [(True, 0.01), (False, 1e-5)])
def test_finite_difference_hvp_matches_autograd_and_restores_weights(smooth, eps_scale):
    model = double_differentiable(tiny_network())
    model = smooth_activations(model) if smooth else model
    x, y = batch(1)
    weights = list(model.weights())
    vector = [torch.randn_like(w) for w in weights]
    before = [w.detach().clone() for w in weights]
    approximate = finite_difference_hvp(model, vector, x, y, eps_scale=eps_scale)
    assert all(torch.equal(w, b) for w, b in zip(weights, before, strict=True))
    assert relative_error(approximate, exact_hvp(model, vector, x, y)) < 1e-3


def exact_unrolled_alpha_gradient(model, train, val, eta):
    """d/dalpha L_val(w - eta * dL_train/dw (w, alpha), alpha) by double backward."""
    named = dict(model.named_weights())
    grads = torch.autograd.grad(model.loss(*train), list(named.values()), create_graph=True)
    unrolled = {name: w - eta * g for (name, w), g in zip(named.items(), grads, strict=True)}
    val_loss = model.criterion(functional_call(model, unrolled, (val[0],)), val[1])
    return torch.autograd.grad(val_loss, list(model.alphas()))


@pytest.mark.parametrize("energy_weight", [0.0, 0.7])
def test_second_order_gradient_matches_autograd_reference(energy_weight):
    model = double_differentiable(smooth_activations(tiny_network()))
    train, val, eta = batch(1), batch(2), 0.05
    w_optimizer = torch.optim.SGD(model.weights(), lr=eta)
    architect = Architect(model, energy_weight=energy_weight, momentum=0.0, weight_decay=0.0)
    before = [w.detach().clone() for w in model.weights()]
    grads, info = architect.arch_gradient(*train, *val, eta, w_optimizer, unrolled=True)
    assert all(torch.equal(w, b) for w, b in zip(model.weights(), before, strict=True))

    reference = exact_unrolled_alpha_gradient(model, train, val, eta)
    energy_grads = torch.autograd.grad(
        energy_weight * (model.expected_energy_uj() - model.fixed_energy_uj())
        / (model.reference_energy_uj() - model.fixed_energy_uj()),
        list(model.alphas()), allow_unused=True)
    reference = [r if e is None else r + e for r, e in zip(reference, energy_grads, strict=True)]
    assert relative_error(grads, reference) < 1e-3
    assert info["energy_weight"] == energy_weight


def test_virtual_step_uses_momentum_buffer_and_weight_decay():
    model = tiny_network()
    train, eta, momentum, weight_decay = batch(1), 0.1, 0.9, 3e-4
    w_optimizer = torch.optim.SGD(model.weights(), lr=eta, momentum=momentum,
                                  weight_decay=weight_decay)
    model.loss(*batch(3)).backward()
    w_optimizer.step()
    w_optimizer.zero_grad()
    architect = Architect(model, momentum=momentum, weight_decay=weight_decay)
    unrolled = architect._virtual_step(*train, eta, w_optimizer)

    named = dict(model.named_weights())
    grads = torch.autograd.grad(model.loss(*train), list(named.values()), allow_unused=True)
    for (name, w), g in zip(named.items(), grads, strict=True):
        g = torch.zeros_like(w) if g is None else g
        buffer = w_optimizer.state[w]["momentum_buffer"]
        expected = w - eta * (momentum * buffer + g + weight_decay * w)
        torch.testing.assert_close(unrolled[name], expected.detach())


def test_second_order_step_runs_with_float32_and_momentum():
    model = tiny_network(dtype=torch.float32)
    w_optimizer = torch.optim.SGD(model.weights(), lr=0.1, momentum=0.9)
    architect = Architect(model, energy_weight=0.5)
    before = [a.detach().clone() for a in model.alphas()]
    info = architect.step(*batch(1, torch.float32), *batch(2, torch.float32), 0.1, w_optimizer,
                          unrolled=True)
    assert set(info) >= {"loss", "val_ce", "energy_term", "expected_energy_uj",
                        "energy_weight"}
    assert all(math.isfinite(v) for v in info.values())
    assert any(not torch.equal(a, b) for a, b in zip(model.alphas(), before, strict=True))
    assert all(p.grad is None for p in model.weights())


# --- energy losses ----------------------------------------------------------------------
def test_energy_loss_values():
    ce, energy = torch.tensor(2.0), torch.tensor(5.0)
    assert float(EnergyLoss("linear", 10.0)(ce, energy, 0.4)) == pytest.approx(2.0 + 0.4 * 0.5)
    assert float(EnergyLoss("log", 10.0)(ce, energy, 0.4)) == pytest.approx(2.0 * 0.5 ** 0.4)
    hinge = EnergyLoss("hinge", 10.0, budget_uj=4.0)
    assert float(hinge(ce, energy, 0.4)) == pytest.approx(2.0 + 0.4 * 0.25)
    assert float(hinge(ce, torch.tensor(3.0), 0.4)) == pytest.approx(2.0)


def test_hinge_without_budget_and_unknown_loss_fail_clearly():
    with pytest.raises(ValueError, match="budget"):
        EnergyLoss("hinge", 10.0)
    with pytest.raises(ValueError, match="linear, log, hinge"):
        EnergyLoss("quadratic", 10.0)
    with pytest.raises(ValueError, match="budget"):
        Architect(tiny_network(), 1.0, EnergySettings("hinge"))
    with pytest.raises(ValueError, match="budget"):
        Architect(tiny_network(), energy=EnergySettings(control="pi"))
    with pytest.raises(ValueError, match="hinge"):
        Architect(tiny_network(), energy=EnergySettings("hinge", 1.0, "pi"))


@pytest.mark.parametrize("energy_loss", ["linear", "log"])
def test_large_energy_weight_lowers_expected_energy(energy_loss):
    model = tiny_network(dtype=torch.float32)
    w_optimizer = torch.optim.SGD(model.weights(), lr=0.1)
    architect = Architect(model, 20.0, EnergySettings(energy_loss), arch_learning_rate=0.1)
    energies = [model.expected_energy_uj().item()]
    for step in range(3):
        info = architect.step(*batch(step, torch.float32), *batch(10 + step, torch.float32),
                              0.1, w_optimizer)
        energies.append(model.expected_energy_uj().item())
    assert info["energy_term"] != 0.0
    assert energies == sorted(energies, reverse=True) and energies[-1] < 0.95 * energies[0]


# --- PI budget controller ---------------------------------------------------------------
def test_controller_raises_lambda_over_budget_and_lowers_it_under():
    controller = BudgetController(budget_uj=10.0, lambda0=0.1, kp=1.0, ki=0.1, margin=0.0)
    over = [controller.update(15.0) for _ in range(3)]
    assert over[0] > 0.1 and over[2] > over[1] > over[0]
    under = [controller.update(9.0) for _ in range(3)]
    assert under[0] < over[2] and under[2] < under[1]
    assert controller.update(1.0) >= 0.0


def test_controller_anti_windup_and_state_dict():
    controller = BudgetController(budget_uj=10.0, kp=0.5, ki=0.5, lambda_max=2.0, margin=0.0)
    for energy_uj in (300.0, *[30.0] * 100):
        assert controller.update(energy_uj) == 2.0  # saturated: the integral does not grow
    assert controller.ki * controller.integral <= 2.0
    assert controller.update(5.0) < 2.0  # no wound-up integral to unwind first
    restored = BudgetController(budget_uj=10.0, kp=0.5, ki=0.5, lambda_max=2.0, margin=0.0)
    restored.load_state_dict(controller.state_dict())
    assert restored.update(12.0) == controller.update(12.0)


def zero_signal_criterion(logits, targets):
    """No accuracy signal: isolates the controller and the energy term."""
    return 0.0 * logits.sum()


def controller_network(criterion):
    """Two reduction cells: the smallest net with a full alpha table, for many-step runs."""
    return tiny_network(criterion=criterion, dtype=torch.float32, layers=2)


def run_arch_steps(architect, steps):
    """First-order steps on one fixed batch of 4x4 images (the controller tests need no data)."""
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(2, 3, 4, 4, generator=generator), torch.tensor([0, 1])
    w_optimizer = torch.optim.SGD(architect.model.weights(), lr=0.1)
    return [architect.step(x, y, x, y, 0.1, w_optimizer) for _ in range(steps)]


def test_pi_controller_drives_derived_genotype_under_budget():
    model = controller_network(zero_signal_criterion)
    expensive = model.candidates.index("sep_conv_3x3")
    with torch.no_grad():
        for alpha in model.alphas():
            alpha[:, expensive] += 2.0
    start_uj = model.genotype_energy_uj()
    budget_uj = 0.5 * (start_uj + model.energy.costs.fixed_uj)
    architect = Architect(model, energy=EnergySettings(budget_uj=budget_uj, control="pi"),
                          arch_learning_rate=0.05)
    history = run_arch_steps(architect, 30)
    assert history[0]["derived_energy_uj"] == pytest.approx(start_uj) and start_uj > budget_uj
    assert history[0]["energy_weight"] > 0.0
    assert max(h["energy_weight"] for h in history) > history[0]["energy_weight"]
    assert model.genotype_energy_uj() <= budget_uj
    assert architect.feasible_genotype()[1] <= budget_uj


def test_pi_controller_holds_budget_against_a_pull_towards_expensive_ops():
    """A stand-in for accuracy pulls every edge towards sep_conv_3x3 (the costliest op); the
    controller must raise lambda until the derived genotype gets under budget and keep it
    mostly there (the derived energy is discrete, so it may flip over briefly)."""
    expensive = SMOOTH_CANDIDATES.index("sep_conv_3x3")
    alphas = []

    def pulled_criterion(logits, targets):
        pull = sum(torch.softmax(alpha, dim=-1)[:, expensive].sum() for alpha in alphas)
        return 0.0 * logits.sum() - 0.1 * pull

    model = controller_network(pulled_criterion)
    alphas += model.alphas()
    budget_uj = 0.5 * (model.genotype_energy_uj() + model.energy.costs.fixed_uj)
    architect = Architect(model, energy=EnergySettings(budget_uj=budget_uj, control="pi"),
                          arch_learning_rate=0.1)
    # 160 steps: the energy prices the derived edges' non-`none` ops, so `none` is no energy
    # sink and lambda must rise until cheaper ops win on the kept edges; the genotype then
    # flips around the budget (measured: over it on 10 of the last 25 steps): mostly under
    history = run_arch_steps(architect, 160)
    over_budget = [h["derived_energy_uj"] > budget_uj for h in history]
    assert over_budget[0] and history[20]["energy_weight"] > history[0]["energy_weight"]
    assert sum(over_budget[-25:]) <= 12
    genotype, energy_uj = architect.feasible_genotype()
    assert energy_uj <= budget_uj
    assert model.genotype_energy_uj(genotype) == pytest.approx(energy_uj)


def test_architect_state_dict_round_trip():
    model = tiny_network(dtype=torch.float32)
    w_optimizer = torch.optim.SGD(model.weights(), lr=0.1)
    architect = Architect(model, 0.2, EnergySettings(budget_uj=1e-9, control="pi"))
    architect.step(*batch(1, torch.float32), *batch(2, torch.float32), 0.1, w_optimizer)
    state = architect.state_dict()
    other = Architect(model, 0.2, EnergySettings(budget_uj=1e-9, control="pi"))
    other.load_state_dict(state)
    assert other.energy_weight == architect.energy_weight
    assert other.controller.state_dict() == architect.controller.state_dict()
    assert other.optimizer.state_dict()["state"].keys() == state["optimizer"]["state"].keys()
    assert other.feasible == architect.feasible


# --- NaN guard --------------------------------------------------------------------------
def test_non_finite_arch_loss_raises_and_leaves_alphas_untouched():
    model = tiny_network(criterion=lambda logits, y: logits.sum() * float("nan"),
                         dtype=torch.float32)
    architect = Architect(model)
    before = [a.detach().clone() for a in model.alphas()]
    w_optimizer = torch.optim.SGD(model.weights(), lr=0.1)
    with pytest.raises(NonFiniteLossError, match="architecture loss is nan"):
        architect.step(*batch(1, torch.float32), *batch(2, torch.float32), 0.1, w_optimizer)
    assert issubclass(NonFiniteLossError, ValueError)
    assert all(torch.equal(a, b) for a, b in zip(model.alphas(), before, strict=True))


def test_lean_batchnorm_refuses_double_backward():
    model = tiny_network()
    with pytest.raises(RuntimeError, match="double backward"):
        grads = torch.autograd.grad(model.loss(*batch(1)), list(model.weights()),
                                    create_graph=True)
        torch.autograd.grad(sum(g.sum() for g in grads), list(model.alphas()))
