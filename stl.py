"""Signal Temporal Logic (STL) specs over per-epoch training traces.

A trace maps signal names (``test_acc``, ``energy_uj``, ``train/loss``) to equal-length
sequences, one value per epoch; time steps are list indices 0..n-1.

Syntax, loosest to tightest binding::

    phi -> psi   phi implies psi      (right-associative)
    phi | psi    phi or psi
    phi & psi    phi and psi
    phi U[a,b] psi   phi until psi    (bound optional)
    !phi  not phi   G[a,b] phi  always phi   F[a,b] phi  eventually phi
    signal <= 3.5   (also <, >, >=, and ``0.8 <= test_acc``),  true,  false,  ( phi )

Bounds ``[a,b]`` or ``[a:b]`` count steps (integers, 0 <= a <= b); ``[a,inf]`` or no bound
reaches to the end of the trace. Signal names match ``[A-Za-z_][A-Za-z0-9_./]*``; the words
``G F U not and or implies always eventually until true false`` are reserved.

Discrete-time quantitative semantics (Donze and Maler), robustness rho at step t:

- ``x >= c`` and ``x > c``: ``x[t] - c``; ``x <= c`` and ``x < c``: ``c - x[t]``. With
  ``normalize=True`` each margin is divided by ``|c|`` (no division when ``c == 0``).
- ``!`` negates, ``&`` is min, ``|`` is max, ``phi -> psi`` is ``max(-phi, psi)``.
- ``G[a,b] phi`` is the min of phi over steps ``[t+a, t+b]``, ``F[a,b]`` the max; windows are
  clipped to the trace end. An empty window (``t+a`` past the end) gives ``G = +inf`` and
  ``F = -inf`` (vacuous truth, impossible witness).
- ``phi U[a,b] psi`` is the max over ``t'`` in ``[t+a, t+b]`` (clipped) of
  ``min(psi(t'), min of phi over [t, t'))``: phi must hold from t up to, but excluding,
  the step where psi holds; an empty phi window counts as +inf, an empty t' window gives -inf.

A spec is satisfied iff its robustness at t=0 is ``>= 0``. ``explain`` splits the top-level
``&`` chain into clauses and reports, for each, the step and predicate whose margin equals
the clause's robustness (following argmin/argmax through the formula).

Command line: ``python stl.py --spec "G(energy_uj <= 10) & F(test_acc >= 0.8)"
--trace RUN_DIR [--stl_normalize] [--strict] [--json]``; exit 0, 1 (violated with --strict),
or 2 (bad spec or trace, one-line message on stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from runner.errors import EXIT_FAILED, EXIT_OK, exit_status
from runner.files import json_float, json_safe

IMPLIES, OR, AND, UNTIL, UNARY, ATOM = range(1, 7)  # precedence levels
FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


class STLSyntaxError(ValueError):
    """A malformed STL spec; the message names the column and the expected token."""


# ----------------------------------------------------------------------------- formulas
class Formula:
    """Base of the formula tree; ``str(formula)`` is canonical, parseable text."""

    precedence = ATOM

    def __str__(self) -> str:
        return self.text()

    def text(self) -> str:
        raise NotImplementedError

    def evaluate(self, ctx: _Context) -> np.ndarray:
        """Robustness at every step 0..n-1 (children read through ``ctx.rho``)."""
        raise NotImplementedError

    def witness(self, ctx: _Context, t: int) -> tuple[int | None, Formula | None]:
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

    def evaluate(self, ctx: _Context) -> np.ndarray:
        return np.full(ctx.n, math.inf if self.value else -math.inf)

    def witness(self, ctx: _Context, t: int) -> tuple[int | None, Formula | None]:
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

    def evaluate(self, ctx: _Context) -> np.ndarray:
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

    def evaluate(self, ctx: _Context) -> np.ndarray:
        return -ctx.rho(self.child)

    def witness(self, ctx: _Context, t: int) -> tuple[int | None, Formula | None]:
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

    def witness(self, ctx: _Context, t: int) -> tuple[int | None, Formula | None]:
        left, right = self.operand_values(ctx)
        chosen = self.left if left[t] == ctx.rho(self)[t] else self.right
        return chosen.witness(ctx, t)

    def operand_values(self, ctx: _Context) -> tuple[np.ndarray, np.ndarray]:
        return ctx.rho(self.left), ctx.rho(self.right)


class And(_Binary):
    precedence, symbol = AND, "&"

    def evaluate(self, ctx: _Context) -> np.ndarray:
        return np.minimum(*self.operand_values(ctx))


class Or(_Binary):
    precedence, symbol = OR, "|"

    def evaluate(self, ctx: _Context) -> np.ndarray:
        return np.maximum(*self.operand_values(ctx))


class Implies(_Binary):
    precedence, symbol = IMPLIES, "->"

    def operand_precedence(self) -> tuple[int, int]:
        return IMPLIES + 1, IMPLIES

    def operand_values(self, ctx: _Context) -> tuple[np.ndarray, np.ndarray]:
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

    def evaluate(self, ctx: _Context) -> np.ndarray:
        return _window_reduce(ctx.rho(self.child), self.lo, self.hi, self.reduce, self.empty)

    def witness(self, ctx: _Context, t: int) -> tuple[int | None, Formula | None]:
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

    def evaluate(self, ctx: _Context) -> np.ndarray:
        phi, psi = ctx.rho(self.left), ctx.rho(self.right)
        result, phi_prefix = np.full(ctx.n, -math.inf), np.full(ctx.n, math.inf)
        for offset in range(_last_offset(self.hi, ctx.n) + 1):  # phi_prefix: min phi[t, t+k)
            if offset >= self.lo:
                candidate = np.minimum(_shift(psi, offset, -math.inf), phi_prefix)
                result = np.maximum(result, candidate)
            phi_prefix = np.minimum(phi_prefix, _shift(phi, offset, math.inf))
        return result

    def witness(self, ctx: _Context, t: int) -> tuple[int | None, Formula | None]:
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


# ----------------------------------------------------------------------------- evaluation
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


class _Context:
    """Signals as float arrays plus a cache of each subformula's robustness signal."""

    def __init__(self, signals: dict[str, np.ndarray], n: int, normalize: bool):
        self.signals, self.n, self.normalize = signals, n, normalize
        self.cache: dict[Formula, np.ndarray] = {}

    def rho(self, formula: Formula) -> np.ndarray:
        if formula not in self.cache:
            self.cache[formula] = formula.evaluate(self)
        return self.cache[formula]


def _context(spec: str | Formula, trace: Mapping, normalize: bool) -> tuple[Formula, _Context]:
    formula = spec if isinstance(spec, Formula) else parse(spec)
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
    return formula, _Context(signals, n, normalize)


def _as_floats(name: str, values) -> np.ndarray:
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"STL signal {name!r} is not numeric") from None


def robustness_signal(spec: str | Formula, trace: Mapping, normalize: bool = False):
    """Robustness at every step 0..n-1 as a numpy array."""
    formula, ctx = _context(spec, trace, normalize)
    return ctx.rho(formula).copy()


def robustness(spec: str | Formula, trace: Mapping, t: int = 0, normalize: bool = False) -> float:
    """Robustness of ``spec`` on ``trace`` at step ``t`` (>= 0 means satisfied)."""
    formula, ctx = _context(spec, trace, normalize)
    if not 0 <= t < ctx.n:
        raise ValueError(f"STL step t={t} is outside the trace (0..{ctx.n - 1})")
    return float(ctx.rho(formula)[t])


# ----------------------------------------------------------------------------- parsing
_TOKEN = re.compile(
    r"(?P<space>\s+)|(?P<op>->|<=|>=|&&|\|\||[<>!&|()\[\],:])"
    r"|(?P<num>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<ident>[A-Za-z_][A-Za-z0-9_./]*)"
)
_KEYWORDS = {
    "not": "!",
    "and": "&",
    "&&": "&",
    "or": "|",
    "||": "|",
    "implies": "->",
    "always": "G",
    "eventually": "F",
    "until": "U",
    "G": "G",
    "F": "F",
    "U": "U",
    "true": "true",
    "false": "false",
}


@dataclass(frozen=True)
class _Token:
    kind: str  # op, num, ident, end, bad (an unknown character)
    text: str
    column: int  # 1-based

    def describe(self) -> str:
        return "end of input" if self.kind == "end" else repr(self.text)


class _Parser:
    """Recursive descent, one method per precedence level."""

    def __init__(self, spec: str):
        self.spec = spec
        self.tokens = self.tokenize()
        self.index = 0

    def fail(self, expected: str, token: _Token | None = None):
        token = token or self.tokens[self.index]
        spec = " ".join(self.spec.splitlines())
        raise STLSyntaxError(
            f'bad STL spec "{spec}": expected {expected} '
            f"at column {token.column} (found {token.describe()})"
        )

    def tokenize(self) -> list[_Token]:
        tokens, position = [], 0
        while position < len(self.spec):
            match = _TOKEN.match(self.spec, position)
            if match is None:  # the parser reports it with what it expected there
                tokens.append(_Token("bad", self.spec[position], position + 1))
                position += 1
                continue
            kind, text = match.lastgroup, match.group()
            if (kind == "ident" and text in _KEYWORDS) or text in ("&&", "||"):
                kind, text = "op", _KEYWORDS[text]
            if kind != "space":
                tokens.append(_Token(kind, text, position + 1))
            position = match.end()
        return tokens + [_Token("end", "", len(self.spec) + 1)]

    def accept(self, *texts: str) -> _Token | None:
        token = self.tokens[self.index]
        if token.kind == "op" and token.text in texts:
            self.index += 1
            return token
        return None

    def take(self, kind: str, expected: str) -> _Token:
        token = self.tokens[self.index]
        if token.kind != kind:
            self.fail(expected)
        self.index += 1
        return token

    def parse(self) -> Formula:
        formula = self.implication()
        if self.tokens[self.index].kind != "end":
            self.fail("an operator (&, |, ->, U) or end of input")
        return formula

    def implication(self) -> Formula:
        left = self.disjunction()
        return Implies(left, self.implication()) if self.accept("->") else left

    def disjunction(self) -> Formula:
        formula = self.conjunction()
        while self.accept("|"):
            formula = Or(formula, self.conjunction())
        return formula

    def conjunction(self) -> Formula:
        formula = self.until()
        while self.accept("&"):
            formula = And(formula, self.until())
        return formula

    def until(self) -> Formula:
        formula = self.unary()
        while self.accept("U"):
            lo, hi = self.bound()
            formula = Until(formula, self.unary(), lo, hi)
        return formula

    def unary(self) -> Formula:
        if self.accept("!"):
            return Not(self.unary())
        token = self.accept("G", "F")
        if token is None:
            return self.atom()
        lo, hi = self.bound()
        return (Always if token.text == "G" else Eventually)(self.unary(), lo, hi)

    def bound(self) -> tuple[int, int | None]:
        if not self.accept("["):
            return 0, None
        lo = self.integer("a lower bound (integer >= 0)", 0)
        if not self.accept(",", ":"):
            self.fail("',' or ':'")
        token = self.tokens[self.index]
        if token.kind == "ident" and token.text == "inf":
            self.index, hi = self.index + 1, None
        else:
            hi = self.integer(f"an upper bound (integer >= {lo} or inf)", lo)
        if not self.accept("]"):
            self.fail("']'")
        return lo, hi

    def integer(self, expected: str, minimum: int) -> int:
        token = self.tokens[self.index]
        if token.kind != "num" or not token.text.isdigit() or int(token.text) < minimum:
            self.fail(expected)
        self.index += 1
        return int(token.text)

    def atom(self) -> Formula:
        if self.accept("("):
            formula = self.implication()
            if not self.accept(")"):
                self.fail("')'")
            return formula
        constant = self.accept("true", "false")
        if constant:
            return Const(constant.text == "true")
        token = self.tokens[self.index]
        if token.kind == "num":  # constant <= signal, read as signal >= constant
            self.index += 1
            op = FLIPPED[self.comparison()]
            return Predicate(self.take("ident", "a signal name").text, op, float(token.text))
        signal = self.take("ident", "a formula (signal comparison, '(', '!', G, F, true)")
        op = self.comparison()
        return Predicate(signal.text, op, float(self.take("num", "a number").text))

    def comparison(self) -> str:
        token = self.accept("<", "<=", ">", ">=")
        if token is None:
            self.fail("a comparison (<, <=, >, >=)")
        return token.text


def parse(spec: str) -> Formula:
    """Parse STL text into a Formula; raise STLSyntaxError (a ValueError) on bad input."""
    if not isinstance(spec, str):
        raise STLSyntaxError(f"STL spec must be a string, got {type(spec).__name__}")
    return _Parser(spec).parse()


# ----------------------------------------------------------------------------- explanation
@dataclass
class Clause:
    """One top-level conjunct: ``step`` and ``decided_by`` locate the deciding margin."""

    text: str
    robustness: float
    satisfied: bool
    step: int | None  # None when decided by an empty window
    decided_by: str | None


@dataclass
class Verdict:
    spec: str
    satisfied: bool  # robustness >= 0
    robustness: float
    normalized: bool
    clauses: list[Clause]

    def to_dict(self) -> dict:
        """JSON-able dict in the project's convention (runner.files): an infinite robustness
        becomes the string "inf" / "-inf"."""
        return json_safe(asdict(self))

    def format(self) -> str:
        scale = "normalized margins" if self.normalized else "raw margins"
        lines = [
            f"{'SATISFIED' if self.satisfied else 'VIOLATED'}: {self.spec}",
            f"robustness: {self.robustness:.6g} ({scale})",
        ]
        width = max(len(clause.text) for clause in self.clauses)
        for clause in self.clauses:
            where = (
                "empty window"
                if clause.step is None
                else (f"at step {clause.step} ({clause.decided_by})")
            )
            lines.append(
                f"  {'ok  ' if clause.satisfied else 'FAIL'}  {clause.text:<{width}}"
                f"  robustness {clause.robustness:.6g} {where}"
            )
        return "\n".join(lines)


def _conjuncts(formula: Formula) -> list[Formula]:
    if isinstance(formula, And):
        return _conjuncts(formula.left) + _conjuncts(formula.right)
    return [formula]


def explain(spec: str | Formula, trace: Mapping, normalize: bool = False, t: int = 0) -> Verdict:
    """Verdict at step ``t`` with one Clause per top-level ``&`` conjunct."""
    formula, ctx = _context(spec, trace, normalize)
    clauses = []
    for conjunct in _conjuncts(formula):
        value = float(ctx.rho(conjunct)[t])
        step, decider = conjunct.witness(ctx, t)
        clauses.append(
            Clause(
                str(conjunct), value, value >= 0, step, None if decider is None else str(decider)
            )
        )
    value = float(ctx.rho(formula)[t])
    return Verdict(str(formula), value >= 0, value, normalize, clauses)


# ----------------------------------------------------------------------------- traces and CLI
def trace_from_history(records) -> dict[str, list[float]]:
    """Per-epoch records -> trace of the keys that are numeric in every record."""
    if not isinstance(records, list) or not records:
        raise ValueError("history is empty: expected a non-empty list of per-epoch records")
    if not all(isinstance(record, dict) for record in records):
        raise ValueError("history records must be JSON objects (dicts)")

    def numeric(key):
        return all(_trace_number(record.get(key)) is not None for record in records)

    return {key: [_trace_number(record[key]) for record in records] for key in records[0]
            if numeric(key)}


def _trace_number(value) -> float | None:
    """A history value as a float: a JSON number, or an infinity written as "inf" / "-inf"
    (runner.files); None for anything else (a null, a text)."""
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return json_float(value) if isinstance(value, str) else None
    except ValueError:
        return None


def load_trace(path: str | Path) -> dict[str, list[float]]:
    """Read a history.json (list of records or dict of lists) or a run directory's."""
    path = Path(path)
    if path.is_dir():
        path = path / "history.json"
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"trace {path} is not valid JSON: {error}") from None
    except OSError as error:
        raise ValueError(f"cannot read trace {path}: {error.strerror or error}") from None
    if isinstance(data, dict):
        return {key: values for key, values in data.items() if isinstance(values, list)}
    return trace_from_history(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check an STL spec against a training trace.")
    parser.add_argument("--spec", required=True, help="STL formula, e.g. 'G(energy_uj <= 10)'")
    parser.add_argument("--trace", required=True, help="history.json or a run directory")
    parser.add_argument(
        "--stl_normalize",
        action="store_true",
        help="divide each predicate margin by |threshold| (default: off)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when violated")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    args = parser.parse_args(argv)
    return exit_status(lambda: check_trace(args))


def check_trace(args: argparse.Namespace) -> int:
    """Print the verdict of --spec on --trace; the exit status of `main`."""
    verdict = explain(args.spec, load_trace(args.trace), normalize=args.stl_normalize)
    print(json.dumps(verdict.to_dict()) if args.json else verdict.format())
    return EXIT_FAILED if args.strict and not verdict.satisfied else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
