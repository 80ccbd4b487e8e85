"""Tracker protocol, NullTracker and the dataset digest."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from poreml.tracker import NullTracker, Tracker, canonical_csv, dataset_digest


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "route": ["bottom_up", "top_down"],
            "porosity": [0.1, 0.30000000000000004],
            "ice_pct": [80.0, np.nan],
        }
    )


def test_digest_is_sha256_of_the_canonical_csv() -> None:
    frame = _frame()
    text = canonical_csv(frame)
    assert text.splitlines()[0] == "route,porosity,ice_pct"
    assert text.splitlines()[2].endswith(",")  # NaN is a blank cell
    assert "0.30000000000000004" in text  # round-trip exact floats
    assert dataset_digest(frame) == hashlib.sha256(text.encode()).hexdigest()


def test_digest_ignores_index_but_not_values_or_column_order() -> None:
    frame = _frame()
    same = frame.set_axis([10, 20])
    assert dataset_digest(frame) == dataset_digest(same)
    changed = frame.copy()
    changed.loc[0, "porosity"] = 0.1000001
    assert dataset_digest(changed) != dataset_digest(frame)
    assert dataset_digest(frame[["porosity", "route", "ice_pct"]]) != dataset_digest(frame)


def test_null_tracker_satisfies_the_protocol_and_records_nothing() -> None:
    tracker = NullTracker()
    assert isinstance(tracker, Tracker)
    with tracker.start_run("x", nested=True) as run:
        assert run is None
        tracker.log_params({"a": 1})
        tracker.log_metrics({"m": 1.0}, step=3)
        tracker.set_tags({"t": "v"})
        tracker.log_table(_frame(), "t.csv")
        tracker.log_artifact("nowhere.txt")
        assert tracker.log_dataset(_frame(), "d") == dataset_digest(_frame())
