"""Evaluation figures and the files written from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from poreml.surrogates.evaluation import evaluate_real
from poreml.surrogates.figures import calibration_figure, learning_curve_figure, parity_figure
from poreml.surrogates.report import markdown_table, write_evaluation


def test_figures_and_files(tmp_path: Path, real_like: pd.DataFrame) -> None:
    data = real_like
    result = evaluate_real(data, "ridge", baselines=("mean",), n_splits=3)
    parity = parity_figure(result.predictions, "ridge")
    assert sum(ax.get_visible() for ax in parity.axes) == len(result.targets)
    calibration = calibration_figure(result.calibration)
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
    lc = learning_curve_figure(curves)
    assert lc.axes[0].get_xscale() == "log"
    written = write_evaluation(
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
    assert markdown_table(frame).splitlines() == [
        "| a | b | c |",
        "| --- | ---: | ---: |",
        "| x\\|y | 1.23 | 1 |",
        "|  |  | 2 |",
    ]
