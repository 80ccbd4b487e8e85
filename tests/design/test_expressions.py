"""The safe inequality parser: semantics, round trips, linearity and hostile input."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from poreml.data import schema
from poreml.design.expressions import (
    MAX_DEPTH,
    MAX_LENGTH,
    Inequality,
    Number,
    Power,
    Variable,
    parse_expression,
    parse_inequality,
)
from poreml.exceptions import ConfigError

NAMES = ("x", "y", "z_1")
DESIGN = schema.CONTINUOUS_DESIGN_COLUMNS
RNG = np.random.default_rng(0)
ENV = {n: RNG.uniform(-2.0, 2.0, size=7) for n in NAMES}

# Python's binding strengths, written independently of the parser.
ADD, MUL, UNARY, POW, ATOM = 1, 2, 3, 4, 5

Ref = Callable[[dict[str, Any]], Any]
Gen = tuple[str, Ref, int]  # text, reference evaluator, precedence of the text

NUMBER_TEXTS = ["2", "0.5", ".5", "3.", "1e-3", "2.5E1", "10", "7"]


def _wrap(text: str, prec: int, needed: int, force: bool) -> str:
    return f"({text})" if prec < needed or force else text


def _leaves() -> st.SearchStrategy[Gen]:
    numbers = st.sampled_from(NUMBER_TEXTS).map(
        lambda t: (t, (lambda env, v=np.float64(float(t)): v), ATOM)
    )
    names = st.sampled_from(NAMES).map(lambda n: (n, (lambda env, n=n: env[n]), ATOM))
    return numbers | names


def _extend(children: st.SearchStrategy[Gen]) -> st.SearchStrategy[Gen]:
    @st.composite
    def binary(draw: st.DrawFn) -> Gen:
        op = draw(st.sampled_from(["+", "-", "*", "/"]))
        prec = ADD if op in "+-" else MUL
        lt, lf, lp = draw(children)
        rt, rf, rp = draw(children)
        text = (
            f"{_wrap(lt, lp, prec, draw(st.booleans()))}{draw(st.sampled_from(['', ' ']))}{op}"
            f" {_wrap(rt, rp, prec + 1, draw(st.booleans()))}"
        )
        fn = {
            "+": lambda e: lf(e) + rf(e),
            "-": lambda e: lf(e) - rf(e),
            "*": lambda e: lf(e) * rf(e),
            "/": lambda e: lf(e) / rf(e),
        }[op]
        return text, fn, prec

    @st.composite
    def negate(draw: st.DrawFn) -> Gen:
        t, f, p = draw(children)
        return f"-{_wrap(t, p, UNARY, draw(st.booleans()))}", (lambda e: -f(e)), UNARY

    @st.composite
    def power(draw: st.DrawFn) -> Gen:
        t, f, p = draw(children)
        exponent = draw(st.sampled_from([-3, -2, -1, 0, 1, 2, 3, 0.5]))
        etext = str(exponent) if draw(st.booleans()) else f"({exponent})"
        text = f"{_wrap(t, p, ATOM, draw(st.booleans()))} ** {etext}"
        return text, (lambda e: f(e) ** float(exponent)), POW

    return binary() | negate() | power()


EXPRESSIONS = st.recursive(_leaves(), _extend, max_leaves=12)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse_or_skip(text: str) -> Any:
    try:
        return parse_expression(text, NAMES)
    except ConfigError as exc:  # generated "a / (2 - 2)" is rejected on purpose
        assume("division by a constant zero" not in str(exc))
        raise


@PROPERTY
@given(EXPRESSIONS)
def test_random_expression_evaluates_like_python_arithmetic(gen: Gen) -> None:
    text, reference, _ = gen
    tree = _parse_or_skip(text)
    with np.errstate(all="ignore"):
        got = np.broadcast_to(tree.evaluate(ENV), (7,))
        want = np.broadcast_to(reference(ENV), (7,))
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)


@PROPERTY
@given(EXPRESSIONS)
def test_str_of_a_parsed_expression_parses_back_to_the_same_tree(gen: Gen) -> None:
    tree = _parse_or_skip(gen[0])
    assert parse_expression(str(tree), NAMES) == tree


@PROPERTY
@given(EXPRESSIONS)
def test_torch_evaluation_matches_numpy(gen: Gen) -> None:
    tree = _parse_or_skip(gen[0])
    with np.errstate(all="ignore"):
        want = np.broadcast_to(tree.evaluate(ENV), (7,))
    got = tree.evaluate({n: torch.as_tensor(v) for n, v in ENV.items()})
    got = np.broadcast_to(torch.as_tensor(got, dtype=torch.double).numpy(), (7,))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, equal_nan=True)


@PROPERTY
@given(EXPRESSIONS)
def test_linear_coefficients_reproduce_the_expression(gen: Gen) -> None:
    tree = _parse_or_skip(gen[0])
    assume(tree.is_linear())
    coefs, const = tree.linear_coefficients()
    assert set(coefs) <= tree.variables
    with np.errstate(all="ignore"):
        want = np.broadcast_to(tree.evaluate(ENV), (7,))
        got = const + sum((c * ENV[n] for n, c in coefs.items()), np.zeros(7))
    assume(np.all(np.isfinite(want)) and np.all(np.abs(want) < 1e6))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_either_parses_or_raises_config_error(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_inequality(text, NAMES)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="xyz_1.2e+-*/() <>=", max_size=60))
def test_arbitrary_operator_soup_either_parses_or_raises_config_error(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_inequality(text, NAMES)


# -- semantics ------------------------------------------------------------------------------


def test_contract_example_constraint_holds_where_the_pore_volume_is_small() -> None:
    ineq = parse_inequality("porosity * (1 - closed_pore_fraction) <= 0.6", DESIGN)
    assert ineq.op == "<="
    assert ineq.variables == {"porosity", "closed_pore_fraction"}
    values = {
        "porosity": np.array([0.8, 0.8, 0.5]),
        "closed_pore_fraction": np.array([0.0, 0.25, 0.0]),
    }
    np.testing.assert_allclose(ineq.evaluate(values), [-0.2, 0.0, 0.1], atol=1e-12)
    assert ineq.is_satisfied(values, atol=1e-12).tolist() == [False, True, True]
    assert not ineq.is_linear()


def test_strict_comparisons_mean_the_same_non_strict_inequality() -> None:
    assert parse_inequality("x < 1", NAMES) == parse_inequality("x <= 1", NAMES)
    assert parse_inequality("x > 1", NAMES) == parse_inequality("x >= 1", NAMES)
    assert str(parse_inequality("x>1", NAMES)) == "x >= 1"


def test_greater_equal_slack_is_lhs_minus_rhs() -> None:
    ineq = parse_inequality("carbon_wt_pct + 10*shell_nm >= 20", DESIGN)
    slack = ineq.evaluate({"carbon_wt_pct": np.array([10.0]), "shell_nm": np.array([0.5])})
    np.testing.assert_allclose(slack, [-5.0])


def test_linear_coefficients_of_the_slack() -> None:
    ineq = parse_inequality("carbon_wt_pct + 10*shell_nm >= 20", DESIGN)
    assert ineq.is_linear()
    assert ineq.linear_coefficients() == ({"carbon_wt_pct": 1.0, "shell_nm": 10.0}, -20.0)
    flipped = parse_inequality("2 * x - y / 4 <= 1 - x", NAMES)
    assert flipped.linear_coefficients() == ({"x": -3.0, "y": 0.25}, 1.0)


@pytest.mark.parametrize(
    ("text", "linear"),
    [
        ("x / 2 + 3", True),
        ("2 ** 3 * x", True),
        ("x ** 1", True),
        ("(x + 1) ** 0", True),
        ("x - x + y", True),
        ("x * 0 * y", True),
        ("x * y", False),
        ("x ** 2", False),
        ("2 / x", False),
        ("x / (y + 1)", False),
    ],
)
def test_is_linear_recognises_affine_expressions(text: str, linear: bool) -> None:
    assert parse_expression(text, NAMES).is_linear() is linear


def test_cancelled_variables_are_left_out_of_the_coefficients() -> None:
    assert parse_expression("x - x + y", NAMES).linear_coefficients() == ({"y": 1.0}, 0.0)


def test_linear_coefficients_of_a_nonlinear_expression_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not linear"):
        parse_expression("x * y", NAMES).linear_coefficients()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-x ** 2", -(ENV["x"] ** 2)),
        ("(-x) ** 2", ENV["x"] ** 2),
        ("x - y - z_1", ENV["x"] - ENV["y"] - ENV["z_1"]),
        ("x - (y - z_1)", ENV["x"] - (ENV["y"] - ENV["z_1"])),
        ("x / y / 2", ENV["x"] / ENV["y"] / 2),
        ("2 * x ** -2", 2 * ENV["x"] ** -2.0),
        ("-2 ** 2 + x * 0", np.full(7, -4.0)),
        ("+x", ENV["x"]),
    ],
)
def test_precedence_follows_python(text: str, expected: np.ndarray) -> None:
    got = np.broadcast_to(parse_expression(text, NAMES).evaluate(ENV), (7,))
    np.testing.assert_allclose(got, expected)


@pytest.mark.parametrize(
    "text",
    ["-x ** 2", "(-x) ** 2", "x - (y - z_1)", "x ** -2", "(x ** 2) ** 3", "x * -y", "1e-20 * x"],
)
def test_str_round_trips_tricky_groupings(text: str) -> None:
    tree = parse_expression(text, NAMES)
    assert str(tree) == text
    assert parse_expression(str(tree), NAMES) == tree


def test_evaluation_on_tensors_is_differentiable() -> None:
    ineq = parse_inequality("porosity * (1 - closed_pore_fraction) <= 0.6", DESIGN)
    p = torch.tensor([0.5, 0.7], dtype=torch.double, requires_grad=True)
    c = torch.tensor([0.2, 0.1], dtype=torch.double, requires_grad=True)
    ineq.evaluate({"porosity": p, "closed_pore_fraction": c}).sum().backward()
    torch.testing.assert_close(p.grad, -(1 - c.detach()))
    torch.testing.assert_close(c.grad, p.detach())


def test_plain_numbers_are_accepted_as_values() -> None:
    ineq = parse_inequality("porosity * (1 - closed_pore_fraction) <= 0.6", DESIGN)
    assert ineq.evaluate({"porosity": 0.8, "closed_pore_fraction": 0.5}) == pytest.approx(0.2)


def test_missing_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="porosity"):
        parse_expression("porosity + 1", DESIGN).evaluate({})


def test_constant_subexpressions_never_raise_on_overflow() -> None:
    tree = parse_expression("1e300 ** 10 * x", NAMES)
    assert np.isinf(tree.evaluate({"x": np.array([1.0])})).all()
    assert math.isnan(Power(Number(-8.0), 0.5).evaluate({}))


def test_tree_nodes_are_frozen() -> None:
    node = Variable("x")
    with pytest.raises(AttributeError):
        node.name = "y"  # type: ignore[misc]
    assert isinstance(parse_inequality("x <= 1", NAMES), Inequality)


# -- hostile and invalid input --------------------------------------------------------------

HOSTILE = [
    "__import__('os').system('touch PWNED') <= 1",
    "porosity.__class__ <= 1",
    "porosity.real <= 1",
    "abs(porosity) <= 1",
    "(lambda: 1)() <= porosity",
    "[porosity][0] <= 1",
    "porosity <= 1; import os",
    "porosity if porosity else 1 <= 1",
    "2 ** 99999 <= porosity",
    "porosity ** 99999 <= 1",
    "porosity ** porosity <= 1",
    "porosity ** 2 ** 3 <= 1",
    "porosity <= 1e999",
    "(" * 10_000 + "porosity" + ")" * 10_000 + " <= 1",
    "(" * 200 + "porosity" + ")" * 200 + " <= 1",
    "-" * 300 + "porosity <= 1",
    "porosity + " * 100 + "porosity <= 1",
    "porosity <= " + "9" * 600,
    "porosité <= 0.6",
    "porosity <= ٣",
    "porosity <= １",
    "𝑝orosity <= 1",
    "os <= 1",
    "route <= 1",
    "porosity == 0.5",
    "porosity = 0.5",
    "porosity != 0.5",
    "0.2 <= porosity <= 0.6",
    "porosity / 0 <= 1",
    "porosity",
    "",
    "   ",
    "1 <= 2",
    "porosity <=",
    "(porosity <= 1",
    "porosity) <= 1",
    "porosity porosity <= 1",
    "1e308 * 1e308 * porosity <= 1",
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t[:30]))
def test_hostile_or_invalid_input_raises_config_error_and_executes_nothing(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        parse_inequality(text, DESIGN, where="parameter_constraints[0].expr")
    message = str(info.value)
    assert message.startswith("parameter_constraints[0].expr: ")
    assert "Fix:" in message
    assert list(tmp_path.iterdir()) == []


def test_errors_give_the_column_and_quote_the_expression() -> None:
    with pytest.raises(ConfigError) as info:
        parse_inequality("porosity * (1 - closed_pore) <= 0.6", DESIGN)
    message = str(info.value)
    assert "'porosity * (1 - closed_pore) <= 0.6'" in message
    assert "column 17" in message
    assert "did you mean 'closed_pore_fraction'" in message


def test_unknown_name_error_lists_the_allowed_names() -> None:
    with pytest.raises(ConfigError) as info:
        parse_inequality("foo <= 1", DESIGN)
    assert all(name in str(info.value) for name in DESIGN)


def test_limits_are_enforced_with_their_numbers_in_the_message() -> None:
    with pytest.raises(ConfigError, match=f"at most {MAX_LENGTH} characters"):
        parse_inequality("x" * (MAX_LENGTH + 1), NAMES)
    with pytest.raises(ConfigError, match=f"at most {MAX_DEPTH} nested"):
        parse_inequality("(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1) + "<= 1", NAMES)
    with pytest.raises(ConfigError, match="tokens"):
        parse_inequality("x+" * 120 + "x <= 1", NAMES)
    parse_inequality("(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH + "<= 1", NAMES)  # at the limit


def test_non_string_input_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="expected the constraint as a string"):
        parse_inequality(0.6, NAMES)  # type: ignore[arg-type]


def test_a_comparison_is_rejected_where_an_expression_is_expected() -> None:
    with pytest.raises(ConfigError, match="comparison"):
        parse_expression("x <= 1", NAMES)
