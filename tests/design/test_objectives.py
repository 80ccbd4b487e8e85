"""Objectives and outcome constraints: validation, sign conventions, BoTorch's (A, b) form."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from botorch.utils.constraints import get_outcome_constraint_transforms

from poreml.design.objectives import (
    Objective,
    OutcomeConstraint,
    outcome_constraint_matrix,
    reference_point,
    signed_objectives,
    to_maximization,
)
from poreml.exceptions import ConfigError

OBJECTIVES = (
    Objective("tap_density_g_cm3", "maximize", 0.3),
    Objective("expansion_pct", "minimize", 150.0),
)


def test_minimised_objectives_are_sign_flipped_for_maximisation() -> None:
    df = pd.DataFrame({"tap_density_g_cm3": [0.5, np.nan], "expansion_pct": [100.0, 200.0]})
    y = to_maximization(df, OBJECTIVES)
    np.testing.assert_array_equal(y, [[0.5, -100.0], [np.nan, -200.0]])
    assert reference_point(OBJECTIVES) == [0.3, -150.0]
    assert OBJECTIVES[1].is_better(100.0, 120.0)


def test_to_maximization_reports_missing_columns() -> None:
    with pytest.raises(ConfigError, match="expansion_pct"):
        to_maximization(pd.DataFrame({"tap_density_g_cm3": [1.0]}), OBJECTIVES)


def test_signed_objectives_flip_minimised_columns_and_read_missing_ones_as_nan() -> None:
    df = pd.DataFrame({"tap_density_g_cm3": [1.0], "expansion_pct": [20.0], "ice_pct": [90.0]})
    assert signed_objectives(df, OBJECTIVES).tolist() == [[1.0, -20.0]]
    only_td = signed_objectives(df[["tap_density_g_cm3"]], OBJECTIVES)
    np.testing.assert_array_equal(only_td, [[1.0, np.nan]])


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        (
            {"name": "tap_density", "direction": "maximize", "threshold": 1},
            "objectives.tap_density",
        ),
        ({"name": "porosity", "direction": "maximize", "threshold": 1}, "objectives.porosity"),
        ({"name": "ice_pct", "direction": "max", "threshold": 80}, "objectives.ice_pct.direction"),
        (
            {"name": "ice_pct", "direction": "maximize", "threshold": "80"},
            "objectives.ice_pct.threshold",
        ),
        (
            {"name": "ice_pct", "direction": "maximize", "threshold": 180},
            "objectives.ice_pct.threshold",
        ),
    ],
)
def test_invalid_objective_error_names_the_key(kwargs: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        Objective(**kwargs)
    assert str(info.value).startswith(key + ":")


@pytest.mark.parametrize(
    ("text", "op", "bound"),
    [
        (">= 80", ">=", 80.0),
        ("<=150", "<=", 150.0),
        ("> 80.5", ">=", 80.5),
        (" < 1e2 ", "<=", 100.0),
    ],
)
def test_outcome_constraint_parses_operator_and_bound(text: str, op: str, bound: float) -> None:
    c = OutcomeConstraint.from_string("expansion_pct", text)
    assert (c.op, c.bound) == (op, bound)


@pytest.mark.parametrize("text", ["=> 80", "80", ">= eighty", ">= 80 %", 80, "", ">= 80 <= 90"])
def test_malformed_outcome_constraint_names_the_key(text: object) -> None:
    with pytest.raises(ConfigError, match=r"^outcome_constraints.ice_pct: .*Fix: write e.g."):
        OutcomeConstraint.from_string("ice_pct", text)


def test_outcome_constraint_on_unknown_column_suggests_a_name() -> None:
    with pytest.raises(ConfigError, match="did you mean 'ice_pct'"):
        OutcomeConstraint.from_string("ice_pc", ">= 80")


def test_margin_is_positive_when_satisfied() -> None:
    ge = OutcomeConstraint("ice_pct", ">=", 80.0)
    le = OutcomeConstraint("expansion_pct", "<=", 150.0)
    np.testing.assert_allclose(ge.margin(np.array([85.0, 75.0])), [5.0, -5.0])
    np.testing.assert_allclose(le.margin(np.array([100.0, 200.0])), [50.0, -50.0])
    assert ge.is_satisfied(np.array([80.0, np.nan])).tolist() == [True, False]


def test_constraint_matrix_matches_botorch_feasibility() -> None:
    constraints = [
        OutcomeConstraint("ice_pct", ">=", 80.0),
        OutcomeConstraint("expansion_pct", "<=", 150.0),
    ]
    names = ["tap_density_g_cm3", "expansion_pct", "ice_pct"]
    a, b = outcome_constraint_matrix(constraints, names)
    assert a.shape == (2, 3) and b.shape == (2, 1)
    transforms = get_outcome_constraint_transforms((torch.as_tensor(a), torch.as_tensor(b)))
    Y = torch.tensor(
        [[1.0, 100.0, 85.0], [1.0, 200.0, 85.0], [1.0, 100.0, 70.0]], dtype=torch.double
    )
    feasible = torch.stack([t(Y) <= 0 for t in transforms]).all(dim=0)
    assert feasible.tolist() == [True, False, False]
    with pytest.raises(ConfigError, match="retention_pct"):
        outcome_constraint_matrix([OutcomeConstraint("retention_pct", ">=", 80)], names)


@pytest.mark.parametrize(
    "obj", [OBJECTIVES[0], OBJECTIVES[1], OutcomeConstraint("ice_pct", ">=", 80.0)]
)
def test_objectives_and_constraints_round_trip_through_json(
    obj: Objective | OutcomeConstraint,
) -> None:
    data = json.loads(json.dumps(obj.to_dict()))
    assert data["type"] == type(obj).__name__
    assert type(obj).from_dict(data) == obj
