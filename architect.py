"""The bilevel architecture step (DARTS first and second order) with an energy term.

Architecture loss, with CE the validation cross-entropy, E = E(alpha) the supernet's expected
energy per image (µJ), E_ref its value at uniform alphas, E_fixed the part no alpha controls
(stem, preprocessing, classifier), lambda the energy weight and r = (E - E_fixed) /
(E_ref - E_fixed) the controllable energy relative to its uniform-alpha value (so lambda means
the same on any network, however large its fixed part):

- `linear`: CE + lambda * r (a Lagrangian-style penalty, scale-free through the normaliser).
- `log`:    CE * r ** lambda, i.e. log(loss) = log(CE) + lambda * log(r).
  The multiplicative form of ProxylessNAS (Cai et al., ICLR 2019: CE * a * (log LAT / log T)^b)
  and MnasNet (Tan et al., CVPR 2019: (LAT / T)^w). We use the ratio r rather than a
  ratio of logs, which would depend on the unit of E (log of a value below 1 µJ is negative).
- `hinge`:  CE + lambda * max(0, E / B - 1) with a budget B (µJ): no pressure under budget.

Second order follows DARTS (Liu et al., ICLR 2019, eq. 7-8): a virtual SGD step
w' = w - eta * (momentum * buf + dL_train/dw + wd * w), then
grad = dL_arch/dalpha (at w') - eta * (g+ - g-) / (2 * eps), g+- = dL_train(w +- eps v)/dalpha,
v = dL_arch/dw' (= dL_val/dw' for the additive forms), eps = 0.01 / ||v||. The virtual step
runs through `torch.func.functional_call` (no model copy); w is restored bit-exactly after
the finite-difference perturbation.

With a budget and `budget_control='pi'`, a `BudgetController` adapts lambda every step from
the energy of the genotype that would be derived now (what must end under budget).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch.func import functional_call

import genotypes
from runner.errors import NonFiniteLossError  # one class for every non-finite loss (clean CLI stop)

ENERGY_LOSSES = ("linear", "log", "hinge")
FD_EPS_SCALE = 0.01  # eps = FD_EPS_SCALE / ||v||, as in DARTS
__all__ = ["Architect", "BudgetController", "EnergyLoss", "EnergySettings",
           "NonFiniteLossError", "finite_difference_hvp", "ENERGY_LOSSES"]


@dataclass
class EnergyLoss:
    """The architecture objective combining CE and the expected energy (see module doc)."""

    kind: str
    reference_uj: float
    budget_uj: float | None = None
    fixed_uj: float = 0.0  # the energy no alpha controls

    def __post_init__(self):
        if self.kind not in ENERGY_LOSSES:
            raise ValueError(f"unknown energy loss '{self.kind}'; choose one of "
                             f"{', '.join(ENERGY_LOSSES)}")
        if not self.reference_uj > self.fixed_uj >= 0:
            raise ValueError(f"reference energy ({self.reference_uj} µJ) must exceed the fixed "
                             f"energy ({self.fixed_uj} µJ), which must not be negative")
        if self.kind == "hinge" and self.budget_uj is None:
            raise ValueError("energy loss 'hinge' needs an energy budget in µJ "
                             "(--energy_budget); it penalises max(0, E / budget - 1)")
        if self.budget_uj is not None and not self.budget_uj > 0:
            raise ValueError(f"--energy_budget {self.budget_uj}: an energy budget must be "
                             f"positive (µJ per image); pass a budget above 0")

    def __call__(self, ce, energy_uj, weight: float):
        """Total architecture loss (tensor) for CE, E(alpha) in µJ and lambda."""
        controllable = (energy_uj - self.fixed_uj) / (self.reference_uj - self.fixed_uj)
        if self.kind == "linear":
            return ce + weight * controllable
        if self.kind == "log":
            return ce * controllable ** weight
        return ce + weight * torch.relu(energy_uj / self.budget_uj - 1.0)


class BudgetController:
    """PI controller of lambda driving the derived genotype's energy under a budget B.

    The measured signal is the energy of the genotype derived from the current alphas (what
    must end under budget), not E(alpha): the two differ a lot (E(alpha) mixes all ops on all
    14 edges, the genotype keeps 8 edges and one op each). The derived energy is piecewise
    constant, so it flips around any set point; three choices keep it under B:
    - error = E_derived / B - (1 - margin): aim a little below the budget;
    - a negative error (under budget) is scaled by `backoff` < 1: lambda rises quickly when over
      budget and relaxes slowly when under, so the genotype spends little time over budget
      (overshooting downwards only costs some accuracy);
    - anti-windup by conditional integration: the error is not integrated on a step where it
      would push lambda further past 0 or lambda_max, so nothing has to unwind afterwards
      (back-calculation would let a large proportional term drive the integral far negative).
    Each `update`: integral += e (unless saturating);
    lambda = clip(lambda0 + kp * e + ki * integral, 0, lambda_max).
    """

    def __init__(self, budget_uj, lambda0=0.0, kp=1.0, ki=0.05, lambda_max=10.0, margin=0.02,
                 backoff=0.25):
        if budget_uj is None or not budget_uj > 0:
            raise ValueError(f"budget control needs a positive energy budget in µJ "
                             f"(--energy_budget), got {budget_uj}")
        self.budget_uj = float(budget_uj)
        self.lambda0, self.kp, self.ki = float(lambda0), float(kp), float(ki)
        self.lambda_max, self.margin, self.backoff = float(lambda_max), float(margin), backoff
        self.integral = 0.0
        self.error = 0.0
        self.value = min(max(self.lambda0, 0.0), self.lambda_max)

    def update(self, derived_energy_uj: float) -> float:
        """Feed the derived genotype's energy (µJ); return the new lambda."""
        error = derived_energy_uj / self.budget_uj - (1.0 - self.margin)
        self.error = error if error > 0 else self.backoff * error
        integral = self.integral + self.error
        raw = self.lambda0 + self.kp * self.error + self.ki * integral
        saturating = (raw > self.lambda_max and self.error > 0) or (raw < 0 and self.error < 0)
        if not saturating:
            self.integral = integral
        raw = self.lambda0 + self.kp * self.error + self.ki * self.integral
        self.value = min(max(raw, 0.0), self.lambda_max)
        return self.value

    def state_dict(self) -> dict:
        return {"integral": self.integral, "error": self.error, "value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.integral = float(state["integral"])
        self.error = float(state["error"])
        self.value = float(state["value"])


@dataclass(frozen=True)
class EnergySettings:
    """The energy term's form (`loss`: linear, log or hinge), its budget B in µJ per image
    (hinge, controller) and its budget control (None, 'pi' or a BudgetController)."""

    loss: str = "linear"
    budget_uj: float | None = None
    control: str | BudgetController | None = None


class Architect:
    """Owns the alpha optimiser (Adam, betas (0.5, 0.999)) and computes the arch step.
    `energy_weight`: lambda (the controller's start value under budget control); `momentum`
    and `weight_decay`: the weight optimiser's, for the second-order virtual step;
    `reduce_gradients`: applied to every gradient list of a step (e.g. the mean over
    data-parallel ranks)."""

    def __init__(self, model, energy_weight=0.0, energy: EnergySettings = EnergySettings(), *,
                 arch_learning_rate=3e-4, arch_weight_decay=1e-3, momentum=0.9,
                 weight_decay=3e-4, reduce_gradients=None):
        self.model = model
        self.reduce_gradients = reduce_gradients or (lambda grads: grads)
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.energy_weight = float(energy_weight)
        fixed_uj = model.fixed_energy_uj() if hasattr(model, "fixed_energy_uj") else 0.0
        self.energy_loss = EnergyLoss(energy.loss, model.reference_energy_uj(), energy.budget_uj,
                                      fixed_uj)
        self.controller = _make_controller(energy, energy_weight)
        self.feasible = None  # the last under-budget derived genotype (controlled search)
        self.optimizer = torch.optim.Adam(alpha_groups(model, arch_weight_decay),
                                          lr=arch_learning_rate, betas=(0.5, 0.999))

    # --- the step ----------------------------------------------------------------------
    def step(self, train_x, train_y, val_x, val_y, eta, w_optimizer, unrolled=False) -> dict:
        """One alpha update. Returns floats: `loss` (total architecture loss), `val_ce`,
        `energy_term` (loss - val_ce), `expected_energy_uj` (E(alpha) per image),
        `energy_weight` (lambda used) and, with a controller, `derived_energy_uj`."""
        grads, info = self.arch_gradient(train_x, train_y, val_x, val_y, eta, w_optimizer,
                                         unrolled)
        grads = self.reduce_gradients(grads)
        if not all(torch.isfinite(g).all() for g in grads):
            raise NonFiniteLossError(f"architecture gradient is not finite (loss {info['loss']})"
                                     f"; lower the learning rates or the energy weight")
        self.optimizer.zero_grad(set_to_none=True)
        for alpha, grad in zip(self.model.alphas(), grads, strict=True):
            alpha.grad = grad
        self.optimizer.step()
        return info

    def arch_gradient(self, train_x, train_y, val_x, val_y, eta, w_optimizer, unrolled=False):
        """(gradient per alpha table, info dict); does not change alphas or weights."""
        info = self._update_energy_weight()
        alphas = list(self.model.alphas())
        if not unrolled:
            with weights_frozen(self.model):
                total, info = self._arch_loss(self.model(val_x), val_y, info)
                return _grads_or_zeros(total, alphas), info
        unrolled_weights = self._virtual_step(train_x, train_y, eta, w_optimizer)
        logits = functional_call(self.model, unrolled_weights, (val_x,))
        total, info = self._arch_loss(logits, val_y, info)
        grads = _grads_or_zeros(total, alphas + list(unrolled_weights.values()))
        grads = self.reduce_gradients(grads)
        alpha_grads, vector = grads[:len(alphas)], grads[len(alphas):]
        hessian = finite_difference_hvp(self.model, vector, train_x, train_y)
        return [g - eta * h for g, h in zip(alpha_grads, hessian, strict=True)], info

    def _update_energy_weight(self) -> dict:
        info = {}
        if self.controller is not None:
            genotype = self.model.genotype()
            derived_uj = self.model.genotype_energy_uj(genotype)
            self.energy_weight = self.controller.update(derived_uj)
            if derived_uj <= self.controller.budget_uj:
                self.feasible = {"genotype": genotypes.to_dict(genotype), "energy_uj": derived_uj}
            info["derived_energy_uj"] = derived_uj
        info["energy_weight"] = self.energy_weight
        return info

    def _arch_loss(self, logits, targets, info):
        ce = self.model.criterion(logits, targets)
        energy_uj = self.model.expected_energy_uj()
        total = self.energy_loss(ce, energy_uj, self.energy_weight)
        if not torch.isfinite(total):
            raise NonFiniteLossError(
                f"architecture loss is {total.item()} (val CE {ce.item()}, expected energy "
                f"{energy_uj.item()} µJ, lambda {self.energy_weight}); lower the learning "
                f"rates or the energy weight")
        total_value, ce_value = total.item(), ce.item()
        info.update(loss=total_value, val_ce=ce_value, energy_term=total_value - ce_value,
                    expected_energy_uj=energy_uj.item())
        return total, info

    def _virtual_step(self, train_x, train_y, eta, w_optimizer) -> dict:
        """w' = w - eta * (momentum * buf + dL_train/dw + wd * w), detached leaves by name."""
        named = dict(self.model.named_weights())
        grads = _grads_or_zeros(self.model.loss(train_x, train_y), list(named.values()))
        grads = self.reduce_gradients(grads)
        unrolled = {}
        with torch.no_grad():
            for (name, w), grad in zip(named.items(), grads, strict=True):
                step = grad + self.weight_decay * w
                buffer = w_optimizer.state.get(w, {}).get("momentum_buffer")
                if buffer is not None:
                    step = step + self.momentum * buffer
                unrolled[name] = (w - eta * step).requires_grad_()
        return unrolled

    # --- checkpoints -------------------------------------------------------------------
    def feasible_genotype(self):
        """(genotype, energy µJ) last derived under budget by a controlled search, else None.

        The derived energy is piecewise constant and may sit just over budget when the search
        stops; this is the fallback a search can report instead."""
        if self.feasible is None:
            return None
        return genotypes.from_dict(self.feasible["genotype"]), self.feasible["energy_uj"]

    def state_dict(self) -> dict:
        controller = None if self.controller is None else self.controller.state_dict()
        return {"optimizer": self.optimizer.state_dict(), "controller": controller,
                "energy_weight": self.energy_weight, "feasible": self.feasible}

    def load_state_dict(self, state: dict) -> None:
        if len(state["optimizer"]["param_groups"]) == len(self.optimizer.param_groups):
            self.optimizer.load_state_dict(state["optimizer"])
        # else a checkpoint from before the decay-free multiplier group: Adam restarts its
        # moments (the alphas themselves are in the model's state)
        self.energy_weight = float(state["energy_weight"])
        self.feasible = state.get("feasible")
        if self.controller is not None and state.get("controller") is not None:
            self.controller.load_state_dict(state["controller"])


def alpha_groups(model, weight_decay: float) -> list[dict]:
    """Adam parameter groups of the alphas: the op tables (and betas)
    with `weight_decay` (DARTS's coupled L2), the multiplier tables without: their energy
    gradient is ~1e-5 per step against ~1e-3 for an op logit, and an L2 pull of 1e-3 * alpha
    cancels it once a logit reaches ~0.01 (issue 27), so they would move by noise only."""
    named = list(model.named_alphas())
    groups = [{"params": [p for name, p in named if "multiplier" not in name],
               "weight_decay": weight_decay},
              {"params": [p for name, p in named if "multiplier" in name],
               "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def _make_controller(energy: EnergySettings, energy_weight):
    if energy.control is None or isinstance(energy.control, BudgetController):
        return energy.control
    if energy.control != "pi":
        raise ValueError(f"unknown budget control '{energy.control}'; use None or 'pi'")
    if energy.loss == "hinge":
        raise ValueError("budget control 'pi' needs --energy_loss linear or log: the hinge "
                         "has no gradient once E(alpha) < budget, while the derived genotype "
                         "may still be over it")
    return BudgetController(energy.budget_uj, lambda0=energy_weight)


def _grads_or_zeros(output, inputs):
    """d output / d inputs, with zeros for inputs the output does not depend on (e.g. the
    normal-cell alphas of a net whose cells all reduce)."""
    grads = torch.autograd.grad(output, inputs, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs, strict=True)]


def finite_difference_hvp(model, vector, train_x, train_y, eps_scale=FD_EPS_SCALE):
    """d/dalpha (dL_train/dw . v) by central differences: (g+ - g-) / (2 * eps),
    g+- = dL_train(w +- eps v, alpha)/dalpha, eps = eps_scale / ||v||. Restores w exactly."""
    weights = list(model.weights())
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(v) for v in vector]))
    eps = eps_scale / max(float(norm), 1e-12)
    saved = [w.detach().clone() for w in weights]
    try:
        with weights_frozen(model):
            _perturb(weights, vector, eps)
            grads_plus = _grads_or_zeros(model.loss(train_x, train_y), list(model.alphas()))
            _perturb(weights, vector, -2.0 * eps)
            grads_minus = _grads_or_zeros(model.loss(train_x, train_y), list(model.alphas()))
    finally:
        with torch.no_grad():
            for w, original in zip(weights, saved, strict=True):
                w.copy_(original)
    return [(p - m) / (2.0 * eps) for p, m in zip(grads_plus, grads_minus, strict=True)]


@contextmanager
def weights_frozen(model):
    """The network weights do not require grad within the block, so a backward for the
    alphas only skips every weight gradient (custom autograd Functions, such as the
    approximate convolutions, cannot otherwise tell that a gradient is not wanted)."""
    with _frozen(model.weights()):
        yield


@contextmanager
def alphas_frozen(model):
    """The alphas do not require grad within the block: the weight step's backward then
    computes no alpha gradient, not even inside the mixed-multiplier convolutions."""
    with _frozen(model.alphas()):
        yield


@contextmanager
def _frozen(parameters):
    frozen = [p for p in parameters if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)


def _perturb(weights, vector, scale):
    with torch.no_grad():
        for w, v in zip(weights, vector, strict=True):
            w.add_(v, alpha=scale)
