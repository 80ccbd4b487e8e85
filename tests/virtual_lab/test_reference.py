"""Reference designs T0-T13 and the space-filling demo batches."""

from __future__ import annotations

import numpy as np
import pytest

from poreml.data.schema import COLUMNS, CONTINUOUS_DESIGN_COLUMNS, DESIGN_COLUMNS, ROUTES
from poreml.virtual_lab import reference_designs, space_filling_designs


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


@pytest.mark.parametrize("n", [1, 7, 30])
def test_space_filling_designs_are_a_latin_hypercube_over_the_search_box(n):
    frame = space_filling_designs(n, seed=3)
    assert list(frame.columns) == list(DESIGN_COLUMNS) and len(frame) == n
    counts = frame["route"].value_counts()
    assert set(counts.index) <= set(ROUTES)
    assert counts.max() - (counts.min() if len(counts) == 3 else 0) <= 1
    for name in CONTINUOUS_DESIGN_COLUMNS:
        col = COLUMNS[name]
        lo, hi = col.bounds
        values = frame[name].to_numpy()
        assert ((values >= lo) & (values <= hi)).all()
        u = (np.log(values / lo) / np.log(hi / lo)) if col.log_scale else (values - lo) / (hi - lo)
        strata = np.floor(u * n).astype(int)
        assert sorted(strata) == list(range(n)), name  # one point per stratum


def test_space_filling_designs_are_seeded():
    a, b = space_filling_designs(12, 1), space_filling_designs(12, 1)
    assert a.equals(b)
    assert not a.equals(space_filling_designs(12, 2))
    with pytest.raises(ValueError):
        space_filling_designs(0)
