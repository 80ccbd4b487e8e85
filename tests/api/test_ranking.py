"""Pareto ranks and feasibility probabilities of the screening endpoint."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from poreml.api.ranking import pareto_ranks, probability_feasible


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
def test_ranks_match_brute_force_non_dominated_sorting(
    brute_force_ranks: Callable[[np.ndarray], np.ndarray], y: np.ndarray
) -> None:
    assert pareto_ranks(y).tolist() == brute_force_ranks(y).tolist()


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 60), st.integers(3, 4)),
        elements=st.floats(-5, 5, allow_nan=False),
    ),
    st.integers(1, 60),
)
def test_early_stop_ranks_whole_fronts_exactly(
    brute_force_ranks: Callable[[np.ndarray], np.ndarray], y: np.ndarray, n_needed: int
) -> None:
    ranks = pareto_ranks(y, n_needed=n_needed)
    full = brute_force_ranks(y)
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


def test_probability_feasible_is_the_product_of_gaussian_tail_probabilities() -> None:
    mean = np.array([[80.0, 900.0], [90.0, 1100.0]])
    std = np.array([[5.0, 100.0], [5.0, 100.0]])
    # ice_pct >= 80 and capacity >= 1000
    p = probability_feasible(mean, std, np.array([1.0, 1.0]), np.array([80.0, 1000.0]))
    phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    assert p[0] == pytest.approx(0.5 * phi(-1.0))
    assert p[1] == pytest.approx(phi(2.0) * phi(1.0))


def test_probability_feasible_handles_upper_bounds_zero_std_and_no_constraints() -> None:
    mean = np.array([[10.0], [30.0]])
    std = np.array([[0.0], [0.0]])
    # expansion_pct <= 20: certain yes for 10, certain no for 30
    p = probability_feasible(mean, std, np.array([-1.0]), np.array([20.0]))
    assert p.tolist() == [1.0, 0.0]
    none = probability_feasible(np.zeros((3, 0)), np.zeros((3, 0)), np.zeros(0), np.zeros(0))
    assert none.tolist() == [1.0, 1.0, 1.0]
