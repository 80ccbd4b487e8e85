"""Group labels and grouped K-fold splits."""

from __future__ import annotations

import numpy as np
import pandas as pd

from poreml.surrogates.splits import grouped_splits, real_data_groups


def test_reference_groups_never_straddle_train_and_test() -> None:
    refs = ["Liu 2014", " liu 2014", "Kim 2020", "Kim 2020", "Wu 2019", None, None, "Ng 2021"]
    data = pd.DataFrame({"reference": refs, "id": [f"S{i}" for i in range(len(refs))]})
    groups = real_data_groups(data)
    assert groups[0] == groups[1]  # trimmed, case-folded
    assert groups[5] != groups[6]  # no reference: each row its own group (by id)
    splits = grouped_splits(groups, n_splits=4, seed=3)
    assert len(splits) == 4
    tested = np.concatenate([te for _, te in splits])
    assert sorted(tested.tolist()) == list(range(len(refs)))
    for train, test in splits:
        assert not set(groups[train]) & set(groups[test])


def test_rows_of_one_material_share_a_group_whatever_their_reference() -> None:
    data = pd.DataFrame(
        {
            "reference": ["70 Liu 2014", "Liu et al. (ref. 70)", "Kim 2020", "Kim 2020"],
            "material_id": ["seed001-ref70", "seed001-ref70", "", "doi-10.1/x"],
            "id": ["A", "B", "C", "D"],
        }
    )
    groups = real_data_groups(data)
    assert groups[0] == groups[1]  # different spellings, one material
    assert groups[2] == "reference:kim 2020"  # blank material key: falls back to the paper
    assert groups[3] == "material_id:doi-10.1/x"
    assert groups[2] != groups[3]
