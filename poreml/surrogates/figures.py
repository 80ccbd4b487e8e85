"""Figures of a surrogate evaluation: parity, calibration and learning curves.

Each function returns a matplotlib :class:`~matplotlib.figure.Figure` built without pyplot (no
global state, nothing shown); :func:`poreml.surrogates.report.write_evaluation` saves them.
matplotlib is imported on first use.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from poreml.data.schema import COLUMNS
from poreml.surrogates.metrics import regression_metrics

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["calibration_figure", "learning_curve_figure", "parity_figure"]


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
        calibration: :func:`~poreml.surrogates.metrics.calibration_table` output (``level``,
            ``observed``, ``target`` and optionally ``model``).

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
        curves: :func:`~poreml.surrogates.evaluation.learning_curves` output.
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
