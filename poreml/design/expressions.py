"""A safe parser for parameter-constraint inequalities such as ``porosity * (1 - x) <= 0.6``.

The grammar is the arithmetic subset of Python, read by a hand-written tokenizer and a
recursive-descent parser. Nothing is ever passed to ``eval``/``exec``/``compile``::

    inequality := expr ("<=" | ">=" | "<" | ">") expr
    expr       := term (("+" | "-") term)*
    term       := unary (("*" | "/") unary)*
    unary      := ("-" | "+") unary | power
    power      := atom ("**" exponent)?
    exponent   := ("-" | "+")* (NUMBER | "(" exponent ")")      # a numeric literal, |e| <= 10
    atom       := NUMBER | NAME | "(" expr ")"

Precedence and associativity follow Python (``-x ** 2`` is ``-(x ** 2)``, ``a - b - c`` is
``(a - b) - c``). ``<`` and ``>`` are accepted and mean the same *non-strict* inequality as
``<=`` and ``>=``: a continuous optimiser cannot tell the difference, so the parsed
:class:`Inequality` always carries ``"<="`` or ``">="``.

Hostile input is bounded: at most :data:`MAX_LENGTH` characters, :data:`MAX_TOKENS` tokens and
:data:`MAX_DEPTH` nested parentheses / unary signs; exponents must be numeric literals with
``|exponent| <= MAX_EXPONENT``; only the given names are accepted. Every failure is a
:class:`~poreml.exceptions.ConfigError` that quotes the expression, gives the 1-based column and
says how to fix it.

Parsed trees are frozen dataclasses. They evaluate vectorised on NumPy arrays or torch tensors
(differentiably: only ``+ - * / **`` are applied to the inputs), report their ``variables``,
whether they are linear and, if so, their coefficients. ``str(tree)`` prints Python-style text
with the fewest parentheses, and parsing it gives back an equal tree.
"""

from __future__ import annotations

import difflib
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from poreml.exceptions import ConfigError

__all__ = [
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "MAX_TOKENS",
    "BinaryOp",
    "Expression",
    "Inequality",
    "Negate",
    "Number",
    "Power",
    "Variable",
    "parse_expression",
    "parse_inequality",
]

MAX_LENGTH = 500
"""Longest accepted expression, in characters."""
MAX_TOKENS = 200
"""Most tokens in one expression."""
MAX_DEPTH = 32
"""Deepest nesting of parentheses and unary signs."""
MAX_EXPONENT = 10.0
"""Largest accepted ``|exponent|`` of ``**``."""

ArrayLike = Any
"""A NumPy array, a torch tensor or a float; operations stay in the input's library."""

LinearForm = tuple[dict[str, float], float]
"""``({name: coefficient}, constant)`` meaning ``sum(coefficient * name) + constant``."""

# Binding strength, Python order. Used by the printer (fewest parentheses) and the tests.
_PREC_ADD = 1
_PREC_MUL = 2
_PREC_UNARY = 3
_PREC_POW = 4
_PREC_ATOM = 5


def _scalar(op: Callable[[np.float64, np.float64], np.float64], a: float, b: float) -> float:
    """Apply ``op`` to two Python floats with IEEE semantics (inf/nan, never an exception)."""
    with np.errstate(all="ignore"):
        return float(op(np.float64(a), np.float64(b)))


def _apply(op: str, a: ArrayLike, b: ArrayLike) -> ArrayLike:
    """``a op b`` for arrays/tensors; two plain floats are combined without raising."""
    fn = _BINARY_FUNCS[op]
    if isinstance(a, float) and isinstance(b, float):
        return _scalar(fn, a, b)
    return fn(a, b)


_BINARY_FUNCS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "**": lambda a, b: a**b,
}


def _fmt_number(value: float) -> str:
    """Shortest text that parses back to exactly ``value`` (``10`` rather than ``10.0``)."""
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


class Expression(ABC):
    """A node of a parsed arithmetic expression (frozen, hashable, comparable).

    Subclasses: :class:`Number`, :class:`Variable`, :class:`Negate`, :class:`BinaryOp`,
    :class:`Power`.
    """

    precedence: ClassVar[int] = _PREC_ATOM

    @abstractmethod
    def evaluate(self, values: Mapping[str, ArrayLike]) -> ArrayLike:
        """Evaluate element-wise.

        Args:
            values: one NumPy array or torch tensor per variable, all broadcastable to a common
                shape ``(...)``. Plain numbers are accepted (as constants). Tensors stay
                tensors, so the result is differentiable with respect to them.

        Returns:
            The value, shape ``(...)``; a float when the expression has no variable.

        Raises:
            ConfigError: a variable of the expression is missing from ``values``.
        """

    @property
    @abstractmethod
    def variables(self) -> frozenset[str]:
        """Names of the variables the expression uses."""

    @abstractmethod
    def _linear(self) -> LinearForm | None:
        """The linear form, or None when the expression is not linear in its variables."""

    @abstractmethod
    def __str__(self) -> str: ...

    def is_linear(self) -> bool:
        """Whether the expression is an affine function of its variables.

        Examples: ``2 * x - y / 4 + 1`` and ``x ** 1`` are linear; ``x * y``, ``x ** 2`` and
        ``1 / x`` are not.
        """
        return self._linear() is not None

    def linear_coefficients(self) -> LinearForm:
        """Coefficients of the affine form ``sum(coefficients[name] * name) + constant``.

        Variables whose coefficient cancels to zero are left out.

        Returns:
            ``(coefficients, constant)``.

        Raises:
            ConfigError: the expression is not linear (check :meth:`is_linear` first).
        """
        form = self._linear()
        if form is None:
            raise ConfigError(
                f"expression {str(self)!r} is not linear, so it has no linear coefficients; "
                "check is_linear() first and treat it as a nonlinear constraint"
            )
        return form

    def _child_str(self, child: Expression, min_prec: int) -> str:
        text = str(child)
        return f"({text})" if child.precedence < min_prec else text


@dataclass(frozen=True)
class Number(Expression):
    """A finite numeric literal (always >= 0 when parsed; signs are :class:`Negate`)."""

    value: float

    def evaluate(self, values: Mapping[str, ArrayLike]) -> ArrayLike:
        return float(self.value)

    @property
    def variables(self) -> frozenset[str]:
        return frozenset()

    def _linear(self) -> LinearForm:
        return {}, float(self.value)

    def __str__(self) -> str:
        return _fmt_number(float(self.value))


@dataclass(frozen=True)
class Variable(Expression):
    """A parameter name."""

    name: str

    def evaluate(self, values: Mapping[str, ArrayLike]) -> ArrayLike:
        try:
            value = values[self.name]
        except KeyError:
            raise ConfigError(
                f"cannot evaluate: no value given for {self.name!r} "
                f"(got values for: {', '.join(sorted(values)) or 'nothing'}); "
                f"pass an array or tensor for {self.name!r}"
            ) from None
        if isinstance(value, int | float | np.number):
            return float(value)
        return value

    @property
    def variables(self) -> frozenset[str]:
        return frozenset({self.name})

    def _linear(self) -> LinearForm:
        return {self.name: 1.0}, 0.0

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Negate(Expression):
    """Unary minus ``-operand``."""

    operand: Expression
    precedence: ClassVar[int] = _PREC_UNARY

    def evaluate(self, values: Mapping[str, ArrayLike]) -> ArrayLike:
        return -self.operand.evaluate(values)

    @property
    def variables(self) -> frozenset[str]:
        return self.operand.variables

    def _linear(self) -> LinearForm | None:
        form = self.operand._linear()
        if form is None:
            return None
        coefs, const = form
        return {k: -v for k, v in coefs.items()}, -const

    def __str__(self) -> str:
        return "-" + self._child_str(self.operand, _PREC_UNARY)


@dataclass(frozen=True)
class BinaryOp(Expression):
    """``left op right`` for ``op`` in ``+ - * /`` (left-associative)."""

    op: Literal["+", "-", "*", "/"]
    left: Expression
    right: Expression

    @property
    def precedence(self) -> int:  # type: ignore[override]
        return _PREC_ADD if self.op in "+-" else _PREC_MUL

    def evaluate(self, values: Mapping[str, ArrayLike]) -> ArrayLike:
        return _apply(self.op, self.left.evaluate(values), self.right.evaluate(values))

    @property
    def variables(self) -> frozenset[str]:
        return self.left.variables | self.right.variables

    def _linear(self) -> LinearForm | None:
        left, right = self.left._linear(), self.right._linear()
        if left is None or right is None:
            return None
        (lc, l0), (rc, r0) = left, right
        if self.op in "+-":
            sign = 1.0 if self.op == "+" else -1.0
            coefs = dict(lc)
            for name, c in rc.items():
                coefs[name] = coefs.get(name, 0.0) + sign * c
            return _drop_zeros(coefs), l0 + sign * r0
        if self.op == "*":
            if not lc:
                return _drop_zeros({k: _scalar(np.multiply, l0, v) for k, v in rc.items()}), (
                    _scalar(np.multiply, l0, r0)
                )
            if not rc:
                return _drop_zeros({k: _scalar(np.multiply, v, r0) for k, v in lc.items()}), (
                    _scalar(np.multiply, l0, r0)
                )
            return None
        # division: linear only by a nonzero constant
        if rc or r0 == 0.0:
            return None
        return {k: _scalar(np.divide, v, r0) for k, v in lc.items()}, _scalar(np.divide, l0, r0)

    def __str__(self) -> str:
        p = self.precedence
        # Right operand needs parentheses at equal precedence to keep the tree's grouping.
        return f"{self._child_str(self.left, p)} {self.op} {self._child_str(self.right, p + 1)}"


@dataclass(frozen=True)
class Power(Expression):
    """``base ** exponent`` with a literal exponent, ``|exponent| <= MAX_EXPONENT``."""

    base: Expression
    exponent: float
    precedence: ClassVar[int] = _PREC_POW

    def evaluate(self, values: Mapping[str, ArrayLike]) -> ArrayLike:
        base = self.base.evaluate(values)
        if isinstance(base, float):
            if base < 0 and not float(self.exponent).is_integer():
                return math.nan  # Python would return a complex number here
            return _scalar(np.power, base, float(self.exponent))
        return base ** float(self.exponent)

    @property
    def variables(self) -> frozenset[str]:
        return self.base.variables

    def _linear(self) -> LinearForm | None:
        form = self.base._linear()
        if form is None:
            return None
        coefs, const = form
        if not coefs:
            return {}, float(Power(Number(const), self.exponent).evaluate({}))
        if self.exponent == 1.0:
            return coefs, const
        if self.exponent == 0.0:
            return {}, 1.0
        return None

    def __str__(self) -> str:
        return f"{self._child_str(self.base, _PREC_ATOM)} ** {_fmt_number(float(self.exponent))}"


def _drop_zeros(coefs: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in coefs.items() if v != 0.0}


@dataclass(frozen=True)
class Inequality:
    """A parsed constraint ``lhs op rhs`` with ``op`` in ``"<="``, ``">="``.

    Its *slack* is ``rhs - lhs`` for ``<=`` and ``lhs - rhs`` for ``>=``: the constraint holds
    where the slack is ``>= 0`` (the convention of BoTorch's nonlinear constraints).

    Attributes:
        lhs: left-hand side.
        op: ``"<="`` or ``">="`` (``<``/``>`` in the text are read as these).
        rhs: right-hand side.
        text: the text it was parsed from (not part of equality; ``str()`` gives the
            normalised form).
    """

    lhs: Expression
    op: Literal["<=", ">="]
    rhs: Expression
    text: str = field(default="", compare=False)

    @property
    def slack(self) -> Expression:
        """The expression that is ``>= 0`` exactly where the constraint holds."""
        if self.op == "<=":
            return BinaryOp("-", self.rhs, self.lhs)
        return BinaryOp("-", self.lhs, self.rhs)

    @property
    def variables(self) -> frozenset[str]:
        """Names used on either side."""
        return self.lhs.variables | self.rhs.variables

    def evaluate(self, values: Mapping[str, ArrayLike]) -> ArrayLike:
        """The slack, element-wise (see :meth:`Expression.evaluate`); ``>= 0`` means satisfied.

        Args:
            values: one array or tensor per variable, broadcastable to shape ``(...)``.

        Returns:
            Slack of shape ``(...)``, in the units of the expression.
        """
        return self.slack.evaluate(values)

    def is_satisfied(self, values: Mapping[str, ArrayLike], atol: float = 0.0) -> ArrayLike:
        """Boolean mask, shape ``(...)``: slack ``>= -atol`` (NaN counts as violated)."""
        return self.evaluate(values) >= -atol

    def is_linear(self) -> bool:
        """Whether both sides are affine in the variables."""
        return self.slack.is_linear()

    def linear_coefficients(self) -> LinearForm:
        """``(coefficients, constant)`` with ``sum(coefficients[n] * n) + constant >= 0``.

        Raises:
            ConfigError: the inequality is not linear.
        """
        return self.slack.linear_coefficients()

    def __str__(self) -> str:
        return f"{self.lhs} {self.op} {self.rhs}"


# --------------------------------------------------------------------------------------------
# tokenizer

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|<=|>=|==|!=|[-+*/()<>=])
    """,
    re.VERBOSE | re.ASCII,
)

_HINTS = {
    "==": "equality constraints are not supported; write two inequalities (<= and >=)",
    "!=": "'!=' is not supported; only <=, >=, <, > are",
    "=": "'=' is not a comparison; use <= or >=",
}


@dataclass(frozen=True)
class _Token:
    kind: Literal["number", "name", "op", "end"]
    text: str
    pos: int  # 0-based character offset


class _Parser:
    def __init__(self, text: str, names: Collection[str], where: str | None) -> None:
        self.text = text
        self.names = frozenset(names)
        self.where = where
        self.depth = 0
        self.tokens = self._tokenize()
        self.i = 0

    # -- errors --------------------------------------------------------------------------------
    def error(self, pos: int, problem: str, fix: str) -> ConfigError:
        where = f"{self.where}: " if self.where else ""
        shown = self.text if len(self.text) <= 120 else self.text[:117] + "..."
        return ConfigError(
            f"{where}cannot parse the constraint {shown!r} at column {pos + 1}: {problem}. "
            f"Fix: {fix}."
        )

    # -- tokens --------------------------------------------------------------------------------
    def _tokenize(self) -> list[_Token]:
        text = self.text
        if len(text) > MAX_LENGTH:
            raise self.error(
                MAX_LENGTH,
                f"expected at most {MAX_LENGTH} characters, got {len(text)}",
                "shorten the expression or split it into several constraints",
            )
        tokens: list[_Token] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN_RE.match(text, pos)
            if m is None:
                raise self.error(
                    pos,
                    f"unexpected character {text[pos]!r}",
                    "use only parameter names, numbers, + - * / **, parentheses and one of "
                    "<= >= < >",
                )
            kind = m.lastgroup
            assert kind is not None
            if kind != "ws":
                if kind == "op" and m.group() in _HINTS:
                    raise self.error(pos, f"unsupported operator {m.group()!r}", _HINTS[m.group()])
                tokens.append(_Token(kind, m.group(), pos))  # type: ignore[arg-type]
                if len(tokens) > MAX_TOKENS:
                    raise self.error(
                        pos,
                        f"expected at most {MAX_TOKENS} tokens, got more",
                        "simplify the expression or split it into several constraints",
                    )
            pos = m.end()
        tokens.append(_Token("end", "", len(text)))
        return tokens

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def describe(self, tok: _Token) -> str:
        return "the end of the expression" if tok.kind == "end" else repr(tok.text)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(
                self.tok.pos,
                f"expected at most {MAX_DEPTH} nested parentheses or signs, got more",
                "remove redundant parentheses or signs",
            )

    def expect_close(self, open_tok: _Token) -> None:
        if not self.at(")"):
            raise self.error(
                self.tok.pos,
                f"expected ')' to close the '(' at column {open_tok.pos + 1}, "
                f"got {self.describe(self.tok)}",
                "balance the parentheses",
            )
        self.advance()

    # -- grammar -------------------------------------------------------------------------------
    def parse_inequality(self) -> Inequality:
        if self.tok.kind == "end":
            raise self.error(0, "the expression is empty", "write e.g. 'porosity <= 0.6'")
        lhs = self.parse_expr()
        if not self.at("<=", ">=", "<", ">"):
            raise self.error(
                self.tok.pos,
                f"expected a comparison (<=, >=, <, >), got {self.describe(self.tok)}",
                "write one inequality such as 'a + b <= 1'",
            )
        op_text = self.advance().text
        rhs = self.parse_expr()
        if self.at("<=", ">=", "<", ">"):
            raise self.error(
                self.tok.pos,
                "expected a single comparison, got a chained one",
                "split 'a <= b <= c' into two constraints",
            )
        self.expect_end()
        op: Literal["<=", ">="] = "<=" if op_text in ("<=", "<") else ">="
        return Inequality(lhs, op, rhs, text=self.text)

    def parse_standalone(self) -> Expression:
        if self.tok.kind == "end":
            raise self.error(0, "the expression is empty", "write e.g. 'porosity * 2'")
        expr = self.parse_expr()
        if self.at("<=", ">=", "<", ">"):
            raise self.error(
                self.tok.pos,
                "expected an arithmetic expression, got a comparison",
                "use parse_inequality for constraints",
            )
        self.expect_end()
        return expr

    def expect_end(self) -> None:
        if self.tok.kind != "end":
            raise self.error(
                self.tok.pos,
                f"expected an operator or the end, got {self.describe(self.tok)}",
                "join terms with + - * / ** and balance the parentheses",
            )

    def parse_expr(self) -> Expression:
        node = self.parse_term()
        while self.at("+", "-"):
            op = self.advance().text
            node = BinaryOp(op, node, self.parse_term())  # type: ignore[arg-type]
        return node

    def parse_term(self) -> Expression:
        node = self.parse_unary()
        while self.at("*", "/"):
            op_tok = self.advance()
            right = self.parse_unary()
            if op_tok.text == "/" and not right.variables and right.evaluate({}) == 0.0:
                raise self.error(
                    op_tok.pos, "division by a constant zero", "divide by a nonzero number"
                )
            node = BinaryOp(op_tok.text, node, right)  # type: ignore[arg-type]
        return node

    def parse_unary(self) -> Expression:
        if self.at("-", "+"):
            sign = self.advance().text
            self.enter()
            operand = self.parse_unary()
            self.depth -= 1
            return Negate(operand) if sign == "-" else operand
        return self.parse_power()

    def parse_power(self) -> Expression:
        base = self.parse_atom()
        if not self.at("**"):
            return base
        star = self.advance()
        start = self.tok.pos
        exponent = self.parse_exponent()
        if not math.isfinite(exponent) or abs(exponent) > MAX_EXPONENT:
            raise self.error(
                start,
                f"expected an exponent with |exponent| <= {MAX_EXPONENT:g}, got {exponent:g}",
                "use a smaller exponent",
            )
        if self.at("**"):
            raise self.error(
                self.tok.pos,
                "expected a single '**', got a chained power",
                f"put the power in parentheses, e.g. '(x ** a) ** b' (the '**' at column "
                f"{star.pos + 1})",
            )
        return Power(base, exponent)

    def parse_exponent(self) -> float:
        tok = self.tok
        if self.at("-", "+"):
            self.advance()
            self.enter()
            value = self.parse_exponent()
            self.depth -= 1
            return -value if tok.text == "-" else value
        if self.at("("):
            self.advance()
            self.enter()
            value = self.parse_exponent()
            self.depth -= 1
            self.expect_close(tok)
            return value
        if tok.kind == "number":
            self.advance()
            return self.number_value(tok)
        raise self.error(
            tok.pos,
            f"expected a numeric exponent, got {self.describe(tok)}",
            "write the exponent as a number, e.g. 'x ** 2' (variable exponents are not allowed)",
        )

    def number_value(self, tok: _Token) -> float:
        value = float(tok.text)
        if not math.isfinite(value):
            raise self.error(
                tok.pos, f"expected a finite number, got {tok.text!r}", "use a smaller number"
            )
        return value

    def parse_atom(self) -> Expression:
        tok = self.tok
        if tok.kind == "number":
            self.advance()
            return Number(self.number_value(tok))
        if tok.kind == "name":
            self.advance()
            if self.at("("):
                raise self.error(
                    tok.pos,
                    f"expected an operator after {tok.text!r}, got '(' (function calls are "
                    "not allowed)",
                    "use only + - * / ** on parameter names and numbers",
                )
            if tok.text not in self.names:
                raise self.error(tok.pos, f"unknown name {tok.text!r}", self.name_fix(tok.text))
            return Variable(tok.text)
        if tok.kind == "op" and tok.text == "(":
            self.advance()
            self.enter()
            node = self.parse_expr()
            self.depth -= 1
            self.expect_close(tok)
            return node
        raise self.error(
            tok.pos,
            f"expected a number, a parameter name or '(', got {self.describe(tok)}",
            "complete the expression",
        )

    def name_fix(self, name: str) -> str:
        allowed = ", ".join(sorted(self.names)) or "none"
        close = difflib.get_close_matches(name, self.names, n=1)
        hint = f"did you mean {close[0]!r}? Otherwise " if close else ""
        return f"{hint}use one of the parameter names: {allowed}"


def _check_text(text: object, where: str | None) -> str:
    if not isinstance(text, str):
        prefix = f"{where}: " if where else ""
        raise ConfigError(
            f"{prefix}expected the constraint as a string, got {type(text).__name__} "
            f'{text!r}. Fix: write it in quotes, e.g. expr = "porosity <= 0.6".'
        )
    return text


def parse_expression(text: str, names: Collection[str], *, where: str | None = None) -> Expression:
    """Parse an arithmetic expression (no comparison) over ``names``.

    Args:
        text: e.g. ``"porosity * (1 - closed_pore_fraction)"``.
        names: the variable names allowed in ``text``.
        where: where the text came from (e.g. a TOML key), put in front of error messages.

    Returns:
        The frozen expression tree.

    Raises:
        ConfigError: the text is not a valid expression (message gives the column and the fix).
    """
    return _Parser(_check_text(text, where), names, where).parse_standalone()


def parse_inequality(text: str, names: Collection[str], *, where: str | None = None) -> Inequality:
    """Parse ``"<expr> <op> <expr>"`` with ``op`` in ``<= >= < >`` over ``names``.

    ``<`` and ``>`` are read as ``<=`` and ``>=`` (the constraint is meant for a continuous
    optimiser, where strictness is meaningless).

    Args:
        text: e.g. ``"porosity * (1 - closed_pore_fraction) <= 0.6"``.
        names: the variable names allowed in ``text``.
        where: where the text came from (e.g. ``"parameter_constraints[0].expr"``), put in
            front of error messages.

    Returns:
        The parsed :class:`Inequality`.

    Raises:
        ConfigError: the text is not a valid inequality, mentions no variable, or has a
            non-finite linear coefficient.
    """
    ineq = _Parser(_check_text(text, where), names, where).parse_inequality()
    prefix = f"{where}: " if where else ""
    if not ineq.variables:
        raise ConfigError(
            f"{prefix}the constraint {text!r} mentions no parameter, so it is always true or "
            "always false. Fix: use parameter names in it, or delete it."
        )
    if ineq.is_linear():
        coefs, const = ineq.linear_coefficients()
        if not all(math.isfinite(v) for v in (*coefs.values(), const)):
            raise ConfigError(
                f"{prefix}the constraint {text!r} has coefficients too large to represent "
                "(they overflow to infinity). Fix: rescale the numbers."
            )
    return ineq
