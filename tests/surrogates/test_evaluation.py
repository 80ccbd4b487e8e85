"""Evaluation workflows: grouped CV, real-data report, design sampling, learning curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from poreml.exceptions import DataValidationError
from poreml.surrogates import evaluation as ev
from poreml.surrogates.base import TARGETS
from poreml.surrogates.metrics import DEFAULT_LEVELS, calibration_table, metrics_table
from poreml.surrogates.registry import make
from poreml.surrogates.splits import random_groups


def test_cross_validation_predictions_are_out_of_group() -> None:
    rng = np.random.default_rng(0)
    n = 40
    X = pd.DataFrame({"porosity": rng.uniform(0, 0.8, n), "route": ["bottom_up"] * n})
    y = pd.DataFrame({"ice_pct": 70 + 20 * X["porosity"] + rng.normal(0, 1, n)})
    y.loc[[3, 7], "ice_pct"] = np.nan
    groups = random_groups(n, 8, seed=1)
    assert np.bincount(groups).tolist() == [5] * 8

    def factory(targets):
        return make("ridge", targets=list(targets))

    preds = ev.cross_val_predict_grouped(
        factory, X, y, groups, targets=["ice_pct"], n_splits=4, levels=(0.5, 0.9)
    )
    assert len(preds) == n  # one prediction per row and target, NaN targets included
    assert {"lower_50", "upper_50", "lower_90", "upper_90"} <= set(preds.columns)
    # every group is predicted in exactly one fold: its rows never trained the model that
    # predicted them
    folds_per_group = preds.groupby("group")["fold"].nunique()
    assert (folds_per_group == 1).all() and len(folds_per_group) == 8
    assert preds["fold"].nunique() == 4
    np.testing.assert_array_equal(preds["group"].to_numpy(), groups[preds["row"].to_numpy()])
    metrics = metrics_table(preds, by=("target",))
    assert metrics.loc[0, "n"] == n - 2
    assert metrics.loc[0, "r2"] > 0.5
    cal = calibration_table(preds, levels=(0.5, 0.9), by=("target",))
    assert cal["level"].tolist() == [0.5, 0.9]
    assert cal["observed"].iloc[0] <= cal["observed"].iloc[1]


def test_real_data_report_compares_against_baselines_and_skips_thin_targets(
    real_like: pd.DataFrame,
) -> None:
    data = real_like
    result = ev.evaluate_real(data, "ridge", baselines=("mean",), n_splits=4, min_rows=15)
    assert result.targets == ("ice_pct",)
    assert (
        "retention_pct" in result.skipped and "12 measured rows" in result.skipped["retention_pct"]
    )
    assert "ssa_m2_g" in result.skipped
    m = result.metrics.set_index("model")
    assert set(m.index) == {"ridge", "mean"}
    assert m.loc["ridge", "n"] == len(data)
    assert m.loc["mean", "mae_skill"] == pytest.approx(0.0)
    assert m.loc["ridge", "mae"] < m.loc["mean", "mae"]  # route explains ICE here
    assert set(result.calibration["level"]) == set(DEFAULT_LEVELS)
    assert result.n_groups == 12
    with pytest.raises(DataValidationError, match="measured rows"):
        ev.evaluate_real(data, "ridge", targets=["retention_pct"], min_rows=15)


def test_learning_curves_are_tidy_and_scored_on_noise_free_data() -> None:
    curves = ev.learning_curves(
        "ridge",
        sizes=(16, 48),
        tasks=(ev.Task("baseline", None), ev.Task("baseline", 2)),
        n_test=64,
    )
    assert len(curves) == 2 * 2 * len(TARGETS)
    assert set(curves["task"]) == {"baseline", "baseline/r2"}
    assert curves["n"].eq(64).all()
    assert {"r2", "mae", "coverage_90", "fit_seconds"} <= set(curves.columns)
    # more data helps a linear model on average
    mean_r2 = curves.groupby("n_train")["r2"].mean()
    assert mean_r2[48] > mean_r2[16]
