"""Pareto ranks and the Pareto front: one non-dominated sorting for the API and the campaign."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from botorch.utils.multi_objective.pareto import is_non_dominated
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from poreml.design.pareto import pareto_mask, pareto_ranks


def _brute_force_ranks(y: np.ndarray) -> np.ndarray:
    """Textbook non-dominated sorting: peel the non-dominated rows, one front at a time."""
    ranks = np.zeros(len(y), dtype=int)
    remaining = list(range(len(y)))
    rank = 0
    while remaining:
        rank += 1
        front = [
            i
            for i in remaining
            if not any(np.all(y[j] >= y[i]) and np.any(y[j] > y[i]) for j in remaining)
        ]
        ranks[front] = rank
        remaining = [i for i in remaining if i not in front]
    return ranks


def test_hand_made_two_objective_case_gets_textbook_ranks() -> None:
    y = np.array(
        [
            [5.0, 1.0],  # front 1
            [1.0, 5.0],  # front 1
            [3.0, 3.0],  # front 1
            [2.0, 2.0],  # dominated by (3, 3) only -> front 2
            [1.0, 1.0],  # dominated by (2, 2) -> front 3
            [3.0, 3.0],  # duplicate of a front-1 row: same rank
            [3.0, 1.0],  # dominated by (5, 1) and (3, 3) -> front 2
        ]
    )
    assert pareto_ranks(y).tolist() == [1, 1, 1, 2, 3, 1, 2]


def test_hand_made_three_objective_case_gets_textbook_ranks() -> None:
    y = np.array(
        [
            [1.0, 0.0, 0.0],  # front 1
            [0.0, 1.0, 0.0],  # front 1
            [0.0, 0.0, 1.0],  # front 1
            [0.5, 0.5, 0.0],  # front 1 (nothing is >= in all three)
            [0.4, 0.4, 0.0],  # dominated by (0.5, 0.5, 0) -> front 2
            [0.0, 0.0, 0.0],  # dominated by everything -> front 3
        ]
    )
    assert pareto_ranks(y).tolist() == [1, 1, 1, 1, 2, 3]


def test_single_objective_ranks_are_dense_ranks_of_the_values() -> None:
    y = np.array([[3.0], [1.0], [3.0], [2.0]])
    assert pareto_ranks(y).tolist() == [1, 3, 1, 2]


@settings(max_examples=150, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 40), st.integers(1, 4)),
        elements=st.sampled_from([0.0, 1.0, 2.0, 3.0, -1.5]),  # small alphabet: many ties
    )
)
def test_ranks_match_brute_force_non_dominated_sorting(y: np.ndarray) -> None:
    assert pareto_ranks(y).tolist() == _brute_force_ranks(y).tolist()


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 60), st.integers(3, 4)),
        elements=st.floats(-5, 5, allow_nan=False),
    ),
    st.integers(1, 60),
)
def test_early_stop_ranks_whole_fronts_exactly(y: np.ndarray, n_needed: int) -> None:
    ranks = pareto_ranks(y, n_needed=n_needed)
    full = _brute_force_ranks(y)
    ranked = ranks > 0
    assert ranked.sum() >= min(n_needed, len(y))
    assert (ranks[ranked] == full[ranked]).all()
    # whole fronts only: an unranked row is worse than every ranked one
    if (~ranked).any():
        assert full[~ranked].min() > ranks[ranked].max()


def test_ranking_rejects_non_finite_values() -> None:
    with pytest.raises(ValueError, match="finite"):
        pareto_ranks(np.array([[1.0, math.nan]]))


def test_hundred_thousand_candidates_rank_in_well_under_a_second() -> None:
    import time

    y = np.random.default_rng(0).normal(size=(100_000, 2))
    start = time.perf_counter()
    ranks = pareto_ranks(y)
    elapsed = time.perf_counter() - start
    assert ranks.min() == 1
    assert elapsed < 2.0, f"ranking 100,000 two-objective rows took {elapsed:.2f} s"


def test_pareto_mask_keeps_only_non_dominated_rows_and_drops_nan() -> None:
    # the last row duplicates the first: identical non-dominated rows are both on the front
    Y = np.array([[1.0, 1.0], [2.0, 0.5], [0.5, 0.5], [np.nan, 5.0], [1.0, 1.0]])
    assert pareto_mask(Y).tolist() == [True, True, False, False, True]


def test_pareto_mask_of_nothing_is_empty_and_a_wrong_shape_is_refused() -> None:
    assert pareto_mask(np.zeros((0, 2))).tolist() == []
    assert pareto_mask(np.array([[np.nan, 1.0]])).tolist() == [False]
    with pytest.raises(ValueError, match="shape"):
        pareto_mask(np.zeros(3))


_TIES = st.sampled_from([0.0, 1.0, 2.0, -1.5])  # small alphabet: duplicates and ties
_SPREAD = st.floats(-5, 5, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    st.tuples(st.integers(0, 40), st.integers(1, 3)).flatmap(
        lambda shape: arrays(np.float64, shape, elements=st.one_of(_TIES, _SPREAD))
    )
)
def test_rank_one_is_the_pareto_mask_and_the_textbook_front(y: np.ndarray) -> None:
    mask = pareto_mask(y)
    if len(y):
        assert mask.tolist() == (pareto_ranks(y) == 1).tolist()
        assert mask.tolist() == (_brute_force_ranks(y) == 1).tolist()
        # BoTorch agrees once it keeps duplicates
        yt = torch.as_tensor(y, dtype=torch.double)
        assert mask.tolist() == is_non_dominated(yt, deduplicate=False).tolist()
    else:
        assert mask.tolist() == []


@settings(max_examples=100, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 30), st.integers(1, 3)), elements=_TIES),
    st.integers(0, 29),
)
def test_a_duplicated_row_shares_the_rank_of_its_twin(y: np.ndarray, pick: int) -> None:
    twin = y[pick % len(y)]
    ranks = pareto_ranks(np.vstack([y, twin]))
    assert ranks[-1] == ranks[pick % len(y)]
    assert pareto_mask(np.vstack([y, twin]))[-1] == (ranks[-1] == 1)
