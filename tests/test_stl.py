"""Tests for stl.py: robustness against a brute-force reference, parsing, explanations."""

import json
import math
import random

import numpy as np
import pytest

import stl

SIGNALS = ["a", "b_2", "train/loss", "x.y"]
INF = math.inf


# ----------------------------------------------------------------------------- reference
# Formulas are tuples, built and rendered here, independent of stl's own tree:
#   ("pred", signal, op, c)  ("not", f)  ("and"|"or"|"implies", f, g)
#   ("G"|"F", lo, hi, f)  ("U", lo, hi, f, g)      hi None = to the end of the trace
def reference(formula, trace, t, normalize):
    """Direct recursive definition of discrete-time robustness at step t."""
    n = len(next(iter(trace.values())))
    kind = formula[0]

    def rho(sub, step):
        return reference(sub, trace, step, normalize)

    def window(lo, hi):
        last = n - 1 if hi is None else min(t + hi, n - 1)
        return range(t + lo, last + 1)

    if kind == "pred":
        _, signal, op, c = formula
        margin = trace[signal][t] - c if op in (">", ">=") else c - trace[signal][t]
        return margin / abs(c) if normalize and c != 0 else margin
    if kind == "not":
        return -rho(formula[1], t)
    if kind in ("and", "or", "implies"):
        left, right = rho(formula[1], t), rho(formula[2], t)
        if kind == "and":
            return min(left, right)
        return max(-left if kind == "implies" else left, right)
    if kind == "G":
        return min((rho(formula[3], s) for s in window(*formula[1:3])), default=INF)
    if kind == "F":
        return max((rho(formula[3], s) for s in window(*formula[1:3])), default=-INF)
    _, lo, hi, left, right = formula  # until: phi on [t, t'), psi at t'
    return max(
        (min([rho(right, s)] + [rho(left, r) for r in range(t, s)]) for s in window(lo, hi)),
        default=-INF,
    )


def random_formula(rng, depth):
    if depth == 0 or rng.random() < 0.25:
        c = rng.choice([0.0, 1.0, -2.5, 0.5, 3.0, rng.uniform(-4, 4)])
        return ("pred", rng.choice(SIGNALS), rng.choice(["<", "<=", ">", ">="]), c)
    kind = rng.choice(["not", "and", "or", "implies", "G", "F", "U"])
    sub = [random_formula(rng, depth - 1) for _ in range(2)]
    if kind == "not":
        return ("not", sub[0])
    if kind in ("and", "or", "implies"):
        return (kind, *sub)
    lo = rng.randint(0, 4)
    hi = rng.choice([None, lo, lo + rng.randint(0, 6)])
    return (kind, lo, hi, sub[0]) if kind in "GF" else ("U", lo, hi, *sub)


def render(formula, rng):
    """Fully parenthesised text, choosing randomly among the equivalent spellings."""
    kind = formula[0]
    if kind == "pred":
        _, signal, op, c = formula
        if rng.random() < 0.3:  # constant on the left
            flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[op]
            return f"{c!r} {flipped} {signal}"
        return f"{signal} {op} {c!r}"
    if kind == "not":
        return f"{rng.choice(['!', 'not '])}({render(formula[1], rng)})"
    if kind in ("and", "or", "implies"):
        word = {"and": ["&", "and"], "or": ["|", "or"], "implies": ["->", "implies"]}[kind]
        return f"({render(formula[1], rng)}) {rng.choice(word)} ({render(formula[2], rng)})"
    lo, hi = formula[1], formula[2]
    if lo == 0 and hi is None and rng.random() < 0.5:
        bound = ""
    else:
        bound = f"[{lo}{rng.choice([',', ':'])}{'inf' if hi is None else hi}]"
    if kind in "GF":
        word = {"G": ["G", "always "], "F": ["F", "eventually "]}[kind]
        return f"{rng.choice(word)}{bound}({render(formula[3], rng)})"
    until = rng.choice(["U", "until"])
    return f"({render(formula[3], rng)}) {until}{bound} ({render(formula[4], rng)})"


def random_trace(rng, length):
    return {name: [round(rng.uniform(-5, 5), 1) for _ in range(length)] for name in SIGNALS}


def assert_same(actual, expected):
    if math.isinf(expected):
        assert actual == expected
    else:
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_robustness_matches_brute_force_reference():
    rng = random.Random(1234)
    for _ in range(300):
        tree = random_formula(rng, rng.randint(1, 4))
        trace = random_trace(rng, rng.randint(1, 12))
        formula = stl.parse(render(tree, rng))
        for normalize in (False, True):
            signal = stl.robustness_signal(formula, trace, normalize=normalize)
            for t in range(len(trace["a"])):
                expected = reference(tree, trace, t, normalize)
                assert_same(signal[t], expected)
                assert_same(stl.robustness(formula, trace, t=t, normalize=normalize), expected)


def test_round_trip_keeps_formula_and_robustness():
    rng = random.Random(99)
    for _ in range(150):
        formula = stl.parse(render(random_formula(rng, 4), rng))
        again = stl.parse(str(formula))
        assert again == formula
        assert str(again) == str(formula)
        trace = random_trace(rng, rng.randint(1, 8))
        assert np.array_equal(
            stl.robustness_signal(again, trace), stl.robustness_signal(formula, trace)
        )


# ----------------------------------------------------------------------------- hand examples
TRACE = {"energy_uj": [8, 9, 12, 7], "test_acc": [0.5, 0.7, 0.85, 0.9]}
SPEC = "G(energy_uj <= 10) & F(test_acc >= 0.8)"


def test_hand_example():
    assert stl.robustness(SPEC, TRACE) == pytest.approx(-2.0)  # 10 - 12 at step 2
    assert stl.robustness(SPEC, TRACE, t=3) == pytest.approx(0.1)  # min(3, 0.9 - 0.8)
    assert stl.robustness(SPEC, TRACE, normalize=True) == pytest.approx(-0.2)
    assert stl.robustness("G[0,1](energy_uj <= 10)", TRACE) == pytest.approx(1.0)
    assert stl.robustness("F[0:1](test_acc >= 0.8)", TRACE) == pytest.approx(-0.1)
    assert stl.robustness("energy_uj < 10 -> test_acc > 0.6", TRACE) == pytest.approx(-0.1)
    assert stl.robustness("9 >= energy_uj", TRACE) == pytest.approx(1.0)
    assert stl.robustness("a >= 1e-1 | !(a <= -1.5E+1)", {"a": [2]}) == pytest.approx(17.0)


def test_until_and_empty_windows():
    trace = {"x": [3, 2, 1, 0], "y": [0, 0, 5, 1]}
    # psi at t'=2 (margin 4), phi on steps 0 and 1 (margins 2 and 1): min = 1
    assert stl.robustness("x >= 1 U y >= 1", trace) == pytest.approx(1.0)
    assert stl.robustness("x >= 1 U[0,1] y >= 1", trace) == pytest.approx(-1.0)
    assert stl.robustness("false U[0,3] y >= 1", trace) == pytest.approx(-1.0)  # t'=0 only
    assert stl.robustness("x >= 1 U[0,0] y >= -1", trace) == pytest.approx(1.0)  # no phi
    assert stl.robustness("G[5,9](x >= 100)", trace) == math.inf
    assert stl.robustness("F[5,9](x >= 100)", trace) == -math.inf
    assert stl.robustness("x >= 0 U[5,9] y >= 0", trace) == -math.inf
    assert stl.robustness("G[1,2](x >= 1)", trace, t=3) == math.inf
    assert stl.robustness("true & G(x >= 0)", trace) == 0.0


def test_normalize_skips_zero_threshold():
    trace = {"acc": [0.9], "energy": [50.0], "delta": [-0.3]}
    assert stl.robustness("acc >= 0.8", trace, normalize=True) == pytest.approx(0.125)
    assert stl.robustness("energy <= 100", trace, normalize=True) == pytest.approx(0.5)
    assert stl.robustness("delta <= 0", trace, normalize=True) == pytest.approx(0.3)
    assert stl.robustness("delta >= -0.6", trace, normalize=True) == pytest.approx(0.5)


def test_canonical_text():
    formula = stl.parse("not a>1 and always[2:5] b<=-3 or c >= 0 implies d < 2 implies e > 1")
    assert str(formula) == "!(a > 1) & G[2,5](b <= -3) | c >= 0 -> d < 2 -> e > 1"
    assert str(stl.parse("(a>=1 -> b>=1) -> c>=1")) == "(a >= 1 -> b >= 1) -> c >= 1"
    assert str(stl.parse("a>=1 & (b>=1 | c>=1)")) == "a >= 1 & (b >= 1 | c >= 1)"
    assert str(stl.parse("F[2,inf] x>0 U[0,3] y>0")) == "(F[2,inf](x > 0)) U[0,3] (y > 0)"
    assert str(stl.parse("0.8 <= test_acc")) == "test_acc >= 0.8"
    assert isinstance(stl.parse("G x >= 1 & y <= 2"), stl.And)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("spec", "expected", "column"),
    [
        ("", "a formula", 1),
        ("   ", "a formula", 4),
        ("(a >= 1", "')'", 8),
        ("a >= 1)", "an operator", 7),
        ("G(energy_uj <= )", "a number", 16),
        ("a == 3", "a comparison", 3),
        ("a => 3", "a comparison", 3),
        ("G[3,1](a >= 1)", "an upper bound", 5),
        ("G[1.5,2](a >= 1)", "a lower bound", 3),
        ("G[0;2](a >= 1)", "',' or ':'", 4),
        ("G[0,2(a >= 1)", "']'", 6),
        ("a >= 1 b <= 2", "an operator", 8),
        ("a >= 1 &", "a formula", 9),
        ("3 <= 4", "a signal name", 6),
        ("a >= 1 $", "an operator", 8),
    ],
)
def test_parse_errors_are_clear(spec, expected, column):
    with pytest.raises(stl.STLSyntaxError) as info:
        stl.parse(spec)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert message.startswith(f'bad STL spec "{spec}": expected {expected}')
    assert f"at column {column} " in message
    assert "\n" not in message


def test_exact_message_example():
    with pytest.raises(
        stl.STLSyntaxError,
        match=r'^bad STL spec "G\(energy_uj <= \)": '
        r"expected a number at column 16",
    ):
        stl.parse("G(energy_uj <= )")


def test_trace_errors():
    with pytest.raises(ValueError, match="unknown signal 'loss'.*available: energy_uj, test_acc"):
        stl.robustness("G(loss <= 1)", TRACE)
    with pytest.raises(ValueError, match="unequal lengths"):
        stl.robustness("a >= 0", {"a": [1, 2], "b": [1]})
    with pytest.raises(ValueError, match="empty"):
        stl.robustness("a >= 0", {})
    with pytest.raises(ValueError, match="no time steps"):
        stl.robustness("a >= 0", {"a": []})
    with pytest.raises(ValueError, match="outside the trace"):
        stl.robustness("a >= 0", {"a": [1]}, t=1)
    with pytest.raises(ValueError, match="not numeric"):
        stl.robustness("a >= 0", {"a": ["x"]})


# ----------------------------------------------------------------------------- explanation
def test_explain_clauses_and_steps():
    verdict = stl.explain(SPEC, TRACE)
    assert not verdict.satisfied
    assert verdict.robustness == pytest.approx(-2.0)
    assert [c.text for c in verdict.clauses] == ["G(energy_uj <= 10)", "F(test_acc >= 0.8)"]
    assert [c.step for c in verdict.clauses] == [2, 3]
    assert [c.satisfied for c in verdict.clauses] == [False, True]
    assert verdict.clauses[1].robustness == pytest.approx(0.1)
    assert verdict.clauses[0].decided_by == "energy_uj <= 10"
    text = verdict.format()
    assert text.splitlines()[0] == f"VIOLATED: {SPEC}"
    assert "FAIL" in text and "at step 2" in text and "at step 3" in text
    data = json.loads(json.dumps(verdict.to_dict()))
    assert data["clauses"][0]["step"] == 2 and data["satisfied"] is False


def test_explain_nested_and_until_steps():
    trace = {"x": [3, 2, 0.5, 0], "y": [0, 0, 5, 1], "z": [1, 1, 1, 1]}
    verdict = stl.explain("(x >= 1 U y >= 1) & z >= 1 & G[2,5](x >= -1) & F[9,9](z >= 0)", trace)
    assert [c.step for c in verdict.clauses] == [1, 0, 3, None]  # phi weakest at step 1
    assert [c.decided_by for c in verdict.clauses][:3] == ["x >= 1", "z >= 1", "x >= -1"]
    assert verdict.clauses[3].robustness == -math.inf
    assert verdict.to_dict()["clauses"][3]["robustness"] == "-inf"
    assert "empty window" in verdict.format()
    # the witness follows min/max through nested operators
    nested = stl.explain("G(F[0,1](x >= 1) | y >= 4)", trace)
    assert len(nested.clauses) == 1 and nested.clauses[0].step == 3
    assert nested.robustness == pytest.approx(-1.0)


def test_satisfied_convention_is_non_negative():
    assert stl.explain("a >= 1", {"a": [1.0]}).satisfied
    assert not stl.explain("a > 1.5", {"a": [1.0]}).satisfied
    assert stl.explain("G(a >= 0)", {"a": [0, 1]}, normalize=True).format().startswith("SAT")


def test_trace_from_history():
    records = [
        {"epoch": 0, "test_acc": 0.5, "note": "x", "lr": 0.1},
        {"epoch": 1, "test_acc": 0.7, "note": "y"},
    ]
    assert stl.trace_from_history(records) == {"epoch": [0.0, 1.0], "test_acc": [0.5, 0.7]}
    with pytest.raises(ValueError, match="empty"):
        stl.trace_from_history([])
    with pytest.raises(ValueError, match="dicts"):
        stl.trace_from_history([1, 2])
