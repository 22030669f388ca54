"""STL formulas and their discrete-time quantitative semantics (Donze and Maler), as stated
in stl.py: each formula computes its robustness signal over a whole trace at once (numpy), and
names the step and predicate that decide it (its witness)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

IMPLIES, OR, AND, UNTIL, UNARY, ATOM = range(1, 7)  # precedence levels (loosest first)


class Formula:
    """Base of the formula tree; ``str(formula)`` is canonical, parseable text."""

    precedence = ATOM

    def __str__(self) -> str:
        return self.text()

    def text(self) -> str:
        raise NotImplementedError

    def evaluate(self, ctx: Context) -> np.ndarray:
        """Robustness at every step 0..n-1 (children read through ``ctx.rho``)."""
        raise NotImplementedError

    def witness(self, ctx: Context, t: int) -> tuple[int | None, Formula | None]:
        """(step, predicate) whose margin is the robustness at ``t``; (None, None) if empty."""
        raise NotImplementedError

    def children(self) -> list[Formula]:
        return [value for value in vars(self).values() if isinstance(value, Formula)]

    def signals(self) -> set[str]:
        return set().union(*(child.signals() for child in self.children()))

    def wrap(self, child: Formula, min_precedence: int) -> str:
        return child.text() if child.precedence >= min_precedence else f"({child})"


@dataclass(frozen=True)
class Const(Formula):
    value: bool

    def text(self) -> str:
        return "true" if self.value else "false"

    def evaluate(self, ctx: Context) -> np.ndarray:
        return np.full(ctx.n, math.inf if self.value else -math.inf)

    def witness(self, ctx: Context, t: int) -> tuple[int | None, Formula | None]:
        return t, self

@dataclass(frozen=True)
class Predicate(Formula):
    signal: str
    op: str  # one of < <= > >=
    threshold: float

    def text(self) -> str:
        return f"{self.signal} {self.op} {_format_number(self.threshold)}"

    def signals(self) -> set[str]:
        return {self.signal}

    def evaluate(self, ctx: Context) -> np.ndarray:
        values = ctx.signals[self.signal]
        margin = values - self.threshold if ">" in self.op else self.threshold - values
        if ctx.normalize and self.threshold != 0:
            margin = margin / abs(self.threshold)
        return margin

    witness = Const.witness

@dataclass(frozen=True)
class Not(Formula):
    child: Formula
    precedence = UNARY

    def text(self) -> str:
        return f"!({self.child})"

    def evaluate(self, ctx: Context) -> np.ndarray:
        return -ctx.rho(self.child)

    def witness(self, ctx: Context, t: int) -> tuple[int | None, Formula | None]:
        return self.child.witness(ctx, t)

@dataclass(frozen=True)
class _Binary(Formula):
    left: Formula
    right: Formula
    symbol = ""

    def text(self) -> str:
        left_min, right_min = self.operand_precedence()
        return f"{self.wrap(self.left, left_min)} {self.symbol} {self.wrap(self.right, right_min)}"

    def operand_precedence(self) -> tuple[int, int]:  # left-associative by default
        return self.precedence, self.precedence + 1

    def witness(self, ctx: Context, t: int) -> tuple[int | None, Formula | None]:
        left, right = self.operand_values(ctx)
        chosen = self.left if left[t] == ctx.rho(self)[t] else self.right
        return chosen.witness(ctx, t)

    def operand_values(self, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
        return ctx.rho(self.left), ctx.rho(self.right)


class And(_Binary):
    precedence, symbol = AND, "&"

    def evaluate(self, ctx: Context) -> np.ndarray:
        return np.minimum(*self.operand_values(ctx))


class Or(_Binary):
    precedence, symbol = OR, "|"

    def evaluate(self, ctx: Context) -> np.ndarray:
        return np.maximum(*self.operand_values(ctx))


class Implies(_Binary):
    precedence, symbol = IMPLIES, "->"

    def operand_precedence(self) -> tuple[int, int]:
        return IMPLIES + 1, IMPLIES

    def operand_values(self, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
        return -ctx.rho(self.left), ctx.rho(self.right)

    evaluate = Or.evaluate


@dataclass(frozen=True)
class _Temporal(Formula):
    child: Formula
    lo: int = 0
    hi: int | None = None  # None: to the end of the trace
    precedence, symbol, reduce, empty = UNARY, "", np.minimum, math.inf

    def text(self) -> str:
        return f"{self.symbol}{_bound_text(self.lo, self.hi)}({self.child})"

    def evaluate(self, ctx: Context) -> np.ndarray:
        return _window_reduce(ctx.rho(self.child), self.lo, self.hi, self.reduce, self.empty)

    def witness(self, ctx: Context, t: int) -> tuple[int | None, Formula | None]:
        steps = _window_steps(t, self.lo, self.hi, ctx.n)
        if not steps:
            return None, None
        pick = np.argmin if self.reduce is np.minimum else np.argmax
        return self.child.witness(ctx, steps[int(pick(ctx.rho(self.child)[steps]))])


class Always(_Temporal):
    symbol, reduce, empty = "G", np.minimum, math.inf


class Eventually(_Temporal):
    symbol, reduce, empty = "F", np.maximum, -math.inf


@dataclass(frozen=True)
class Until(Formula):
    left: Formula
    right: Formula
    lo: int = 0
    hi: int | None = None
    precedence = UNTIL

    def text(self) -> str:
        return f"({self.left}) U{_bound_text(self.lo, self.hi)} ({self.right})"

    def evaluate(self, ctx: Context) -> np.ndarray:
        phi, psi = ctx.rho(self.left), ctx.rho(self.right)
        result, phi_prefix = np.full(ctx.n, -math.inf), np.full(ctx.n, math.inf)
        for offset in range(_last_offset(self.hi, ctx.n) + 1):  # phi_prefix: min phi[t, t+k)
            if offset >= self.lo:
                candidate = np.minimum(_shift(psi, offset, -math.inf), phi_prefix)
                result = np.maximum(result, candidate)
            phi_prefix = np.minimum(phi_prefix, _shift(phi, offset, math.inf))
        return result

    def witness(self, ctx: Context, t: int) -> tuple[int | None, Formula | None]:
        steps = _window_steps(t, self.lo, self.hi, ctx.n)
        if not steps:
            return None, None
        phi, psi = ctx.rho(self.left), ctx.rho(self.right)
        prefix = [min(phi[t:step], default=math.inf) for step in steps]
        best = int(np.argmax(np.minimum(psi[steps], prefix)))
        if psi[steps[best]] <= prefix[best] or steps[best] == t:
            return self.right.witness(ctx, steps[best])
        return self.left.witness(ctx, t + int(np.argmin(phi[t : steps[best]])))


def _format_number(value: float) -> str:
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def _bound_text(lo: int, hi: int | None) -> str:
    return "" if (lo, hi) == (0, None) else f"[{lo},{'inf' if hi is None else hi}]"


def _last_offset(hi: int | None, n: int) -> int:
    return n - 1 if hi is None else min(hi, n - 1)


def _window_steps(t: int, lo: int, hi: int | None, n: int) -> list[int]:
    return list(range(t + lo, min(t + _last_offset(hi, n), n - 1) + 1))


def _shift(values: np.ndarray, offset: int, fill: float) -> np.ndarray:
    """out[t] = values[t + offset], ``fill`` past the end."""
    return np.concatenate([values[offset:], np.full(min(offset, len(values)), fill)])


def _window_reduce(values, lo: int, hi: int | None, ufunc, empty: float) -> np.ndarray:
    """out[t] = ufunc over values[t+lo .. t+hi] clipped to the end; ``empty`` if no step."""
    last = _last_offset(hi, len(values))
    if lo > last:
        return np.full(len(values), empty)
    shifted = _shift(values, lo, empty)  # ``empty`` is the identity of ``ufunc``
    if hi is None:
        return ufunc.accumulate(shifted[::-1])[::-1]
    width = last - lo + 1
    padded = np.concatenate([shifted, np.full(width - 1, empty)])
    return ufunc.reduce(sliding_window_view(padded, width), axis=1)


class Context:
    """Signals as float arrays plus a cache of each subformula's robustness signal."""

    def __init__(self, signals: dict[str, np.ndarray], n: int, normalize: bool):
        self.signals, self.n, self.normalize = signals, n, normalize
        self.cache: dict[Formula, np.ndarray] = {}

    def rho(self, formula: Formula) -> np.ndarray:
        if formula not in self.cache:
            self.cache[formula] = formula.evaluate(self)
        return self.cache[formula]


def evaluation_context(formula: Formula, trace: Mapping, normalize: bool) -> Context:
    """The signals of `trace` that `formula` reads, checked (equal non-zero lengths, known
    names, numeric values), with an empty cache of subformula robustness."""
    if not isinstance(trace, Mapping) or not trace:
        raise ValueError("STL trace is empty: expected a mapping of signal name -> values")
    try:
        lengths = {name: len(values) for name, values in trace.items()}
    except TypeError:
        raise ValueError("STL trace values must be sequences, one value per step") from None
    if len(set(lengths.values())) != 1:
        raise ValueError(f"STL trace signals have unequal lengths: {lengths}")
    n = next(iter(lengths.values()))
    if n == 0:
        raise ValueError("STL trace has no time steps (its signals are empty)")
    missing = sorted(formula.signals() - set(trace))
    if missing:
        available = ", ".join(sorted(map(str, trace)))
        raise ValueError(f"unknown signal {missing[0]!r} in STL spec; available: {available}")
    signals = {name: _as_floats(name, trace[name]) for name in formula.signals()}
    return Context(signals, n, normalize)


def _as_floats(name: str, values) -> np.ndarray:
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"STL signal {name!r} is not numeric") from None
