"""Evaluation: metrics, grouped CV, real-data report, learning curves, plots, files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poreml.data.schema import DESIGN_COLUMNS
from poreml.exceptions import DataValidationError
from poreml.surrogates import evaluation as ev
from poreml.surrogates.base import TARGETS


def test_metrics_on_a_hand_made_example() -> None:
    y = [1.0, 2.0, 3.0, 4.0, np.nan]
    mean = [1.0, 2.0, 4.0, 2.0, 0.0]
    std = [1.0, 1.0, 1.0, 2.0, 1.0]
    lower = [0.5, 2.5, 3.0, 0.0, 0.0]
    upper = [1.5, 3.5, 5.0, 3.0, 0.0]
    m = ev.regression_metrics(y, mean, std, lower, upper)
    assert m["n"] == 4
    assert m["mae"] == pytest.approx(0.75)
    assert m["rmse"] == pytest.approx(math.sqrt(1.25))
    assert m["r2"] == pytest.approx(0.0)  # SS_res = SS_tot = 5
    nll = 0.5 * math.log(2 * math.pi) + math.log(2.0) / 4 + 0.25
    assert m["nll"] == pytest.approx(nll)
    assert m["nll_std"] == pytest.approx(nll - math.log(math.sqrt(5 / 3)))
    assert m["coverage_90"] == pytest.approx(0.5)  # bounds are inclusive: 3 in [3, 5]


def test_gaussian_interval_is_the_default_and_empty_input_gives_nan() -> None:
    m = ev.regression_metrics([0.0, 1.0], [0.0, 0.0], [1.0, 1.0])
    assert m["coverage_90"] == 1.0  # |1| < 1.645
    m = ev.regression_metrics([0.0, 2.0], [0.0, 0.0], [1.0, 1.0])
    assert m["coverage_90"] == 0.5
    empty = ev.regression_metrics([np.nan], [0.0], [1.0])
    assert empty["n"] == 0 and math.isnan(empty["mae"])


def test_reference_groups_never_straddle_train_and_test() -> None:
    refs = ["Liu 2014", " liu 2014", "Kim 2020", "Kim 2020", "Wu 2019", None, None, "Ng 2021"]
    data = pd.DataFrame({"reference": refs, "id": [f"S{i}" for i in range(len(refs))]})
    groups = ev.real_data_groups(data)
    assert groups[0] == groups[1]  # trimmed, case-folded
    assert groups[5] != groups[6]  # no reference: each row its own group (by id)
    splits = ev.grouped_splits(groups, n_splits=4, seed=3)
    assert len(splits) == 4
    tested = np.concatenate([te for _, te in splits])
    assert sorted(tested.tolist()) == list(range(len(refs)))
    for train, test in splits:
        assert not set(groups[train]) & set(groups[test])


def test_cross_validation_predictions_are_out_of_group() -> None:
    rng = np.random.default_rng(0)
    n = 40
    X = pd.DataFrame({"porosity": rng.uniform(0, 0.8, n), "route": ["bottom_up"] * n})
    y = pd.DataFrame({"ice_pct": 70 + 20 * X["porosity"] + rng.normal(0, 1, n)})
    y.loc[[3, 7], "ice_pct"] = np.nan
    groups = ev.random_groups(n, 8, seed=1)
    assert np.bincount(groups).tolist() == [5] * 8
    from poreml.surrogates.registry import make

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
    metrics = ev.metrics_table(preds, by=("target",))
    assert metrics.loc[0, "n"] == n - 2
    assert metrics.loc[0, "r2"] > 0.5
    cal = ev.calibration_table(preds, levels=(0.5, 0.9), by=("target",))
    assert cal["level"].tolist() == [0.5, 0.9]
    assert cal["observed"].iloc[0] <= cal["observed"].iloc[1]


def _real_like(n_refs: int = 12, per_ref: int = 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(n_refs):
        route = ["bottom_up", "top_down", "transcription"][r % 3]
        for k in range(per_ref):
            rows.append(
                {
                    "id": f"S{r}-{k}",
                    "reference": f"Author {r}; J. {2000 + r}",
                    "route": route if rng.random() > 0.2 else None,
                    "porosity": rng.uniform(0.1, 0.7) if rng.random() > 0.7 else np.nan,
                    "ice_pct": {"bottom_up": 75, "top_down": 82, "transcription": 88}[route]
                    + rng.normal(0, 2),
                    "retention_pct": rng.uniform(60, 95) if k == 0 else np.nan,
                }
            )
    return pd.DataFrame(rows)


def test_real_data_report_compares_against_baselines_and_skips_thin_targets() -> None:
    data = _real_like()
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
    assert set(result.calibration["level"]) == set(ev.DEFAULT_LEVELS)
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


def test_prediction_table_has_every_target_with_intervals() -> None:
    from poreml.surrogates.registry import make

    data = ev.virtual_lab_data(32, seed=1)
    model = make("ridge").fit(data[list(DESIGN_COLUMNS)], data[list(TARGETS)])
    table = ev.prediction_table(model, data[["candidate_id", *DESIGN_COLUMNS]].head(5))
    assert table.columns[0] == "candidate_id"
    for t in TARGETS:
        assert (table[f"{t}_lower"] <= table[f"{t}_upper"]).all()
        assert (table[f"{t}_std"] > 0).all()
    assert table["in_domain"].dtype == bool


def test_figures_and_files(tmp_path: Path) -> None:
    data = _real_like()
    result = ev.evaluate_real(data, "ridge", baselines=("mean",), n_splits=3)
    parity = ev.parity_figure(result.predictions, "ridge")
    assert sum(ax.get_visible() for ax in parity.axes) == len(result.targets)
    calibration = ev.calibration_figure(result.calibration)
    assert len(calibration.axes) == 2  # one panel per model
    curves = pd.DataFrame(
        {
            "model": "m",
            "task": ["a", "a", "b", "b"],
            "n_train": [16, 32, 16, 32],
            "target": "ice_pct",
            "r2": [0.5, 0.8, 0.4, 0.7],
        }
    )
    lc = ev.learning_curve_figure(curves)
    assert lc.axes[0].get_xscale() == "log"
    written = ev.write_evaluation(
        tmp_path / "out",
        tables={"real_metrics": result.metrics},
        figures={"parity": parity, "calibration": calibration, "learning_curves": lc},
    )
    names = sorted(p.name for p in written)
    assert names == [
        "surrogate_calibration.png",
        "surrogate_learning_curves.png",
        "surrogate_parity.png",
        "surrogate_real_metrics.csv",
        "surrogate_real_metrics.md",
    ]
    md = (tmp_path / "out" / "surrogate_real_metrics.md").read_text()
    assert md.startswith("| model | target | n |")
    assert (tmp_path / "out" / "surrogate_parity.png").read_bytes()[:4] == b"\x89PNG"


def test_markdown_table_formats_numbers_and_blanks() -> None:
    frame = pd.DataFrame({"a": ["x|y", None], "b": [1.23456, np.nan], "c": [1, 2]})
    assert ev.markdown_table(frame).splitlines() == [
        "| a | b | c |",
        "| --- | ---: | ---: |",
        "| x\\|y | 1.23 | 1 |",
        "|  |  | 2 |",
    ]
