"""The STL parser: spec text -> `temporal.formulas.Formula`, by precedence climbing over the
grammar stated in stl.py; errors name the column and the expected token."""

from __future__ import annotations

import re
from dataclasses import dataclass

from temporal.formulas import (
    Always,
    And,
    Const,
    Eventually,
    Formula,
    Implies,
    Not,
    Or,
    Predicate,
    Until,
)

FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


class STLSyntaxError(ValueError):
    """A malformed STL spec; the message names the column and the expected token."""


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
