"""Feasibility probabilities for screening, vectorised over candidates.

The screen's Pareto ranks come from :func:`poreml.design.pareto.pareto_ranks`, the one
non-dominated sorting of the project.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

__all__ = ["probability_feasible"]


def probability_feasible(
    mean: np.ndarray, std: np.ndarray, signs: np.ndarray, bounds: np.ndarray
) -> np.ndarray:
    """Probability that every outcome constraint holds under independent Gaussian predictions.

    Constraint ``j`` is ``signs[j] * (y_j - bounds[j]) >= 0``, with ``y_j ~ N(mean, std**2)``
    independent across constraints; a zero standard deviation gives a probability of 0 or 1.

    Args:
        mean: predicted means of the constrained outcomes, shape ``(n, c)``.
        std: predicted standard deviations, same shape, ``>= 0``.
        signs: ``+1`` for ``>=`` and ``-1`` for ``<=``, shape ``(c,)``.
        bounds: the constraint bounds, shape ``(c,)``.

    Returns:
        Probabilities in ``[0, 1]``, shape ``(n,)``; all ones when ``c == 0``.
    """
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    margin = np.asarray(signs, dtype=np.float64) * (mean - np.asarray(bounds, dtype=np.float64))
    positive = std > 0
    z = margin / np.where(positive, std, 1.0)
    p = np.where(positive, ndtr(z), (margin >= 0).astype(np.float64))
    return np.prod(p, axis=1) if p.shape[1] else np.ones(p.shape[0])
