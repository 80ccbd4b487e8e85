"""How good are the surrogates? Held-out scores, grouped cross-validation, learning curves.

The workflows here return DataFrames; a tracker passed in logs what a function computed
(tracking is a side channel). Their building blocks sit in their own modules: metrics in
:mod:`~poreml.surrogates.metrics`, group labels and folds in :mod:`~poreml.surrogates.splits`,
figures in :mod:`~poreml.surrogates.figures`, files in :mod:`~poreml.surrogates.report`.

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

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from poreml.design.search_space import SearchSpace
from poreml.exceptions import ConfigError, DataValidationError, Problem
from poreml.surrogates.base import TARGETS, Surrogate
from poreml.surrogates.features import FEATURE_SETS
from poreml.surrogates.metrics import (
    DEFAULT_LEVELS,
    calibration_table,
    interval_column,
    metrics_table,
    summarise,
)
from poreml.surrogates.registry import make
from poreml.surrogates.splits import grouped_splits, real_data_groups
from poreml.tracker import Tracker
from poreml.virtual_lab import VirtualLab

__all__ = [
    "BASELINES",
    "LEARNING_CURVE_SIZES",
    "LEARNING_CURVE_TASKS",
    "MIN_ROWS_REAL",
    "RealDataEvaluation",
    "Task",
    "cross_val_predict_grouped",
    "evaluate_real",
    "fit_fold",
    "heldout_metrics",
    "learning_curves",
    "virtual_lab_data",
]

LEARNING_CURVE_SIZES: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024)
"""Training-set sizes of the virtual-lab learning curves."""

MIN_ROWS_REAL = 15
"""Fewest measured rows a target needs to be scored on real data."""

BASELINES: tuple[str, ...] = ("mean", "ridge")
"""Reference models every real-data evaluation is compared against."""


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
# Held-out scores


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
            bound = per_level[lv][target]["lower"]
            frame[interval_column("lower", lv)] = bound.to_numpy(dtype=float)
            bound = per_level[lv][target]["upper"]
            frame[interval_column("upper", lv)] = bound.to_numpy(dtype=float)
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def _levels_including_90(levels: Iterable[float]) -> tuple[float, ...]:
    """``levels`` and 0.9 (the reported coverage), sorted and de-duplicated; each in (0, 1)."""
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
        ``(metrics, predictions)``: one row per target of
        :func:`~poreml.surrogates.metrics.regression_metrics`, and the
        long prediction frame.
    """
    y = y.reset_index(drop=True)
    X = X.reset_index(drop=True)
    preds = _fold_predictions(model, X, y, _levels_including_90(levels), observation_noise)
    return metrics_table(preds, by=("target",)), preds


# --------------------------------------------------------------------------------------------
# Grouped cross-validation


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
        groups: group of each row (:func:`~poreml.surrogates.splits.real_data_groups`,
            :func:`~poreml.surrogates.splits.random_groups`).
        targets: targets to predict.
        n_splits: folds (:func:`~poreml.surrogates.splits.grouped_splits`).
        seed: fold assignment seed.
        levels: interval levels (0.9 always included) for
            :func:`~poreml.surrogates.metrics.calibration_table`.
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
    levels = _levels_including_90(levels)
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
        calibration: :func:`~poreml.surrogates.metrics.calibration_table` of the predictions.
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
    """Grouped cross-validation on real data (groups: materials, else papers) vs baselines.

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
