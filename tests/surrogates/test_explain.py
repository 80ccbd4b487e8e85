"""Exact Shapley explanations: additivity, known values, determinism, summaries, logging."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from poreml.data.schema import DESIGN_COLUMNS
from poreml.design.search_space import SearchSpace
from poreml.surrogates import explain as ex
from poreml.surrogates.base import TARGETS
from poreml.surrogates.evaluation import virtual_lab_data
from poreml.surrogates.registry import make
from poreml.tracker import NullTracker


@pytest.fixture(scope="module")
def model() -> Any:
    """Trees on 48 virtual-lab rows with porosity <= 0.5 (seed 0)."""
    data = virtual_lab_data(64, seed=0)
    data = data[data["porosity"] <= 0.5].reset_index(drop=True)
    return make("trees", n_estimators=10).fit(data[list(DESIGN_COLUMNS)], data[list(TARGETS)])


@pytest.fixture(scope="module")
def designs() -> pd.DataFrame:
    return SearchSpace.contract_box().sample(3, 7)


def _known(frame: pd.DataFrame) -> np.ndarray:
    """A mean with a known Shapley decomposition: additive in porosity and route, plus a
    porosity x carbon interaction; second output = first x 2 + 1."""
    first = (
        3.0 * frame["porosity"].to_numpy()
        + np.where(frame["route"].to_numpy() == "bottom_up", 5.0, 0.0)
        + frame["porosity"].to_numpy() * frame["carbon_wt_pct"].to_numpy()
    )
    return np.column_stack([first] + [2.0 * first + 1.0] * (len(TARGETS) - 1))


def test_contributions_add_up_to_the_predicted_mean(model: Any, designs: pd.DataFrame) -> None:
    result = ex.explain(model, designs)
    mean = model.predict(designs).to_numpy()
    assert result.contributions.shape == (3, len(DESIGN_COLUMNS), len(TARGETS))
    np.testing.assert_allclose(result.mean, mean, rtol=1e-12)
    total = result.base_values + result.contributions.sum(axis=1)
    assert np.all(np.abs(total - mean) <= 1e-6 * np.abs(mean))
    assert result.method.startswith("exact-shapley (shap.explainers.Exact, background n=16")


def test_base_value_is_the_mean_prediction_over_the_background(
    model: Any, designs: pd.DataFrame
) -> None:
    result = ex.explain(model, designs)
    background = ex.background_designs(model)
    expected = model.predict(background).to_numpy().mean(axis=0)
    np.testing.assert_allclose(result.base_values, np.tile(expected, (3, 1)), rtol=1e-10)


def test_answers_are_deterministic_for_a_loaded_model(
    model: Any, designs: pd.DataFrame, tmp_path: Any
) -> None:
    from poreml.surrogates import load

    first = ex.explain(model, designs)
    again = ex.explain(load(model.save(tmp_path / "m")), designs)
    np.testing.assert_array_equal(first.contributions, again.contributions)
    np.testing.assert_array_equal(first.base_values, again.base_values)


def test_background_is_space_filling_inside_the_trained_ranges(model: Any) -> None:
    background = ex.background_designs(model)
    assert len(background) == ex.BACKGROUND_SIZE
    assert background["porosity"].max() <= 0.5
    assert set(background["route"]) == {"bottom_up", "top_down", "transcription"}
    # Sobol stratification: one point in each of the 16 equal slices of the trained range.
    lo, hi = model.domain_.low["porosity"], model.domain_.high["porosity"]
    slices = np.floor((background["porosity"] - lo) / (hi - lo) * 16).clip(0, 15)
    assert sorted(slices.astype(int)) == list(range(16))
    pd.testing.assert_frame_equal(background, ex.background_designs(model))


def test_known_function_gets_its_textbook_shapley_values(model: Any) -> None:
    background = SearchSpace.contract_box().sample(8, 1)
    x = background.iloc[[0]].assign(porosity=0.6, carbon_wt_pct=50.0, route="bottom_up")
    result = ex.explain(model, x, background=background, mean_function=_known)
    phi = dict(zip(result.columns, result.contributions[0, :, 0], strict=True))
    p, c = background["porosity"].to_numpy(), background["carbon_wt_pct"].to_numpy()
    # v(S) = E_b[f(x_S, b_rest)]; the interaction p*c splits by the two-player formula.
    v0, vp, vc, vpc = (p * c).mean(), 0.6 * c.mean(), p.mean() * 50.0, 0.6 * 50.0
    expected_p = 3.0 * (0.6 - p.mean()) + 0.5 * ((vp - v0) + (vpc - vc))
    expected_c = 0.5 * ((vc - v0) + (vpc - vp))
    expected_route = 5.0 * (1.0 - (background["route"] == "bottom_up").mean())
    assert phi["porosity"] == pytest.approx(expected_p, rel=1e-10)
    assert phi["carbon_wt_pct"] == pytest.approx(expected_c, rel=1e-10)
    assert phi["route"] == pytest.approx(expected_route, rel=1e-10)
    for name in ("pore_size_nm", "closed_pore_fraction", "si_domain_nm", "shell_nm"):
        assert phi[name] == pytest.approx(0.0, abs=1e-12)
    # Outputs are explained jointly and in contract units: g = 2 f + 1 gets twice the values.
    np.testing.assert_allclose(
        result.contributions[0, :, 1], 2 * result.contributions[0, :, 0], atol=1e-9
    )


def test_non_additive_numbers_are_never_returned(model: Any, designs: pd.DataFrame) -> None:
    def batch_dependent(frame: pd.DataFrame) -> np.ndarray:
        return _known(frame) + 1e-3 * len(frame)

    with pytest.raises(ex.ExplanationError, match="relative difference"):
        ex.explain(model, designs, mean_function=batch_dependent)


def test_long_frame_has_a_base_value_row_then_one_row_per_column(
    model: Any, designs: pd.DataFrame
) -> None:
    result = ex.explain(model, designs)
    table = result.long_frame(["a", "b", "c"])
    assert list(table.columns) == ["candidate_id", "target", "column", "contribution"]
    assert len(table) == 3 * len(TARGETS) * (1 + len(DESIGN_COLUMNS))
    block = table[(table["candidate_id"] == "b") & (table["target"] == "ssa_m2_g")]
    assert list(block["column"]) == [ex.BASE_VALUE, *DESIGN_COLUMNS]
    j = TARGETS.index("ssa_m2_g")
    assert block["contribution"].sum() == pytest.approx(result.mean[1, j], rel=1e-9)


def test_importance_ranks_the_columns_that_matter(model: Any) -> None:
    background = SearchSpace.contract_box().sample(8, 1)
    rows = SearchSpace.contract_box().sample(4, 2)
    result = ex.explain(model, rows, background=background, mean_function=_known)
    table = ex.importance(result)
    first = table[table["target"] == TARGETS[0]]
    assert set(first.head(3)["column"]) == {"porosity", "carbon_wt_pct", "route"}
    assert list(first["rank"]) == list(range(1, len(DESIGN_COLUMNS) + 1))
    assert (first.tail(6)["mean_abs_contribution"] < 1e-12).all()


def test_partial_dependence_follows_the_function(model: Any) -> None:
    rows = SearchSpace.contract_box().sample(4, 2)
    curves = ex.partial_dependence(model, rows, grid_points=5, mean_function=_known)
    por = curves[(curves["column"] == "porosity") & (curves["target"] == TARGETS[0])]
    slope = np.diff(por["mean"].to_numpy()) / np.diff(por["value"].astype(float).to_numpy())
    np.testing.assert_allclose(slope, 3.0 + rows["carbon_wt_pct"].mean(), rtol=1e-9)
    assert por["value"].astype(float).max() <= 0.5  # the trained range
    route = curves[(curves["column"] == "route") & (curves["target"] == TARGETS[0])]
    diff = route.set_index("value")["mean"]
    assert diff["bottom_up"] - diff["top_down"] == pytest.approx(5.0)
    fig = ex.partial_dependence_figure(curves, TARGETS[0])
    assert len(fig.axes) == len(DESIGN_COLUMNS)


class _Recorder(NullTracker):
    def __init__(self) -> None:
        self.tables: dict[str, pd.DataFrame] = {}
        self.figures: list[str] = []

    def log_table(self, table: pd.DataFrame, filename: str) -> None:
        self.tables[filename] = table

    def log_figure(self, figure: Any, filename: str) -> None:
        self.figures.append(filename)


def test_log_explanations_logs_importance_and_one_figure_per_target(model: Any) -> None:
    tracker = _Recorder()
    table = ex.log_explanations(tracker, model, SearchSpace.contract_box().sample(2, 3))
    assert set(tracker.tables) == {
        "explanation_importance.csv",
        "explanation_importance.md",
        "partial_dependence.csv",
    }
    assert tracker.figures == [f"partial_dependence_{t}.png" for t in TARGETS]
    assert len(table) == len(TARGETS) * len(DESIGN_COLUMNS)
