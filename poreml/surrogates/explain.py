"""Explanations of a surrogate's predicted means: exact Shapley values, importance, partial
dependence.

* :func:`explain`: per candidate and target, the Shapley values of the predicted ``mean`` over
  the nine design columns (``shap.explainers.Exact`` with an independent masker), so that
  ``base_value + sum(contributions) == mean`` (checked: :data:`ADDITIVITY_RTOL`);
* :func:`background_designs`: the fixed reference sample the values are taken against;
* :func:`importance`, :func:`partial_dependence`, :func:`partial_dependence_figure` and
  :func:`log_explanations`: global summaries for a training run.

Cost: an exact explanation of one candidate evaluates the model on ``2**9 * n_background``
rows (every coalition of design columns, each completed by every background row); shap sends
them in one batched call of the mean function per candidate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shap

from poreml.data.schema import COLUMNS, DESIGN_COLUMNS, DESIGN_DEFAULTS, ROUTES
from poreml.design.parameters import CategoricalParameter, ContinuousParameter, FixedParameter
from poreml.design.search_space import SearchSpace
from poreml.exceptions import ConfigError, PoremlError
from poreml.surrogates.features import LOG_FEATURES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from poreml.surrogates.base import Surrogate
    from poreml.tracker import Tracker

__all__ = [
    "ADDITIVITY_RTOL",
    "BACKGROUND_SEED",
    "BACKGROUND_SIZE",
    "BASE_VALUE",
    "Explanation",
    "ExplanationError",
    "MeanFunction",
    "background_designs",
    "explain",
    "importance",
    "log_explanations",
    "partial_dependence",
    "partial_dependence_figure",
    "surrogate_mean",
    "trained_space",
]

ADDITIVITY_RTOL = 1e-6
"""Largest accepted ``|base_value + sum(contributions) - mean| / |mean|`` (CONTRACT.md §4.1)."""

BACKGROUND_SIZE = 16
"""Rows of the default background. The first ``2**k`` points of a scrambled Sobol sequence put
one point in each of ``2**k`` equal slices of every continuous column, so 16 rows already span
each trained range evenly; the cost of an explanation grows linearly with this number."""

BACKGROUND_SEED = 0
"""Seed of the default background's Sobol scrambling and route order (fixed: a loaded model
always explains against the same background, so answers are reproducible)."""

BASE_VALUE = "base_value"
"""``column`` of the base-value rows in :meth:`Explanation.long_frame`."""

PD_GRID_POINTS = 20
"""Grid points per continuous design column in :func:`partial_dependence`."""

MeanFunction = Callable[[pd.DataFrame], np.ndarray]
"""Predicted means of a frame holding every design column (``route`` as str, validated):
a float array of shape ``(n, T)``, targets in the model's order."""


class ExplanationError(PoremlError, ArithmeticError):
    """Shapley values that do not add up to the predicted mean (never returned silently)."""


@dataclass(frozen=True)
class Explanation:
    """Additive explanations of a batch of candidates.

    Attributes:
        targets: explained targets, in the order of the last axis.
        columns: explained design columns, in the order of the middle axis of
            ``contributions``.
        base_values: ``(n, T)``, the mean prediction over the background (contract units).
        contributions: ``(n, C, T)``, Shapley value of each column (contract units).
        mean: ``(n, T)``, the predicted means being explained.
        method: how the values were computed, in words.
    """

    targets: tuple[str, ...]
    columns: tuple[str, ...]
    base_values: np.ndarray
    contributions: np.ndarray
    mean: np.ndarray
    method: str

    def additivity_error(self) -> np.ndarray:
        """``(n, T)``: ``|base_value + sum(contributions) - mean|`` relative to ``|mean|``."""
        total = self.base_values + self.contributions.sum(axis=1)
        scale = np.maximum(np.abs(self.mean), np.finfo(np.float64).tiny)
        return np.abs(total - self.mean) / scale

    def long_frame(self, candidate_ids: Sequence[Any]) -> pd.DataFrame:
        """One row per candidate, target and column, plus one :data:`BASE_VALUE` row per
        candidate and target (first): columns ``candidate_id``, ``target``, ``column``,
        ``contribution``."""
        n, n_cols, n_targets = self.contributions.shape
        if len(candidate_ids) != n:
            raise ConfigError(f"candidate_ids: expected {n} ids (got {len(candidate_ids)})")
        # (n, T, 1 + C): the base value, then each column's contribution.
        values = np.concatenate(
            [self.base_values[:, :, None], self.contributions.transpose(0, 2, 1)], axis=2
        )
        per_block = 1 + n_cols
        return pd.DataFrame(
            {
                "candidate_id": np.repeat(
                    np.asarray(candidate_ids, dtype=object), n_targets * per_block
                ),
                "target": np.tile(np.repeat(np.asarray(self.targets), per_block), n),
                "column": np.tile(np.asarray((BASE_VALUE, *self.columns)), n * n_targets),
                "contribution": values.reshape(-1),
            }
        )


# --------------------------------------------------------------------------------------------
# Background


def trained_space(surrogate: Surrogate) -> SearchSpace:
    """The design box the model was trained on, as a search space.

    Each continuous design column spans its trained range (log scale where the contract says
    so), clipped to the contract bounds; a column seen at one value only, or never (then at its
    contract default, the value the model imputes), is fixed; ``route`` takes the routes seen.

    Raises:
        ConfigError: every design column was constant in training (nothing to explain against).
    """
    domain = surrogate.domain_
    params: list[Any] = []
    for name in DESIGN_COLUMNS:
        col = COLUMNS[name]
        if name == "route":
            seen = [ROUTES[i] for i in domain.routes]
            params.append(
                CategoricalParameter(name, tuple(seen))
                if seen
                else FixedParameter(name, DESIGN_DEFAULTS[name])
            )
            continue
        lo, hi = domain.low.get(name, math.nan), domain.high.get(name, math.nan)
        if math.isnan(lo) or math.isnan(hi):
            params.append(FixedParameter(name, DESIGN_DEFAULTS[name]))
            continue
        if name in LOG_FEATURES:  # the domain keeps log-scale columns in log10
            lo, hi = 10.0**lo, 10.0**hi
        c_lo, c_hi = col.bounds  # type: ignore[misc]
        lo, hi = max(lo, c_lo), min(hi, c_hi)
        if lo < hi:
            params.append(ContinuousParameter(name, (lo, hi), "log" if col.log_scale else "linear"))
        else:
            params.append(FixedParameter(name, lo))
    return SearchSpace(params)


def background_designs(
    surrogate: Surrogate, n: int = BACKGROUND_SIZE, seed: int = BACKGROUND_SEED
) -> pd.DataFrame:
    """The reference designs Shapley values are taken against: ``n`` space-filling designs
    (scrambled Sobol, seeded) over the model's trained design box (:func:`trained_space`).

    The surrogates keep their training ranges, not their training rows, so the background is
    drawn from those ranges; it depends only on the fitted model, ``n`` and ``seed``.

    Returns:
        ``n`` rows with every design column in contract order.
    """
    return trained_space(surrogate).sample(n, seed)


def surrogate_mean(surrogate: Surrogate) -> MeanFunction:
    """The predicted ``mean`` of every target as served (``predict_table``, intervals for a new
    measurement), for frames already validated upstream."""

    def mean(designs: pd.DataFrame) -> np.ndarray:
        table = surrogate.predict_table(designs, check_input=False)
        return np.column_stack(
            [table[f"{t}_mean"].to_numpy(np.float64) for t in surrogate.targets_]
        )

    return mean


# --------------------------------------------------------------------------------------------
# Shapley values


def _to_array(designs: pd.DataFrame) -> np.ndarray:
    """Design columns as a float matrix (``route`` as its code in :data:`ROUTES`)."""
    missing = [c for c in DESIGN_COLUMNS if c not in designs.columns]
    if missing:
        raise ConfigError(
            f"designs: expected every design column (validated, defaults filled); missing "
            f"{', '.join(missing)}"
        )
    frame = designs[list(DESIGN_COLUMNS)].copy()
    frame["route"] = frame["route"].map({r: float(i) for i, r in enumerate(ROUTES)})
    return frame.to_numpy(np.float64)


def _to_frame(values: np.ndarray) -> pd.DataFrame:
    """Inverse of :func:`_to_array`."""
    frame = pd.DataFrame(values, columns=list(DESIGN_COLUMNS))
    codes = values[:, DESIGN_COLUMNS.index("route")].astype(np.int64)
    frame["route"] = np.asarray(ROUTES, dtype=object)[codes]
    return frame


def explain(
    surrogate: Surrogate,
    designs: pd.DataFrame,
    *,
    background: pd.DataFrame | None = None,
    mean_function: MeanFunction | None = None,
) -> Explanation:
    """Exact Shapley values of the predicted mean of every target over the design columns.

    The game of a candidate ``x`` and a set ``S`` of design columns is the mean prediction over
    the background rows with the columns of ``S`` set to ``x``'s values (interventional
    Shapley values, ``shap.maskers.Independent``); ``shap.explainers.Exact`` evaluates all
    ``2**9`` sets. The base value is the mean prediction over the background, and by efficiency
    ``base_value + sum(contributions)`` is the predicted mean, which is checked against a
    separate prediction of ``designs``.

    Args:
        surrogate: a fitted surrogate (its targets are explained).
        designs: candidates, every design column present and valid (defaults filled), e.g.
            from :func:`poreml.data.validation.validate_designs`; other columns are ignored.
        background: reference designs (default: :func:`background_designs`).
        mean_function: predicted means of a design frame (default: :func:`surrogate_mean`);
            the API passes its serialised, batched model here.

    Returns:
        The :class:`Explanation`.

    Raises:
        ExplanationError: the values do not add up to the predicted mean within
            :data:`ADDITIVITY_RTOL` (a model whose mean depends on the batch it is in).
    """
    default_background = background is None
    if background is None:
        background = background_designs(surrogate)
    mean_function = mean_function or surrogate_mean(surrogate)
    targets = tuple(surrogate.targets_)
    x = _to_array(designs)
    bg = _to_array(background)
    n_rows, n_cols, n_targets = len(x), len(DESIGN_COLUMNS), len(targets)

    def model(values: np.ndarray) -> np.ndarray:
        return mean_function(_to_frame(values))

    explainer = shap.explainers.Exact(
        model, shap.maskers.Independent(bg, max_samples=len(bg)), feature_names=list(DESIGN_COLUMNS)
    )
    result = explainer(x, silent=True)
    contributions = np.asarray(result.values, dtype=np.float64).reshape(n_rows, n_cols, n_targets)
    base_values = np.asarray(result.base_values, dtype=np.float64).reshape(n_rows, n_targets)
    source = (
        f"Sobol seed {BACKGROUND_SEED} over the trained design ranges"
        if default_background
        else "given designs"
    )
    out = Explanation(
        targets=targets,
        columns=tuple(DESIGN_COLUMNS),
        base_values=base_values,
        contributions=contributions,
        mean=np.asarray(mean_function(designs[list(DESIGN_COLUMNS)]), dtype=np.float64),
        method=f"exact-shapley (shap.explainers.Exact, background n={len(bg)}, {source})",
    )
    error = out.additivity_error()
    if not np.all(error <= ADDITIVITY_RTOL):  # NaN fails too
        i, j = np.unravel_index(np.nanargmax(np.where(np.isnan(error), np.inf, error)), error.shape)
        raise ExplanationError(
            f"explanation of row {i}, target {targets[j]}: base_value + sum(contributions) = "
            f"{base_values[i, j] + contributions[i, :, j].sum()!r} but the predicted mean is "
            f"{out.mean[i, j]!r} (relative difference {error[i, j]:.3g}, expected at most "
            f"{ADDITIVITY_RTOL:g}); the model's mean depends on the batch it is predicted in"
        )
    return out


# --------------------------------------------------------------------------------------------
# Global summaries


def importance(explanation: Explanation) -> pd.DataFrame:
    """Mean absolute contribution per target and design column over the explained rows.

    Returns:
        Columns ``target``, ``column``, ``mean_abs_contribution`` (contract units of the
        target), ``rank`` (1 = largest within the target); sorted by target, then rank.
    """
    mean_abs = np.abs(explanation.contributions).mean(axis=0)  # (C, T)
    rows = []
    for j, target in enumerate(explanation.targets):
        order = np.argsort(-mean_abs[:, j], kind="stable")
        for rank, c in enumerate(order, start=1):
            rows.append(
                {
                    "target": target,
                    "column": explanation.columns[c],
                    "mean_abs_contribution": float(mean_abs[c, j]),
                    "rank": rank,
                }
            )
    return pd.DataFrame(rows)


def partial_dependence(
    surrogate: Surrogate,
    designs: pd.DataFrame,
    *,
    grid_points: int = PD_GRID_POINTS,
    mean_function: MeanFunction | None = None,
) -> pd.DataFrame:
    """Partial dependence of every target on each design column, over the trained box.

    For each column and grid value, every row of ``designs`` gets that value and the predicted
    means are averaged. All grid points of all columns are predicted in one call.

    Args:
        surrogate: a fitted surrogate.
        designs: the rows to average over (every design column present and valid).
        grid_points: points per continuous column (log-spaced for log-scale columns) over its
            trained range; ``route`` uses the routes seen; a column fixed in training, its value.
        mean_function: as in :func:`explain`.

    Returns:
        Long frame: ``column``, ``value`` (float, or the route name), ``target``, ``mean``.
    """
    mean_function = mean_function or surrogate_mean(surrogate)
    base = designs[list(DESIGN_COLUMNS)].reset_index(drop=True)
    grid: list[tuple[str, Any]] = []
    for p in trained_space(surrogate).parameters:
        if isinstance(p, ContinuousParameter):
            lo, hi = p.bounds
            points = (
                np.geomspace(lo, hi, grid_points)
                if p.scale == "log"
                else np.linspace(lo, hi, grid_points)
            )
            grid += [(p.name, float(v)) for v in points]
        elif isinstance(p, CategoricalParameter):
            grid += [(p.name, v) for v in p.values]
        else:
            grid.append((p.name, p.value))
    blocks = [base.assign(**{name: value}) for name, value in grid]
    means = mean_function(pd.concat(blocks, ignore_index=True))
    averaged = means.reshape(len(grid), len(base), -1).mean(axis=1)  # (G, T)
    targets = tuple(surrogate.targets_)
    return pd.DataFrame(
        [
            {"column": name, "value": value, "target": t, "mean": float(averaged[g, j])}
            for g, (name, value) in enumerate(grid)
            for j, t in enumerate(targets)
        ]
    )


def partial_dependence_figure(curves: pd.DataFrame, target: str) -> Figure:
    """One target's partial dependence on each design column: a 3 x 3 grid of panels.

    Args:
        curves: :func:`partial_dependence` output.
        target: the target to draw.

    Returns:
        A matplotlib figure (built without pyplot; not shown).
    """
    from matplotlib.figure import Figure

    rows = curves[curves["target"] == target]
    if rows.empty:
        raise ConfigError(
            f"target: {target!r} has no partial dependence here; expected one of "
            + ", ".join(curves["target"].unique())
        )
    fig = Figure(figsize=(11, 9), layout="constrained")
    axes = fig.subplots(3, 3, sharey=True).ravel()
    unit = COLUMNS[target].unit
    for ax, name in zip(axes, DESIGN_COLUMNS, strict=True):
        part = rows[rows["column"] == name]
        col = COLUMNS[name]
        if name == "route":
            ax.bar(part["value"].astype(str), part["mean"], color="tab:blue")
        else:
            values = part["value"].astype(float)
            ax.plot(values, part["mean"], marker="." if len(part) > 1 else "o")
            if col.log_scale:
                ax.set_xscale("log")
        ax.set_xlabel(f"{name} [{col.unit}]")
        ax.grid(alpha=0.3)
    for ax in axes[::3]:
        ax.set_ylabel(f"{target} [{unit}]")
    fig.suptitle(f"Partial dependence of {target} (mean prediction)")
    return fig


def log_explanations(tracker: Tracker, model: Surrogate, X: pd.DataFrame) -> pd.DataFrame:
    """Log global explanations of ``model`` over the designs ``X`` to ``tracker``.

    Logs ``explanation_importance.csv`` and ``.md`` (:func:`importance` of the exact Shapley
    values of every row of ``X``), ``partial_dependence.csv`` and one figure per target,
    ``partial_dependence_<target>.png``. Cost: ``2**9 * BACKGROUND_SIZE`` model rows per row
    of ``X``; 16 rows are plenty for a ranking.

    Args:
        tracker: where to log (an open run).
        model: a fitted surrogate.
        X: designs with every design column (e.g. ``SearchSpace.contract_box().sample(16,
            seed)``).

    Returns:
        The importance table.
    """
    table = importance(explain(model, X))
    tracker.log_table(table, "explanation_importance.csv")
    tracker.log_table(table, "explanation_importance.md")
    curves = partial_dependence(model, X)
    tracker.log_table(curves, "partial_dependence.csv")
    for target in model.targets_:
        tracker.log_figure(
            partial_dependence_figure(curves, target), f"partial_dependence_{target}.png"
        )
    return table
