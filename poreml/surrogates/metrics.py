"""Accuracy and calibration metrics of probabilistic predictions, per target.

:func:`regression_metrics`, over rows with a measured value:

* ``n``, ``mae``, ``rmse``, ``r2`` (1 − SS_res / SS_tot; NaN for fewer than two rows);
* ``nll``: mean Gaussian negative log-likelihood ``0.5·log(2π σ²) + (y − μ)² / (2σ²)`` with the
  model's predictive mean and standard deviation, in the target's units;
* ``nll_std``: the same in units of the evaluation rows' standard deviation of ``y``
  (``nll + log sd(y)``), comparable across targets; its mean over targets is the declared
  champion metric :data:`CHAMPION_METRIC`;
* ``coverage_90``: share of rows inside the model's central 90 % interval
  (:meth:`~poreml.surrogates.base.Surrogate.predict_interval`; exact log-normal quantiles for
  log-scale targets).

Long prediction frames name the interval bounds at level ``p`` ``lower_<pct>``/``upper_<pct>``
(:func:`interval_column`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd

__all__ = [
    "CHAMPION_METRIC",
    "DEFAULT_LEVELS",
    "calibration_table",
    "gaussian_nll",
    "interval_column",
    "metrics_table",
    "regression_metrics",
    "summarise",
]

DEFAULT_LEVELS: tuple[float, ...] = (0.5, 0.68, 0.8, 0.9, 0.95)
"""Interval levels of the calibration check (0.9 is the reported coverage)."""

CHAMPION_METRIC = "mean_nll_std"
"""Declared metric for champion promotion: mean over targets of the standardised held-out NLL."""

_MIN_STD = 1e-9
_Z90 = NormalDist().inv_cdf(0.95)


def gaussian_nll(y: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Elementwise Gaussian negative log-likelihood ``0.5·log(2πσ²) + (y − μ)²/(2σ²)``.

    Args:
        y, mean, std: arrays of one shape; ``std`` is floored at 1e-9.

    Returns:
        Array of the same shape.
    """
    sd = np.maximum(np.asarray(std, dtype=float), _MIN_STD)
    r = (np.asarray(y, dtype=float) - np.asarray(mean, dtype=float)) / sd
    return 0.5 * np.log(2.0 * np.pi) + np.log(sd) + 0.5 * r**2


def regression_metrics(
    y: Sequence[float] | np.ndarray,
    mean: Sequence[float] | np.ndarray,
    std: Sequence[float] | np.ndarray,
    lower: Sequence[float] | np.ndarray | None = None,
    upper: Sequence[float] | np.ndarray | None = None,
) -> dict[str, float]:
    """Accuracy and calibration of predictions for one target.

    Rows where ``y`` is NaN are ignored.

    Args:
        y: observed values.
        mean: predictive means.
        std: predictive standard deviations.
        lower, upper: bounds of the central 90 % predictive interval; when left out, the
            Gaussian interval ``mean ± 1.645·std``.

    Returns:
        ``n``, ``mae``, ``rmse``, ``r2``, ``nll``, ``nll_std`` and ``coverage_90`` (module doc);
        NaN where undefined (no rows; ``r2`` and ``nll_std`` with fewer than two rows or no
        spread in ``y``).
    """
    y_a = np.asarray(y, dtype=float)
    mu = np.asarray(mean, dtype=float)
    sd = np.asarray(std, dtype=float)
    lo = mu - _Z90 * sd if lower is None else np.asarray(lower, dtype=float)
    hi = mu + _Z90 * sd if upper is None else np.asarray(upper, dtype=float)
    keep = ~np.isnan(y_a)
    y_a, mu, sd, lo, hi = y_a[keep], mu[keep], sd[keep], lo[keep], hi[keep]
    n = int(y_a.size)
    nan = math.nan
    if n == 0:
        return dict(n=0, mae=nan, rmse=nan, r2=nan, nll=nan, nll_std=nan, coverage_90=nan)
    err = y_a - mu
    ss_tot = float(np.sum((y_a - y_a.mean()) ** 2))
    spread = float(np.std(y_a, ddof=1)) if n > 1 else 0.0
    nll = float(np.mean(gaussian_nll(y_a, mu, sd)))
    return {
        "n": n,
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "r2": 1.0 - float(np.sum(err**2)) / ss_tot if n > 1 and ss_tot > 0 else nan,
        "nll": nll,
        "nll_std": nll - math.log(spread) if spread > 0 else nan,
        "coverage_90": float(np.mean((y_a >= lo) & (y_a <= hi))),
    }


def metrics_table(
    predictions: pd.DataFrame, by: Sequence[str] = ("model", "target")
) -> pd.DataFrame:
    """Per-group :func:`regression_metrics` of a long prediction frame.

    Args:
        predictions: long frame (e.g. from
            :func:`~poreml.surrogates.evaluation.cross_val_predict_grouped`) with columns
            ``y``, ``mean``, ``std``, ``lower_90``, ``upper_90`` and the ``by`` columns.
        by: grouping columns present in ``predictions``.

    Returns:
        One row per group: the ``by`` columns then the metric columns.
    """
    keys = [c for c in by if c in predictions.columns]
    rows = []
    for key, part in predictions.groupby(keys, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        m = regression_metrics(
            part["y"], part["mean"], part["std"], part.get("lower_90"), part.get("upper_90")
        )
        rows.append({**dict(zip(keys, key, strict=True)), **m})
    return pd.DataFrame(rows)


def calibration_table(
    predictions: pd.DataFrame,
    levels: Sequence[float] = DEFAULT_LEVELS,
    by: Sequence[str] = ("model", "target"),
) -> pd.DataFrame:
    """Observed coverage of the central intervals at each level (calibration curve data).

    Args:
        predictions: long frame with ``y`` and ``lower_<pct>``/``upper_<pct>`` columns for each
            level (``pct`` = level in percent, e.g. ``lower_90``).
        levels: nominal levels to tabulate.
        by: grouping columns.

    Returns:
        Tidy frame: the ``by`` columns, ``level``, ``observed``, ``n``.
    """
    keys = [c for c in by if c in predictions.columns]
    rows = []
    for key, part in predictions.groupby(keys, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        part = part[part["y"].notna()]
        for level in levels:
            lo, hi = part[interval_column("lower", level)], part[interval_column("upper", level)]
            inside = (part["y"] >= lo) & (part["y"] <= hi)
            rows.append(
                {
                    **dict(zip(keys, key, strict=True)),
                    "level": float(level),
                    "observed": float(inside.mean()) if len(part) else math.nan,
                    "n": len(part),
                }
            )
    return pd.DataFrame(rows)


def summarise(metrics: pd.DataFrame, by: Sequence[str] = ("model",)) -> pd.DataFrame:
    """Mean of each metric over targets (``mean_r2``, ``mean_nll_std``, ...), per group."""
    keys = [c for c in by if c in metrics.columns]
    cols = ["mae", "rmse", "r2", "nll_std", "coverage_90"]
    cols = [c for c in cols if c in metrics.columns]
    out = metrics.groupby(keys, sort=False)[cols].mean().reset_index()
    return out.rename(columns={c: f"mean_{c}" for c in cols})


def interval_column(side: str, level: float) -> str:
    """Column of a long prediction frame holding a central interval's bound.

    Args:
        side: ``"lower"`` or ``"upper"``.
        level: the interval's coverage in (0, 1).

    Returns:
        E.g. ``lower_90`` for ``("lower", 0.9)``.
    """
    return f"{side}_{round(100 * level):d}"
