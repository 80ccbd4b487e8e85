"""Reference designs T0-T13 (the space-filling batches: tests/design/test_search_space.py)."""

from __future__ import annotations

import pytest

from poreml.data.schema import COLUMNS, CONTINUOUS_DESIGN_COLUMNS, DESIGN_COLUMNS
from poreml.virtual_lab import reference_designs


def test_reference_designs_are_the_fourteen_cases_of_8_1():
    frame = reference_designs()
    assert frame["candidate_id"].tolist() == [f"T{i}" for i in range(14)]
    assert list(frame.columns) == ["candidate_id", "case", *DESIGN_COLUMNS]
    assert frame.loc[13, list(CONTINUOUS_DESIGN_COLUMNS)].tolist() == [
        COLUMNS[c].default for c in CONTINUOUS_DESIGN_COLUMNS
    ]
    assert reference_designs(["T7", "T1"])["candidate_id"].tolist() == ["T7", "T1"]
    with pytest.raises(KeyError, match="T14"):
        reference_designs(["T14"])
