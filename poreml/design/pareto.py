"""Pareto ranks and the Pareto front, in the larger-is-better frame of the design stage.

Every function here takes objective values already signed by
:func:`poreml.design.objectives.signed_objectives` (``+1`` maximise, ``-1`` minimise), so larger
is better in every column. The screening API ranks candidates with :func:`pareto_ranks`; the
campaign and the benchmarks take the front with :func:`pareto_mask`, which is *defined* as the
rows of rank 1, so the two can never disagree.

Dominance and duplicates. Row ``a`` dominates row ``b`` when it is at least as good in every
column and strictly better in one. Identical rows never dominate each other, so they share a
rank: two identical non-dominated rows are *both* on the front (the usual non-dominated
sorting answer; BoTorch's ``is_non_dominated(..., deduplicate=False)`` agrees, while its
default ``deduplicate=True`` would keep only the first).

:func:`pareto_ranks` is non-dominated sorting (rank 1 = the Pareto front, rank 2 = the front
once rank 1 is removed, ...). With three or more objectives it can stop as soon as
enough candidates are ranked, which is what a screen asking for ``top_k`` of 100,000 candidates
needs (and what :func:`pareto_mask` uses: it stops after the first front):

* one objective: a dense ranking of the values;
* two objectives: one pass over the lexicographically sorted candidates with a binary search
  per candidate, ``O(n log n)``, every candidate ranked;
* three or more: fronts are peeled one at a time from the lexicographically sorted candidates,
  blocks of candidates compared at once with the front found so far, then with each other.

This module needs numpy only (no torch), so the screening API can import it cheaply.
"""

from __future__ import annotations

import bisect

import numpy as np

__all__ = ["pareto_mask", "pareto_ranks"]

_BLOCK = 512
"""Candidates compared at once when there are three or more objectives."""


def pareto_ranks(values: np.ndarray, n_needed: int | None = None) -> np.ndarray:
    """Non-dominated sorting rank of every row (larger is better in every column).

    Row ``a`` dominates row ``b`` when it is at least as good in every column and strictly
    better in one; identical rows never dominate each other and share a rank.

    Args:
        values: finite floats, shape ``(n, m)`` with ``m >= 1``.
        n_needed: with three or more columns, stop peeling fronts once at least this many rows
            are ranked (whole fronts are always ranked). None ranks every row. With one or two
            columns every row is ranked anyway, as that is as fast.

    Returns:
        Integer ranks, shape ``(n,)``: 1 for the Pareto front, 2 for the next front, ...;
        0 for rows left unranked because ``n_needed`` was reached.

    Raises:
        ValueError: ``values`` is not a 2-D array of finite numbers.
    """
    y = np.asarray(values, dtype=np.float64)
    if y.ndim != 2 or y.shape[1] < 1:
        raise ValueError(f"expected values of shape (n, m >= 1), got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError("expected finite objective values, got NaN or infinity")
    n, m = y.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if m == 1:
        distinct_desc = -np.unique(-y[:, 0])
        return 1 + np.searchsorted(-distinct_desc, -y[:, 0]).astype(np.int64)
    # Lexicographically descending: a row that dominates another sorts before it, and
    # identical rows sit next to each other.
    order = np.lexsort(tuple(-y[:, j] for j in reversed(range(m))))
    ranks = np.zeros(n, dtype=np.int64)
    if m == 2:
        ranks[order] = _ranks_2d(y[order])
        return ranks
    target = n if n_needed is None else min(max(int(n_needed), 1), n)
    remaining = order
    rank = 0
    while remaining.size and n - remaining.size < target:
        rank += 1
        front = _front_sorted(y[remaining])
        ranks[remaining[front]] = rank
        remaining = remaining[~front]
    return ranks


def pareto_mask(Y: np.ndarray) -> np.ndarray:
    """Rows on the Pareto front (rank 1 of :func:`pareto_ranks`); rows with NaN never are.

    Identical non-dominated rows are all on the front (see the module docstring).

    Args:
        Y: outcomes in the larger-is-better frame, shape ``(n, m)`` with ``m >= 1``; a row
            with a NaN or infinite value is left out of the comparison and off the front.

    Returns:
        Boolean array of shape ``(n,)``.

    Raises:
        ValueError: ``Y`` is not of shape ``(n, m >= 1)``.
    """
    y = np.asarray(Y, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"expected Y of shape (n, m), got shape {y.shape}")
    finite = np.isfinite(y).all(axis=-1)
    mask = np.zeros(y.shape[0], dtype=bool)
    if finite.any():
        mask[finite] = pareto_ranks(y[finite], n_needed=1) == 1
    return mask


def _ranks_2d(ys: np.ndarray) -> np.ndarray:
    """Ranks of two-objective rows sorted lexicographically descending, ``O(n log n)``.

    Every earlier row is at least as good in the first column, so a row is dominated by front
    ``k`` exactly when the largest second value on that front so far is ``>=`` its own (an
    equal value comes from a row better in the first column, or from an identical row, which
    takes the same rank). Those largest values do not increase with ``k``, so a binary search
    finds the first front that does not dominate the row.
    """
    first, second = ys[:, 0].tolist(), ys[:, 1].tolist()
    neg_best: list[float] = []  # -(largest second value) per front, non-decreasing
    out = np.empty(len(first), dtype=np.int64)
    prev: tuple[float, float] | None = None
    k = 0
    for i, (a, b) in enumerate(zip(first, second, strict=True)):
        if (a, b) != prev:
            k = bisect.bisect_right(neg_best, -b)
            if k == len(neg_best):
                neg_best.append(-b)
            else:
                neg_best[k] = -b
            prev = (a, b)
        out[i] = k + 1
    return out


def _front_sorted(ys: np.ndarray) -> np.ndarray:
    """Front mask of rows (any number of columns) sorted lexicographically descending.

    A row is on the front when no row dominates it. Any dominated row is dominated by some
    front row that sorts before it, so each block of rows is first checked against the front
    rows of earlier blocks, and only its survivors against each other.
    """
    n = ys.shape[0]
    mask = np.zeros(n, dtype=bool)
    front = ys[:0]
    for start in range(0, n, _BLOCK):
        block = ys[start : start + _BLOCK]
        alive = np.flatnonzero(~_dominated_by(front, block))
        if alive.size:
            survivors = block[alive]
            alive = alive[~_dominated_by(survivors, survivors)]
            mask[start + alive] = True
            front = np.concatenate([front, block[alive]])
    return mask


def _dominated_by(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each row of ``b``: whether some row of ``a`` dominates it. Shapes (p, m), (q, m)."""
    if a.shape[0] == 0:
        return np.zeros(b.shape[0], dtype=bool)
    ge = np.all(a[:, None, :] >= b[None, :, :], axis=2)
    gt = np.any(a[:, None, :] > b[None, :, :], axis=2)
    return np.any(ge & gt, axis=0)
