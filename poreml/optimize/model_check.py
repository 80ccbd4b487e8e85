"""Model checking: how well the campaign model's predictions matched the lab, out of sample.

Every model-based proposal stores its predicted mean and standard deviation per outcome
(``predicted_<outcome>_mean`` / ``_std``); once the lab's results come back, those predictions
against what was measured are an out-of-sample record of the model. :func:`calibration`
summarises it (RMSE, 90 % coverage); :func:`widening` turns it into the factor by which the
acquisition widens each outcome's posterior (:mod:`poreml.optimize.proposals`). ``campaign
status`` shows both (:func:`model_check`). Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from poreml.optimize.state import Observation

__all__ = [
    "MAX_WIDENING",
    "MIN_WIDENING_RECORDS",
    "Z90",
    "calibration",
    "model_check",
    "widening",
]

Z90 = 1.6448536269514722
"""Two-sided 90 % quantile of the standard normal."""

MIN_WIDENING_RECORDS = 8
"""Out-of-sample records an outcome needs before :func:`widening` departs from 1."""

MAX_WIDENING = 3.0
"""Largest factor :func:`widening` applies to an outcome's posterior standard deviation."""


def _checked(records: Sequence[Observation], name: str) -> list[tuple[float, float | None, float]]:
    """``(mean, std, measured)`` of ``name`` for every successful synthesis that was proposed
    with a prediction of it and has a measured value (std None when none was stored)."""
    out = []
    for r in records:
        mean = r.predicted.get(f"predicted_{name}_mean")
        y = r.measured.get(name)
        if mean is not None and y is not None and r.feasible is not False:
            out.append((mean, r.predicted.get(f"predicted_{name}_std"), y))
    return out


def calibration(records: Sequence[Observation], outcomes: Sequence[str]) -> dict[str, float]:
    """How well earlier model predictions matched what was then measured (out of sample).

    Args:
        records: the observations.
        outcomes: the campaign outcomes.

    Returns:
        Per outcome over observations proposed with predictions: ``<outcome>.n``,
        ``<outcome>.rmse`` and ``<outcome>.coverage90`` (share inside mean ± 1.645 std).
    """
    out: dict[str, float] = {}
    for name in outcomes:
        errs, inside = [], []
        for mean, std, y in _checked(records, name):
            errs.append(y - mean)
            if std is not None:
                inside.append(abs(y - mean) <= Z90 * max(std, 1e-12))
        if errs:
            out[f"{name}.n"] = float(len(errs))
            out[f"{name}.rmse"] = float(np.sqrt(np.mean(np.square(errs))))
            if inside:
                out[f"{name}.coverage90"] = float(np.mean(inside))
    return out


def widening(
    records: Sequence[Observation],
    outcomes: Sequence[str],
    *,
    min_records: int = MIN_WIDENING_RECORDS,
    most: float = MAX_WIDENING,
    enabled: bool = True,
) -> dict[str, float]:
    """How much wider than the model says each outcome's uncertainty has proved to be.

    From the campaign's own out-of-sample record (the prediction stored with every
    model-based proposal against what the lab then measured, successful syntheses only): per
    outcome the 90 % quantile of ``|z|``, ``z = (measured − mean) / std``, over its Gaussian
    value 1.645 is the factor that would have given 90 % coverage. It is shrunk toward 1 with
    :data:`min_records` pseudo-records (``1 + (f − 1)·n / (n + min_records)``), never below 1
    (an under-confident model is left as it is) and at most ``most``. A model whose physics
    prior is wrong for the lab is over-confident where the lab departs from it; the acquisition
    then explores there as widely as the record says it should.

    Args:
        records: the observations.
        outcomes: the campaign outcomes.
        min_records: fewest records an outcome needs (fewer: factor 1), also the shrinkage
            weight.
        most: largest factor.
        enabled: False gives 1 for every outcome (the campaign setting ``widen_uncertainty``
            off).

    Returns:
        Outcome → factor ``>= 1`` for every outcome in ``outcomes``.
    """
    if not enabled:
        return dict.fromkeys(outcomes, 1.0)
    out: dict[str, float] = {}
    for name in outcomes:
        z = [abs(y - mean) / std for mean, std, y in _checked(records, name) if std and std > 0]
        n = len(z)
        if n < min_records:
            out[name] = 1.0
            continue
        raw = float(np.quantile(z, 0.9)) / Z90
        shrunk = 1.0 + (raw - 1.0) * n / (n + min_records)
        out[name] = float(min(max(shrunk, 1.0), most))
    return out


def model_check(
    records: Sequence[Observation], outcomes: Sequence[str], *, widen: bool = True
) -> list[dict[str, Any]]:
    """Per outcome: out-of-sample records ``n``, ``rmse``, ``coverage90`` (None without
    records) and the ``widening`` the next model-based proposal applies (1 when ``widen`` is
    off)."""
    cal = calibration(records, outcomes)
    factors = widening(records, outcomes, enabled=widen)
    return [
        {
            "outcome": name,
            "n": int(cal.get(f"{name}.n", 0)),
            "rmse": cal.get(f"{name}.rmse"),
            "coverage90": cal.get(f"{name}.coverage90"),
            "widening": factors[name],
        }
        for name in outcomes
    ]
