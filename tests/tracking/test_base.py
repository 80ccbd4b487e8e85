"""MLflow-side helpers: flattening params and keeping finite metrics."""

from __future__ import annotations

import math

import numpy as np

from poreml.tracking.base import finite_metrics, flatten_params


def test_flatten_params_and_finite_metrics() -> None:
    assert flatten_params({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {
        "a.b": "1",
        "a.c": "[1, 2]",
        "d": "None",
    }
    assert finite_metrics({"a": 1, "b": math.nan, "c": None, "d": "x", "e": np.float32(2)}) == {
        "a": 1.0,
        "e": 2.0,
    }
