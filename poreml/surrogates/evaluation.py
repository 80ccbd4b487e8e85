"""How good are the surrogates? Grouped cross-validation, learning curves, calibration, plots.

Everything here is a pure function that returns a DataFrame or a matplotlib figure, except
:func:`write_evaluation`, the one function that writes files. A tracker passed in logs what a
function computed (tracking is a side channel).

Metrics (:func:`regression_metrics`), per target, over rows with a measured value:

* ``n``, ``mae``, ``rmse``, ``r2`` (1 − SS_res / SS_tot; NaN for fewer than two rows);
* ``nll``: mean Gaussian negative log-likelihood ``0.5·log(2π σ²) + (y − μ)² / (2σ²)`` with the
  model's predictive mean and standard deviation, in the target's units;
* ``nll_std``: the same in units of the evaluation rows' standard deviation of ``y``
  (``nll + log sd(y)``), comparable across targets; its mean over targets is the declared
  champion metric ``mean_nll_std``;
* ``coverage_90``: share of rows inside the model's central 90 % interval
  (:meth:`~poreml.surrogates.base.Surrogate.predict_interval`; exact log-normal quantiles for
  log-scale targets).

Two settings:

* **Real data** (:func:`evaluate_real`): out-of-fold predictions from grouped K-fold
  cross-validation, groups = ``reference`` (one paper's rows never sit in both the training and
  the test folds), for the chosen model and the ``mean`` and ``ridge`` baselines. Intervals
  are for a new *measurement* (observation noise included).
* **Virtual lab** (:func:`learning_curves`): training sets of growing size ``n`` (nested
  prefixes of one scrambled Sobol design, measured with noise), scored on a noise-free held-out
  test set, on the baseline scenario and on randomised instances (``instance_seed``). The truth
  there is the latent function, so intervals are the latent ones (``observation_noise=False``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from poreml.data.schema import COLUMNS
from poreml.exceptions import ConfigError, DataValidationError, Problem

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from poreml.surrogates.base import Surrogate
    from poreml.tracking.base import Tracker

__all__ = [
    "BASELINES",
    "DEFAULT_LEVELS",
    "LEARNING_CURVE_SIZES",
    "LEARNING_CURVE_TASKS",
    "MIN_ROWS_REAL",
    "RealDataEvaluation",
    "Task",
    "calibration_figure",
    "calibration_table",
    "cross_val_predict_grouped",
    "gaussian_nll",
    "grouped_splits",
    "heldout_metrics",
    "learning_curve_figure",
    "learning_curves",
    "markdown_table",
    "metrics_table",
    "parity_figure",
    "prediction_table",
    "random_groups",
    "real_data_groups",
    "regression_metrics",
    "summarise",
    "virtual_lab_data",
    "write_evaluation",
]

DEFAULT_LEVELS: tuple[float, ...] = (0.5, 0.68, 0.8, 0.9, 0.95)
"""Interval levels of the calibration check (0.9 is the reported coverage)."""

LEARNING_CURVE_SIZES: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024)
"""Training-set sizes of the virtual-lab learning curves."""

MIN_ROWS_REAL = 15
"""Fewest measured rows a target needs to be scored on real data."""

BASELINES: tuple[str, ...] = ("mean", "ridge")
"""Reference models every real-data evaluation is compared against."""

CHAMPION_METRIC = "mean_nll_std"
"""Declared metric for champion promotion: mean over targets of the standardised held-out NLL."""

_MIN_STD = 1e-9
_Z90 = NormalDist().inv_cdf(0.95)


@dataclass(frozen=True)
class Task:
    """One virtual-lab task of a learning curve.

    Attributes:
        scenario: virtual-lab scenario name.
        instance_seed: randomised-constants instance (None: the published constants).
    """

    scenario: str = "baseline"
    instance_seed: int | None = None

    @property
    def label(self) -> str:
        """Short name, e.g. ``baseline`` or ``baseline/r1``."""
        return (
            self.scenario
            if self.instance_seed is None
            else f"{self.scenario}/r{self.instance_seed}"
        )


LEARNING_CURVE_TASKS: tuple[Task, ...] = (
    Task("baseline", None),
    Task("baseline", 1),
    Task("baseline", 2),
    Task("baseline", 3),
)
"""The baseline task and three randomised-constant tasks."""


# --------------------------------------------------------------------------------------------
# Metrics


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
        predictions: long frame (e.g. from :func:`cross_val_predict_grouped`) with columns
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
            lo, hi = part[_bound("lower", level)], part[_bound("upper", level)]
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


def _bound(side: str, level: float) -> str:
    return f"{side}_{round(100 * level):d}"


# --------------------------------------------------------------------------------------------
# Prediction tables


def prediction_table(
    model: Surrogate,
    designs: pd.DataFrame,
    level: float = 0.9,
    *,
    observation_noise: bool = True,
) -> pd.DataFrame:
    """Predictions with uncertainty for each design row, in the contract's output form.

    Args:
        model: a fitted surrogate.
        designs: design columns (missing ones are imputed as in training), optional
            ``candidate_id``.
        level: level of the central interval (``lower``/``upper``).
        observation_noise: intervals for a new measurement (default) or for the latent mean.

    Returns:
        Columns ``candidate_id`` (when given), then for each target of the model
        ``<target>_mean``, ``<target>_std``, ``<target>_lower``, ``<target>_upper``, then
        ``in_domain`` (bool); the index of ``designs``.
    """
    return model.predict_table(designs, level=level, observation_noise=observation_noise)


def _fold_predictions(
    model: Surrogate,
    X: pd.DataFrame,
    y: pd.DataFrame,
    levels: Sequence[float],
    observation_noise: bool,
) -> pd.DataFrame:
    """Long frame of predictions of a fitted ``model`` for ``X`` (one row per row × target)."""
    per_level = {
        lv: model.predict_interval(X, level=lv, observation_noise=observation_noise)
        for lv in levels
    }
    parts = []
    ref = per_level[levels[0]]
    for target in ref:
        frame = pd.DataFrame(
            {
                "row": np.asarray(X.index),
                "target": target,
                "y": y[target].to_numpy(dtype=float) if target in y else np.nan,
                "mean": ref[target]["mean"].to_numpy(dtype=float),
                "std": ref[target]["std"].to_numpy(dtype=float),
            }
        )
        for lv in levels:
            frame[_bound("lower", lv)] = per_level[lv][target]["lower"].to_numpy(dtype=float)
            frame[_bound("upper", lv)] = per_level[lv][target]["upper"].to_numpy(dtype=float)
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def _with_90(levels: Iterable[float]) -> tuple[float, ...]:
    out = sorted({round(float(lv), 6) for lv in levels} | {0.9})
    bad = [lv for lv in out if not 0.0 < lv < 1.0]
    if bad:
        raise ConfigError(f"levels: expected numbers in (0, 1) (got {bad})")
    return tuple(out)


def heldout_metrics(
    model: Surrogate,
    X: pd.DataFrame,
    y: pd.DataFrame,
    *,
    observation_noise: bool = True,
    levels: Sequence[float] = (0.9,),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score a fitted model on held-out rows.

    Args:
        model: fitted surrogate.
        X: held-out inputs.
        y: held-out targets (NaN = not measured), aligned with ``X`` by position.
        observation_noise: whether intervals include measurement noise (False for a
            noise-free test set).
        levels: interval levels to compute (0.9 is always included).

    Returns:
        ``(metrics, predictions)``: one row per target of :func:`regression_metrics`, and the
        long prediction frame.
    """
    y = y.reset_index(drop=True)
    X = X.reset_index(drop=True)
    preds = _fold_predictions(model, X, y, _with_90(levels), observation_noise)
    return metrics_table(preds, by=("target",)), preds


# --------------------------------------------------------------------------------------------
# Grouped cross-validation


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
    """Group label of each real-data row: its ``reference`` (else ``doi``, else its own id).

    Rows that share a paper share a label, so grouped CV keeps a paper's rows on one side.
    References are compared after trimming and case-folding.
    """
    n = len(data)
    labels = np.array([f"row:{i}" for i in range(n)], dtype=object)
    for name in ("id", "doi", "reference"):
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
    from sklearn.model_selection import GroupKFold

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


def fit_fold(
    factory: Callable[..., Surrogate],
    X_train: pd.DataFrame,
    y_train: pd.DataFrame,
    targets: Sequence[str],
    min_train_rows: int = 2,
) -> Surrogate | None:
    """Fit a fresh model on one training fold, on the targets with enough measured rows.

    Args:
        factory: builds an unfitted model; called as ``factory(targets=[...])``.
        X_train, y_train: the training fold.
        targets: candidate targets.
        min_train_rows: fewest measured rows a target needs in this fold.

    Returns:
        The fitted model, or None when no target has enough rows.
    """
    keep = [t for t in targets if t in y_train and y_train[t].notna().sum() >= min_train_rows]
    if not keep:
        return None
    return factory(targets=keep).fit(X_train, y_train[keep])


def cross_val_predict_grouped(
    factory: Callable[..., Surrogate],
    X: pd.DataFrame,
    y: pd.DataFrame,
    groups: Sequence[Any] | np.ndarray,
    *,
    targets: Sequence[str],
    n_splits: int = 5,
    seed: int | None = 0,
    levels: Sequence[float] = DEFAULT_LEVELS,
    observation_noise: bool = True,
    min_train_rows: int = 2,
    on_fold: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Out-of-fold predictions of grouped K-fold cross-validation.

    Args:
        factory: builds an unfitted model, called as ``factory(targets=[...])`` per fold.
        X: inputs (design columns, optionally descriptors).
        y: target columns, NaN where not measured, aligned with ``X`` by position.
        groups: group of each row (:func:`real_data_groups`, :func:`random_groups`).
        targets: targets to predict.
        n_splits: folds (:func:`grouped_splits`).
        seed: fold assignment seed.
        levels: interval levels (0.9 always included) for :func:`calibration_table`.
        observation_noise: intervals for a new measurement (True) or the latent mean.
        min_train_rows: fewest measured training rows for a target to be fitted in a fold;
            test rows of a target that was not fitted get no prediction.
        on_fold: progress callback ``(fold_done, n_folds)``.

    Returns:
        Long frame, one row per (held-out row, target): ``row`` (position in ``X``), ``group``,
        ``fold``, ``target``, ``y``, ``mean``, ``std``, ``lower_<pct>``, ``upper_<pct>``.
    """
    X = X.reset_index(drop=True)
    y = y.reset_index(drop=True)
    labels = np.asarray(groups)
    levels = _with_90(levels)
    splits = grouped_splits(labels, n_splits, seed=seed)
    parts = []
    for k, (tr, te) in enumerate(splits):
        model = fit_fold(factory, X.iloc[tr], y.iloc[tr], targets, min_train_rows)
        if model is not None:
            X_te = X.iloc[te]
            pred = _fold_predictions(model, X_te, y.iloc[te], levels, observation_noise)
            pred.insert(1, "fold", k)
            pred.insert(1, "group", labels[pred["row"].to_numpy()])
            parts.append(pred)
        if on_fold is not None:
            on_fold(k + 1, len(splits))
    if not parts:
        raise DataValidationError(
            [Problem(None, None, "no fold", f"a target with >= {min_train_rows} training rows")]
        )
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------------------------
# Real data


@dataclass
class RealDataEvaluation:
    """Result of :func:`evaluate_real`.

    Attributes:
        metrics: per model and target: ``n``, ``mae``, ``rmse``, ``r2``, ``nll``, ``nll_std``,
            ``coverage_90``, plus ``mae_skill`` = 1 − MAE / MAE of the ``mean`` baseline.
        predictions: long out-of-fold prediction frame with a ``model`` column.
        calibration: :func:`calibration_table` of the predictions.
        targets: targets scored (≥ ``min_rows`` measured rows in ≥ 2 groups).
        skipped: targets left out, with the reason.
        n_groups: distinct groups (references) among the rows used.
    """

    metrics: pd.DataFrame
    predictions: pd.DataFrame
    calibration: pd.DataFrame
    targets: tuple[str, ...]
    skipped: dict[str, str] = field(default_factory=dict)
    n_groups: int = 0


def evaluate_real(
    data: pd.DataFrame,
    model: str = "gp",
    params: Mapping[str, Any] | None = None,
    *,
    baselines: Sequence[str] = BASELINES,
    feature_set: str = "design",
    targets: Sequence[str] | None = None,
    n_splits: int = 5,
    min_rows: int = MIN_ROWS_REAL,
    seed: int = 0,
    levels: Sequence[float] = DEFAULT_LEVELS,
    tracker: Tracker | None = None,
    on_step: Callable[[str, int, int], None] | None = None,
) -> RealDataEvaluation:
    """Grouped cross-validation on real data (groups = references) against baselines.

    Args:
        data: curated table (e.g. ``datasets/porous_sic.csv`` after validation): design
            columns (blank cells allowed), measured columns, ``reference`` (and ``doi``,
            ``id``) for the grouping.
        model: registry name of the model under test.
        params: its settings (``feature_set`` and ``targets`` are set here).
        baselines: registry names of the reference models.
        feature_set: ``design`` or ``descriptors``.
        targets: targets to consider (default: the model's targets for ``feature_set``).
        n_splits: folds.
        min_rows: fewest measured rows (and two references) a target needs to be scored.
        seed: fold assignment seed.
        levels: calibration levels.
        tracker: logs metrics (``<model>/<target>/<metric>``) and the tables.
        on_step: progress callback ``(model, fold_done, n_folds)``.

    Returns:
        A :class:`RealDataEvaluation`.

    Raises:
        DataValidationError: no target has enough rows.
    """
    from poreml.surrogates.base import FEATURE_SETS, TARGETS
    from poreml.surrogates.registry import make

    if feature_set not in FEATURE_SETS:
        raise ConfigError(
            f"feature_set: expected one of {', '.join(FEATURE_SETS)} (got {feature_set!r})"
        )
    data = data.reset_index(drop=True)
    inputs = [c for c in FEATURE_SETS[feature_set] if c in data.columns]
    candidates = list(targets or [t for t in TARGETS if t not in FEATURE_SETS[feature_set]])
    groups = real_data_groups(data)
    chosen, skipped = [], {}
    for t in candidates:
        if t not in data.columns:
            skipped[t] = "no such column"
            continue
        have = data[t].notna().to_numpy()
        n_ref = len(np.unique(groups[have]))
        if have.sum() < min_rows:
            skipped[t] = f"{int(have.sum())} measured rows (< {min_rows})"
        elif n_ref < 2:
            skipped[t] = f"{n_ref} reference(s) (< 2)"
        else:
            chosen.append(t)
    if not chosen:
        raise DataValidationError(
            [Problem(None, t, why, f">= {min_rows} measured rows") for t, why in skipped.items()],
            "real data",
        )
    X = data[inputs]
    y = data[chosen].astype("float64")
    preds = []
    for name in [model, *[b for b in baselines if b != model]]:
        settings = dict(params or {}) if name == model else {}

        def factory(targets: Sequence[str], _name: str = name, _s: dict = settings) -> Surrogate:
            return make(_name, **{**_s, "feature_set": feature_set, "targets": list(targets)})

        def progress(done: int, total: int, _name: str = name) -> None:
            if on_step is not None:
                on_step(_name, done, total)

        p = cross_val_predict_grouped(
            factory,
            X,
            y,
            groups,
            targets=chosen,
            n_splits=n_splits,
            seed=seed,
            levels=levels,
            observation_noise=True,
            on_fold=progress,
        )
        p.insert(0, "model", name)
        preds.append(p)
    predictions = pd.concat(preds, ignore_index=True)
    metrics = metrics_table(predictions, by=("model", "target"))
    if "mean" in metrics["model"].to_numpy():
        ref = metrics[metrics["model"] == "mean"].set_index("target")["mae"]
        metrics["mae_skill"] = 1.0 - metrics["mae"] / metrics["target"].map(ref)
    calibration = calibration_table(predictions, levels, by=("model", "target"))
    result = RealDataEvaluation(
        metrics=metrics,
        predictions=predictions,
        calibration=calibration,
        targets=tuple(chosen),
        skipped=skipped,
        n_groups=len(np.unique(groups)),
    )
    if tracker is not None:
        _log_real(tracker, result)
    return result


def _log_real(tracker: Tracker, result: RealDataEvaluation) -> None:
    flat: dict[str, float] = {}
    for rec in result.metrics.to_dict("records"):
        for key in ("mae", "rmse", "r2", "nll", "nll_std", "coverage_90", "mae_skill"):
            if key in rec:
                flat[f"real/{rec['model']}/{rec['target']}/{key}"] = rec[key]
    for rec in summarise(result.metrics).to_dict("records"):
        for key, value in rec.items():
            if key != "model":
                flat[f"real/{rec['model']}/{key}"] = value
    tracker.log_metrics(flat)
    tracker.log_table(result.metrics, "real/metrics.csv")
    tracker.log_table(result.calibration, "real/calibration.csv")


# --------------------------------------------------------------------------------------------
# Virtual lab


def virtual_lab_data(
    n: int,
    *,
    scenario: str = "baseline",
    instance_seed: int | None = None,
    seed: int = 0,
    noise: bool = True,
) -> pd.DataFrame:
    """Designs of the contract box (:meth:`SearchSpace.sample
    <poreml.design.search_space.SearchSpace.sample>`) measured by the virtual lab.

    Args:
        n: number of rows.
        scenario: virtual-lab scenario.
        instance_seed: randomised-constants instance (None: published constants).
        seed: seed of the designs and of the measurement noise.
        noise: noisy measurements (True) or the noise-free model.

    Returns:
        The lab's output: ``candidate_id`` (``d0000``…), design columns, measured columns,
        ``feasible``.
    """
    from poreml.design.search_space import SearchSpace
    from poreml.virtual_lab import VirtualLab

    designs = SearchSpace.contract_box().sample(n, seed)
    designs.insert(0, "candidate_id", [f"d{i:04d}" for i in range(n)])
    lab = VirtualLab(scenario=scenario, instance_seed=instance_seed)
    return lab.measure(designs, seed=seed, noise=True) if noise else lab.evaluate(designs)


def learning_curves(
    model: str = "gp",
    params: Mapping[str, Any] | None = None,
    *,
    sizes: Sequence[int] = LEARNING_CURVE_SIZES,
    tasks: Sequence[Task] = LEARNING_CURVE_TASKS,
    n_test: int = 1000,
    seed: int = 0,
    test_seed: int = 10_000,
    feature_set: str = "design",
    tracker: Tracker | None = None,
    on_step: Callable[[str, int], None] | None = None,
) -> pd.DataFrame:
    """Virtual-lab learning curves: accuracy against training-set size, per task and target.

    For each task, one training sample of ``max(sizes)`` designs of the contract box
    (:meth:`SearchSpace.sample <poreml.design.search_space.SearchSpace.sample>` with ``seed``)
    is measured with noise; the first ``n`` rows train the model for each ``n``. The test set is
    ``n_test`` other designs (seed ``test_seed``) evaluated without noise; the intervals scored
    are those of the latent mean.

    Args:
        model: registry name.
        params: model settings (``feature_set`` is set here).
        sizes: training-set sizes.
        tasks: virtual-lab tasks.
        n_test: held-out test designs per task.
        seed: training design and noise seed.
        test_seed: test design seed (different from ``seed``).
        feature_set: ``design`` (the descriptor inputs would leak measured outputs).
        tracker: logs ``lc/<task>/<target>/r2`` etc. with ``step = n``.
        on_step: progress callback ``(task label, n)`` after each fit.

    Returns:
        Tidy frame: ``model``, ``task``, ``scenario``, ``instance_seed``, ``n_train``,
        ``target``, ``n`` (test rows), ``mae``, ``rmse``, ``r2``, ``nll``, ``nll_std``,
        ``coverage_90``, ``fit_seconds``.
    """
    from poreml.design.search_space import SearchSpace
    from poreml.surrogates.base import FEATURE_SETS, TARGETS
    from poreml.surrogates.registry import make
    from poreml.virtual_lab import VirtualLab

    sizes = sorted({int(s) for s in sizes})
    if not sizes or sizes[0] < 2:
        raise ConfigError(f"sizes: expected integers >= 2 (got {sizes})")
    inputs = list(FEATURE_SETS[feature_set])
    targets = [t for t in TARGETS if t not in inputs]
    box = SearchSpace.contract_box()
    test_designs = box.sample(n_test, test_seed)
    rows = []
    for task in tasks:
        lab = VirtualLab(scenario=task.scenario, instance_seed=task.instance_seed)
        train = lab.measure(box.sample(max(sizes), seed), seed=seed, noise=True)
        test = lab.evaluate(test_designs)
        for n in sizes:
            part = train.iloc[:n]
            est = make(model, **{**dict(params or {}), "feature_set": feature_set})
            t0 = time.perf_counter()
            est.fit(part[inputs], part[targets])
            fit_s = time.perf_counter() - t0
            metrics, _ = heldout_metrics(est, test[inputs], test[targets], observation_noise=False)
            metrics.insert(0, "n_train", n)
            metrics.insert(0, "instance_seed", task.instance_seed)
            metrics.insert(0, "scenario", task.scenario)
            metrics.insert(0, "task", task.label)
            metrics.insert(0, "model", model)
            metrics["fit_seconds"] = fit_s
            rows.append(metrics)
            if tracker is not None:
                tracker.log_metrics(
                    {
                        f"lc/{task.label}/{r['target']}/{k}": r[k]
                        for r in metrics.to_dict("records")
                        for k in ("r2", "mae", "coverage_90")
                    },
                    step=n,
                )
            if on_step is not None:
                on_step(task.label, n)
    curves = pd.concat(rows, ignore_index=True)
    curves["instance_seed"] = curves["instance_seed"].astype("Int64")
    if tracker is not None:
        tracker.log_table(curves, "learning_curves.csv")
    return curves


# --------------------------------------------------------------------------------------------
# Figures


def _grid(n: int) -> tuple[int, int]:
    cols = min(3, max(1, n))
    return math.ceil(n / cols), cols


def parity_figure(predictions: pd.DataFrame, model: str | None = None) -> Figure:
    """Predicted against observed, one panel per target, with 90 % interval error bars.

    Args:
        predictions: long frame with ``target``, ``y``, ``mean``, ``lower_90``, ``upper_90``
            (and ``model`` when several models are in it).
        model: which model to draw (default: the first in the frame).

    Returns:
        A matplotlib figure (Agg; not shown).
    """
    from matplotlib.figure import Figure

    frame = predictions
    if "model" in frame.columns:
        model = model or str(frame["model"].iloc[0])
        frame = frame[frame["model"] == model]
    frame = frame[frame["y"].notna()]
    targets = list(dict.fromkeys(frame["target"]))
    rows, cols = _grid(len(targets))
    fig = Figure(figsize=(4.2 * cols, 3.9 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, target in zip(axes, targets, strict=False):
        part = frame[frame["target"] == target]
        yerr = np.vstack(
            [
                np.clip(part["mean"] - part["lower_90"], 0, None),
                np.clip(part["upper_90"] - part["mean"], 0, None),
            ]
        )
        ax.errorbar(
            part["y"],
            part["mean"],
            yerr=yerr,
            fmt="o",
            ms=3,
            alpha=0.7,
            elinewidth=0.7,
            capsize=0,
        )
        lo = float(np.nanmin([part["y"].min(), part["mean"].min()]))
        hi = float(np.nanmax([part["y"].max(), part["mean"].max()]))
        if lo > 0 and hi / lo > 100:  # spans decades (e.g. BET area): log axes
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.plot([lo / 1.2, hi * 1.2], [lo / 1.2, hi * 1.2], "k--", lw=0.8)
        else:
            pad = 0.05 * (hi - lo or 1.0)
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8)
        m = regression_metrics(
            part["y"], part["mean"], part["std"], part["lower_90"], part["upper_90"]
        )
        unit = COLUMNS[target].unit if target in COLUMNS else ""
        ax.set_title(
            f"{target}\nn={m['n']}  R²={m['r2']:.2f}  MAE={m['mae']:.3g}  "
            f"cov90={m['coverage_90']:.0%}",
            fontsize=9,
        )
        ax.set_xlabel(f"observed ({unit})")
        ax.set_ylabel(f"predicted ({unit})")
    for ax in axes[len(targets) :]:
        ax.set_visible(False)
    fig.suptitle(f"Parity, out-of-fold{f' — {model}' if model else ''} (bars: 90 % interval)")
    return fig


def calibration_figure(calibration: pd.DataFrame) -> Figure:
    """Observed against nominal interval coverage, one panel per model, one line per target.

    Args:
        calibration: :func:`calibration_table` output (``level``, ``observed``, ``target`` and
            optionally ``model``).

    Returns:
        A matplotlib figure.
    """
    from matplotlib.figure import Figure

    models = list(dict.fromkeys(calibration["model"])) if "model" in calibration else [None]
    fig = Figure(figsize=(4.0 * len(models), 4.0), layout="constrained")
    axes = fig.subplots(1, len(models), squeeze=False).ravel()
    for ax, name in zip(axes, models, strict=True):
        part = calibration if name is None else calibration[calibration["model"] == name]
        for target, sub in part.groupby("target", sort=False):
            ax.plot(sub["level"], sub["observed"], "o-", ms=3, label=str(target))
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("nominal coverage")
        ax.set_ylabel("observed coverage")
        ax.set_title(str(name) if name is not None else "calibration")
    axes[0].legend(fontsize=7, loc="upper left")
    return fig


def learning_curve_figure(curves: pd.DataFrame, metric: str = "r2") -> Figure:
    """``metric`` against training-set size, one panel per target, one line per task.

    Args:
        curves: :func:`learning_curves` output.
        metric: column to draw (``r2``, ``mae``, ``coverage_90``, ...).

    Returns:
        A matplotlib figure (log2 x axis).
    """
    from matplotlib.figure import Figure

    targets = list(dict.fromkeys(curves["target"]))
    rows, cols = _grid(len(targets))
    fig = Figure(figsize=(4.2 * cols, 3.6 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, target in zip(axes, targets, strict=False):
        part = curves[curves["target"] == target]
        for task, sub in part.groupby("task", sort=False):
            ax.plot(sub["n_train"], sub[metric], "o-", ms=3, label=str(task))
        ax.set_xscale("log", base=2)
        ax.set_title(target, fontsize=9)
        ax.set_xlabel("training rows")
        ax.set_ylabel(metric)
        if metric == "r2":
            ax.set_ylim(max(-0.2, float(np.nanmin(part[metric])) - 0.05), 1.0)
            ax.axhline(0.9, color="grey", lw=0.6, ls=":")
    for ax in axes[len(targets) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7)
    model = str(curves["model"].iloc[0]) if "model" in curves and len(curves) else ""
    fig.suptitle(f"Virtual-lab learning curves {model} (noise-free test set)")
    return fig


# --------------------------------------------------------------------------------------------
# Files


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured markdown table of ``frame`` (no index; floats to ``digits`` s.f.).

    Args:
        frame: the table.
        digits: significant digits of float cells; NaN and None become blank cells.

    Returns:
        The table text, without a trailing newline.
    """

    def cell(value: Any) -> str:
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return ""
        if isinstance(value, float | np.floating):
            return f"{float(value):.{digits}g}"
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = [str(c) for c in frame.columns]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---:" if num else "---" for num in numeric) + " |",
    ]
    for rec in frame.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(cell(v) for v in rec) + " |")
    return "\n".join(lines)


def write_evaluation(
    out_dir: str | Path,
    *,
    tables: Mapping[str, pd.DataFrame] | None = None,
    figures: Mapping[str, Figure] | None = None,
    prefix: str = "surrogate_",
    markdown: bool = True,
    float_format: str = "%.6g",
) -> list[Path]:
    """Write tables (CSV, and markdown) and figures (PNG) under ``out_dir``.

    The one function of this module that writes files; CSVs are written atomically.

    Args:
        out_dir: folder (created).
        tables: ``{name: frame}`` → ``<prefix><name>.csv`` (+ ``.md``).
        figures: ``{name: figure}`` → ``<prefix><name>.png`` (150 dpi).
        prefix: file name prefix.
        markdown: also write a markdown version of each table.
        float_format: number format of the CSV files.

    Returns:
        Paths written, in order.
    """
    from poreml.data.io import write_csv, write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, frame in (tables or {}).items():
        written.append(write_csv(frame, out / f"{prefix}{name}.csv", float_format=float_format))
        if markdown:
            text = markdown_table(frame) + "\n"
            written.append(write_text(text, out / f"{prefix}{name}.md"))
    for name, fig in (figures or {}).items():
        path = out / f"{prefix}{name}.png"
        fig.savefig(path, dpi=150)
        written.append(path)
    return written
