"""Group labels and grouped K-fold splits: rows of one group never straddle train and test.

Real data are grouped by paper (:func:`real_data_groups`), virtual-lab data by random labels
(:func:`random_groups`); :func:`grouped_splits` turns labels into folds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from poreml.exceptions import ConfigError, DataValidationError, Problem

__all__ = ["grouped_splits", "random_groups", "real_data_groups"]


def random_groups(n: int, n_groups: int, seed: int) -> np.ndarray:
    """Random group labels for rows without a natural grouping (virtual-lab data).

    Args:
        n: number of rows.
        n_groups: number of groups (each gets ``n // n_groups`` or one more rows).
        seed: seed of the shuffle.

    Returns:
        Integer array ``(n,)`` of labels ``0 .. n_groups-1``.
    """
    if n_groups < 1:
        raise ConfigError(f"n_groups: expected an integer >= 1 (got {n_groups!r})")
    labels = np.arange(n) % n_groups
    return np.random.default_rng(seed).permutation(labels)


def real_data_groups(data: pd.DataFrame) -> np.ndarray:
    """Group label of each real-data row: its ``material_id`` (else ``reference``, else ``doi``,
    else its own id).

    Rows of one material share a label, so grouped CV keeps a material's rows on one side (the
    curated dataset's ``material_id`` joins rows whose references are spelled differently);
    tables without that column are grouped by paper. Keys are compared after trimming and
    case-folding.
    """
    n = len(data)
    labels = np.array([f"row:{i}" for i in range(n)], dtype=object)
    for name in ("id", "doi", "reference", "material_id"):
        if name in data.columns:
            col = data[name].astype("string").str.strip().str.casefold()
            ok = col.notna() & (col != "")
            labels = np.where(ok.to_numpy(), (name + ":" + col.fillna("")).to_numpy(), labels)
    return labels


def grouped_splits(
    groups: Sequence[Any] | np.ndarray, n_splits: int = 5, *, seed: int | None = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Grouped K-fold splits: a group's rows are all in the test fold or all in training.

    Args:
        groups: group label of each row.
        n_splits: folds; reduced to the number of distinct groups when there are fewer.
        seed: shuffles which groups share a fold (None: sklearn's size-balanced assignment).

    Returns:
        ``[(train_idx, test_idx), ...]`` positional indices.

    Raises:
        DataValidationError: fewer than two distinct groups.
    """
    labels = np.asarray(groups)
    k = min(int(n_splits), len(np.unique(labels)))
    if k < 2:
        raise DataValidationError(
            [Problem(None, "groups", f"{k} distinct group(s)", "at least 2 groups for CV")]
        )
    if seed is None:
        cv = GroupKFold(n_splits=k)
    else:
        cv = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in cv.split(np.zeros(len(labels)), groups=labels)]
