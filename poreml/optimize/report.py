"""Campaign plots: the observed Pareto front and the hypervolume per round (matplotlib, Agg).

Functions return :class:`matplotlib.figure.Figure` objects built with the object-oriented API on
the Agg canvas (no display, no global pyplot state); :func:`write_reports` saves them as PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from poreml.optimize.pareto import eligible_mask, observed_front

if TYPE_CHECKING:
    from poreml.design.objectives import Objective, OutcomeConstraint
    from poreml.optimize.campaign import Campaign

__all__ = [
    "hypervolume_figure",
    "pareto_figure",
    "pareto_plot",
    "write_reports",
]


def _new_figure(size: tuple[float, float] = (6.4, 4.8)) -> Figure:
    fig = Figure(figsize=size, dpi=110)
    FigureCanvasAgg(fig)
    return fig


def pareto_plot(
    observations: pd.DataFrame,
    objectives: Sequence[Objective],
    outcome_constraints: Sequence[OutcomeConstraint] = (),
    *,
    title: str | None = None,
) -> Figure:
    """Scatter of the first two objectives with the observed front highlighted.

    Markers: successful designs meeting every outcome constraint (filled circles), successful
    designs violating or lacking a constraint (open circles), failed syntheses
    (``feasible = false``, crosses); the front is joined by a step line and the thresholds are
    dashed. With one objective the objective is plotted against the observation number.

    Args:
        observations: ``candidate_id``, objective / constrained columns, ``feasible``.
        objectives: the objectives (first one on x, second on y).
        outcome_constraints: the outcome constraints.
        title: figure title.

    Returns:
        The figure.
    """
    fig = _new_figure()
    ax = fig.add_subplot()
    if len(objectives) == 0:
        return fig
    failed = (
        observations["feasible"].map(lambda v: v is False).to_numpy(dtype=bool)
        if "feasible" in observations.columns
        else np.zeros(len(observations), dtype=bool)
    )
    ok = eligible_mask(observations, objectives, outcome_constraints)
    other = ~ok & ~failed
    front = observed_front(observations, objectives, outcome_constraints)
    if len(objectives) == 1:
        o = objectives[0]
        idx = np.arange(1, len(observations) + 1)
        y = pd.to_numeric(observations.get(o.name), errors="coerce")
        ax.scatter(idx[ok], y[ok], c="tab:blue", label="meets constraints")
        ax.scatter(
            idx[other],
            y[other],
            facecolors="none",
            edgecolors="tab:gray",
            label="violates / not measured",
        )
        ax.scatter(idx[failed], y[failed], marker="x", c="tab:red", label="failed synthesis")
        ax.axhline(o.threshold, ls="--", c="k", lw=0.8)
        ax.set_xlabel("observation")
        ax.set_ylabel(o.name)
    else:
        ox, oy = objectives[0], objectives[1]
        x = pd.to_numeric(observations.get(ox.name), errors="coerce").to_numpy(dtype=float)
        y = pd.to_numeric(observations.get(oy.name), errors="coerce").to_numpy(dtype=float)
        ax.scatter(x[ok], y[ok], c="tab:blue", s=28, label="meets constraints", zorder=3)
        ax.scatter(
            x[other],
            y[other],
            facecolors="none",
            edgecolors="tab:gray",
            s=28,
            label="violates / not measured",
            zorder=2,
        )
        ax.scatter(
            x[failed], y[failed], marker="x", c="tab:red", s=28, label="failed synthesis", zorder=2
        )
        if len(front):
            fx = front[ox.name].to_numpy(dtype=float)
            fy = front[oy.name].to_numpy(dtype=float)
            order = np.argsort(fx)
            # attainment boundary: for a maximised x the front at x is set by the next point
            # to the right, for a minimised x by the previous one
            where = "pre" if ox.direction == "maximize" else "post"
            ax.step(fx[order], fy[order], where=where, c="tab:orange", lw=1.5, zorder=1)
            ax.scatter(
                fx,
                fy,
                s=90,
                facecolors="none",
                edgecolors="tab:orange",
                lw=1.8,
                label=f"Pareto front ({len(front)})",
                zorder=4,
            )
        ax.axvline(ox.threshold, ls="--", c="k", lw=0.8)
        ax.axhline(oy.threshold, ls="--", c="k", lw=0.8, label="thresholds")
        ax.set_xlabel(f"{ox.name} ({ox.direction})")
        ax.set_ylabel(f"{oy.name} ({oy.direction})")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def pareto_figure(campaign: Campaign) -> Figure:
    """:func:`pareto_plot` of a campaign's observations."""
    cfg = campaign.config
    return pareto_plot(
        campaign.observations,
        cfg.objectives,
        cfg.outcome_constraints,
        title=f"{cfg.name}: {campaign.n_observations} observations",
    )


def hypervolume_figure(campaign: Campaign, *, reference: float | None = None) -> Figure:
    """Observed hypervolume after each result upload, against the number of observations.

    Args:
        campaign: the campaign.
        reference: an attainable hypervolume to draw as a dashed line (e.g. 139 for the
            contract's example campaign), if known.

    Returns:
        The figure.
    """
    trace = campaign.hypervolume_trace
    fig = _new_figure((6.4, 4.0))
    ax = fig.add_subplot()
    if len(trace):
        ax.plot(trace["n_observations"], trace["hypervolume"], marker="o", c="tab:blue")
    if reference is not None:
        ax.axhline(reference, ls="--", c="k", lw=0.8, label=f"attainable ≈ {reference:g}")
        ax.legend(fontsize=8)
    ax.set_xlabel("observations")
    ax.set_ylabel("hypervolume (observed front)")
    ax.set_title(f"{campaign.config.name}: hypervolume per round")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def write_reports(campaign: Campaign, directory: str | Path) -> list[Path]:
    """Save ``pareto.png`` and ``hypervolume.png`` of ``campaign`` into ``directory``.

    Returns:
        The written paths.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for fn, name in ((pareto_figure, "pareto.png"), (hypervolume_figure, "hypervolume.png")):
        fig = fn(campaign)
        path = folder / name
        tmp = folder / f".{name}.tmp"
        fig.savefig(tmp, format="png")
        tmp.replace(path)
        paths.append(path)
    return paths
