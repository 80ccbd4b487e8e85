"""Regression metrics of probabilistic predictions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from poreml.surrogates.metrics import regression_metrics


def test_metrics_on_a_hand_made_example() -> None:
    y = [1.0, 2.0, 3.0, 4.0, np.nan]
    mean = [1.0, 2.0, 4.0, 2.0, 0.0]
    std = [1.0, 1.0, 1.0, 2.0, 1.0]
    lower = [0.5, 2.5, 3.0, 0.0, 0.0]
    upper = [1.5, 3.5, 5.0, 3.0, 0.0]
    m = regression_metrics(y, mean, std, lower, upper)
    assert m["n"] == 4
    assert m["mae"] == pytest.approx(0.75)
    assert m["rmse"] == pytest.approx(math.sqrt(1.25))
    assert m["r2"] == pytest.approx(0.0)  # SS_res = SS_tot = 5
    nll = 0.5 * math.log(2 * math.pi) + math.log(2.0) / 4 + 0.25
    assert m["nll"] == pytest.approx(nll)
    assert m["nll_std"] == pytest.approx(nll - math.log(math.sqrt(5 / 3)))
    assert m["coverage_90"] == pytest.approx(0.5)  # bounds are inclusive: 3 in [3, 5]


def test_gaussian_interval_is_the_default_and_empty_input_gives_nan() -> None:
    m = regression_metrics([0.0, 1.0], [0.0, 0.0], [1.0, 1.0])
    assert m["coverage_90"] == 1.0  # |1| < 1.645
    m = regression_metrics([0.0, 2.0], [0.0, 0.0], [1.0, 1.0])
    assert m["coverage_90"] == 0.5
    empty = regression_metrics([np.nan], [0.0], [1.0])
    assert empty["n"] == 0 and math.isnan(empty["mae"])
