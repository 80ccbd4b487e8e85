"""Validation reports every bad cell at once, with row, column, value and allowed range."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poreml.data.schema import COLUMNS, DESIGN_COLUMNS, DESIGN_DEFAULTS
from poreml.data.validation import validate_designs, validate_table
from poreml.exceptions import DataValidationError


def _problems(exc: pytest.ExceptionInfo[DataValidationError]) -> dict[tuple, object]:
    return {(p.row, p.column): p.value for p in exc.value.problems}


def test_one_error_names_all_four_bad_values() -> None:
    df = pd.DataFrame(
        {
            "route": ["bottom_up", "sideways", "top_down"],
            "porosity": ["1.4", "0.2", "0.3"],
            "pore_size_nm": ["30", "-5", "NaN"],
        }
    )
    with pytest.raises(DataValidationError) as exc:
        validate_designs(df, source="bad.csv")
    found = _problems(exc)
    assert found[(1, "porosity")] == 1.4
    assert found[(2, "route")] == "sideways"
    assert found[(2, "pore_size_nm")] == -5.0
    assert found[(3, "pore_size_nm")] == "NaN"
    message = str(exc.value)
    assert message.startswith("bad.csv: 4 problems")
    for needle in ("porosity", "1.4", "sideways", "-5", "NaN", "[0, 0.9]", "transcription"):
        assert needle in message


def test_left_out_design_columns_get_contract_defaults() -> None:
    out = validate_designs(pd.DataFrame({"porosity": [0.5]}))
    assert list(out.columns) == list(DESIGN_COLUMNS)
    row = out.iloc[0]
    for name, default in DESIGN_DEFAULTS.items():
        if name != "porosity":
            assert row[name] == default
    assert row["porosity"] == 0.5


def test_physical_domain_accepts_what_contract_bounds_reject() -> None:
    df = pd.DataFrame({"carbon_wt_pct": [99.9], "porosity": [0.85]})
    assert validate_designs(df, physical=True)["carbon_wt_pct"].iloc[0] == 99.9
    with pytest.raises(DataValidationError) as exc:
        validate_designs(df, physical=False)
    assert set(_problems(exc)) == {(1, "carbon_wt_pct"), (1, "porosity")}


def test_unknown_column_is_reported_with_a_suggestion() -> None:
    with pytest.raises(DataValidationError) as exc:
        validate_designs(pd.DataFrame({"porositty": [0.2]}))
    assert "did you mean 'porosity'" in str(exc.value)


def test_predicted_columns_and_candidate_id_pass_through() -> None:
    df = pd.DataFrame({"candidate_id": ["a"], "predicted_ice_pct_mean": [80.0]})
    out = validate_designs(df)
    assert out.columns[0] == "candidate_id"
    assert out["predicted_ice_pct_mean"].iloc[0] == 80.0


def test_blank_design_cell_is_an_error_but_blank_measurement_is_not() -> None:
    with pytest.raises(DataValidationError) as exc:
        validate_designs(pd.DataFrame({"porosity": [np.nan]}))
    assert "must not be blank" in str(exc.value)
    table = validate_table(pd.DataFrame({"ice_pct": ["", "85.5"], "porosity": ["", "0.3"]}))
    assert math.isnan(table["ice_pct"].iloc[0])
    assert table["ice_pct"].iloc[1] == 85.5


def test_infinity_and_text_are_rejected_in_measured_columns() -> None:
    df = pd.DataFrame({"ice_pct": ["inf", "eighty", "101"], "candidate_id": ["a", "b", "c"]})
    with pytest.raises(DataValidationError) as exc:
        validate_table(df)
    assert set(_problems(exc)) == {(1, "ice_pct"), (2, "ice_pct"), (3, "ice_pct")}


def test_duplicate_candidate_ids_are_reported() -> None:
    with pytest.raises(DataValidationError) as exc:
        validate_table(pd.DataFrame({"candidate_id": ["a", "b", "a"]}))
    assert (3, "candidate_id") in _problems(exc)


def test_empty_design_frame_is_rejected() -> None:
    with pytest.raises(DataValidationError, match="at least one design row"):
        validate_designs(pd.DataFrame({"porosity": []}))


_continuous = [c for c in DESIGN_COLUMNS if COLUMNS[c].dtype == "float"]


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(_continuous),
    value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8)),
)
def test_any_cell_is_either_accepted_in_range_or_reported(name: str, value: object) -> None:
    col = COLUMNS[name]
    lo, hi = col.bounds
    df = pd.DataFrame({name: [value]}, dtype=object)
    try:
        out = validate_designs(df, physical=False)
    except DataValidationError as err:
        assert [(p.row, p.column) for p in err.problems] == [(1, name)]
    else:
        got = out[name].iloc[0]
        assert math.isfinite(got) and lo <= got <= hi
