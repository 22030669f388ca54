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
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from runner.errors import EXIT_FAILED, EXIT_OK, exit_status
from runner.files import json_float, json_safe
from temporal.formulas import And, Context, Formula, evaluation_context
from temporal.parser import STLSyntaxError, parse

# the formula classes themselves (Predicate, Always, Until, ...) are in temporal.formulas
__all__ = ["Clause", "Formula", "STLSyntaxError", "Verdict", "explain", "load_trace", "parse",
           "robustness", "robustness_signal", "trace_from_history"]


def _context(spec: str | Formula, trace: Mapping, normalize: bool) -> tuple[Formula, Context]:
    formula = spec if isinstance(spec, Formula) else parse(spec)
    return formula, evaluation_context(formula, trace, normalize)


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
