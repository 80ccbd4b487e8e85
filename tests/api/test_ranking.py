"""Feasibility probabilities of the screening endpoint (Pareto ranks: tests/design)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from poreml.api.ranking import probability_feasible


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
