"""Design parameters validate themselves against the data contract and round-trip as JSON."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poreml.data import schema
from poreml.design.parameters import (
    CategoricalParameter,
    ContinuousParameter,
    FixedParameter,
    Parameter,
    complete_parameters,
    parameter_from_dict,
)
from poreml.exceptions import ConfigError


def test_continuous_parameter_stores_float_bounds_and_scale() -> None:
    p = ContinuousParameter("pore_size_nm", (1, 1000), "log")
    assert p.bounds == (1.0, 1000.0)
    assert isinstance(p.bounds[0], float)
    assert p.scale == "log"
    assert ContinuousParameter("porosity", (0.0, 0.8)).scale == "linear"


@pytest.mark.parametrize(
    ("kwargs", "key", "fragment"),
    [
        ({"name": "porosity", "bounds": (0.0, 0.95)}, "parameters.porosity.bounds", "[0, 0.8]"),
        ({"name": "porosity", "bounds": (0.5, 0.5)}, "parameters.porosity.bounds", "low < high"),
        ({"name": "porosity", "bounds": (0.6, 0.2)}, "parameters.porosity.bounds", "low < high"),
        ({"name": "porosity", "bounds": (0.1,)}, "parameters.porosity.bounds", "two numbers"),
        ({"name": "porosity", "bounds": ("0", 1)}, "parameters.porosity.bounds[0]", "a number"),
        (
            {"name": "porosity", "bounds": (0, float("nan"))},
            "parameters.porosity.bounds[1]",
            "finite",
        ),
        (
            {"name": "shell_nm", "bounds": (0.0, 50.0), "scale": "log"},
            "parameters.shell_nm.bounds",
            "low > 0",
        ),
        (
            {"name": "porosity", "bounds": (0, 0.8), "scale": "ln"},
            "parameters.porosity.scale",
            "'log'",
        ),
        ({"name": "porosty", "bounds": (0, 0.8)}, "parameters.porosty", "did you mean 'porosity'"),
        ({"name": "route", "bounds": (0, 2)}, "parameters.route", "categorical"),
        ({"name": "ice_pct", "bounds": (0, 2)}, "parameters.ice_pct", "design column"),
    ],
)
def test_invalid_continuous_parameter_error_names_the_key(
    kwargs: dict, key: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        ContinuousParameter(**kwargs)
    message = str(info.value)
    assert message.startswith(key + ":"), message
    assert fragment in message
    assert "Fix:" in message


def test_bounds_may_span_exactly_the_contract_range() -> None:
    for name in schema.CONTINUOUS_DESIGN_COLUMNS:
        ContinuousParameter(name, schema.COLUMNS[name].bounds)


def test_categorical_values_are_stored_in_contract_order() -> None:
    p = CategoricalParameter("route", ["transcription", "bottom_up"])
    assert p.values == ("bottom_up", "transcription")
    assert CategoricalParameter("route", schema.ROUTES[::-1]).values == schema.ROUTES


@pytest.mark.parametrize(
    ("values", "key", "fragment"),
    [
        (["top-down"], "parameters.route.values[0]", "did you mean 'top_down'"),
        ([], "parameters.route.values", "at least one"),
        (["top_down", "top_down"], "parameters.route.values", "repeated 'top_down'"),
        ("top_down", "parameters.route.values", "a list of strings"),
    ],
)
def test_invalid_categorical_values_error_names_the_key(
    values: object, key: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        CategoricalParameter("route", values)  # type: ignore[arg-type]
    assert str(info.value).startswith(key + ":")
    assert fragment in str(info.value)


def test_categorical_parameter_only_for_categorical_columns() -> None:
    with pytest.raises(ConfigError, match=r"parameters\.porosity: .*continuous"):
        CategoricalParameter("porosity", ["a"])


def test_fixed_parameter_validates_value_against_the_contract() -> None:
    assert FixedParameter("d50_um", 12).value == 12.0
    assert FixedParameter("route", "top_down").value == "top_down"
    with pytest.raises(ConfigError, match=r"parameters.d50_um.fixed: .*\[2, 25\]"):
        FixedParameter("d50_um", 30.0)
    with pytest.raises(ConfigError, match=r"parameters\.route\.fixed"):
        FixedParameter("route", "sol_gel")
    with pytest.raises(ConfigError, match=r"parameters\.d50_um\.fixed: expected a number"):
        FixedParameter("d50_um", "12")
    with pytest.raises(ConfigError, match=r"parameters\.d50_um\.fixed"):
        FixedParameter("d50_um", True)


def test_parameters_are_frozen() -> None:
    p = ContinuousParameter("porosity", (0.0, 0.8))
    with pytest.raises(AttributeError):
        p.bounds = (0.0, 0.5)  # type: ignore[misc]


@pytest.mark.parametrize(
    "param",
    [
        ContinuousParameter("si_domain_nm", (1.0, 3000.0), "log"),
        ContinuousParameter("porosity", (0.0, 0.8)),
        CategoricalParameter("route", ["top_down", "bottom_up"]),
        FixedParameter("d50_um", 12.0),
        FixedParameter("route", "transcription"),
    ],
)
def test_parameter_round_trips_through_json(param: Parameter) -> None:
    data = json.loads(json.dumps(param.to_dict()))
    assert data["type"] == type(param).__name__
    assert parameter_from_dict(data) == param
    assert type(param).from_dict(data) == param


@settings(max_examples=50, deadline=None)
@given(
    name=st.sampled_from(schema.CONTINUOUS_DESIGN_COLUMNS),
    a=st.floats(0, 1),
    b=st.floats(0, 1),
)
def test_any_valid_continuous_parameter_round_trips(name: str, a: float, b: float) -> None:
    lo_c, hi_c = schema.COLUMNS[name].bounds
    lo, hi = sorted((lo_c + a * (hi_c - lo_c), lo_c + b * (hi_c - lo_c)))
    if not lo < hi:
        return
    p = ContinuousParameter(name, (lo, hi))
    assert parameter_from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_from_dict_rejects_wrong_type_and_unknown_keys() -> None:
    with pytest.raises(ConfigError, match=r"parameter\.type"):
        parameter_from_dict({"type": "Banana", "name": "porosity"})
    with pytest.raises(ConfigError, match=r"parameter\.type"):
        ContinuousParameter.from_dict(
            {"type": "FixedParameter", "name": "porosity", "bounds": [0, 1]}
        )
    with pytest.raises(ConfigError, match=r"unknown key 'scal'.*did you mean 'scale'"):
        ContinuousParameter.from_dict(
            {"type": "ContinuousParameter", "name": "porosity", "bounds": [0, 0.8], "scal": "log"}
        )


def test_unlisted_design_columns_are_fixed_at_contract_defaults() -> None:
    params = complete_parameters([ContinuousParameter("porosity", (0.0, 0.8))])
    assert tuple(p.name for p in params) == schema.DESIGN_COLUMNS
    for p in params:
        if p.name == "porosity":
            assert isinstance(p, ContinuousParameter)
        else:
            assert p == FixedParameter(p.name, schema.DESIGN_DEFAULTS[p.name])


def test_duplicate_parameters_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"parameters\.porosity: defined twice"):
        complete_parameters(
            [FixedParameter("porosity", 0.3), ContinuousParameter("porosity", (0, 0.8))]
        )
