"""Campaign plots: the observed Pareto front and the hypervolume per round (matplotlib, Agg).

Functions take a campaign's observations, hypervolume trace and config and return
:class:`matplotlib.figure.Figure` objects built with the object-oriented API on the Agg canvas
(no display, no global pyplot state); :func:`write_reports` saves them as PNG.
:class:`ReportWriter` is the campaign listener that keeps a campaign directory's ``rounds/``
tables and ``reports/`` plots up to date.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from poreml.data.io import write_csv
from poreml.design.config import CampaignConfig
from poreml.optimize.events import CampaignView
from poreml.optimize.pareto import eligible_mask, observed_front
from poreml.optimize.results import TellSummary
from poreml.optimize.state import RoundRecord, TellRecord

if TYPE_CHECKING:
    from poreml.design.objectives import Objective, OutcomeConstraint
    from poreml.optimize.models import CampaignModel

__all__ = [
    "ReportWriter",
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


def pareto_figure(observations: pd.DataFrame, config: CampaignConfig) -> Figure:
    """:func:`pareto_plot` of a campaign's observations, titled with the campaign name.

    Args:
        observations: the campaign's observations (:attr:`Campaign.observations`).
        config: the campaign config.

    Returns:
        The figure.
    """
    return pareto_plot(
        observations,
        config.objectives,
        config.outcome_constraints,
        title=f"{config.name}: {len(observations)} observations",
    )


def hypervolume_figure(
    trace: pd.DataFrame, config: CampaignConfig, *, reference: float | None = None
) -> Figure:
    """Observed hypervolume after each result upload, against the number of observations.

    Args:
        trace: ``n_observations`` and ``hypervolume`` per upload
            (:attr:`Campaign.hypervolume_trace`).
        config: the campaign config.
        reference: an attainable hypervolume to draw as a dashed line (e.g. 139 for the
            contract's example campaign), if known.

    Returns:
        The figure.
    """
    fig = _new_figure((6.4, 4.0))
    ax = fig.add_subplot()
    if len(trace):
        ax.plot(trace["n_observations"], trace["hypervolume"], marker="o", c="tab:blue")
    if reference is not None:
        ax.axhline(reference, ls="--", c="k", lw=0.8, label=f"attainable ≈ {reference:g}")
        ax.legend(fontsize=8)
    ax.set_xlabel("observations")
    ax.set_ylabel("hypervolume (observed front)")
    ax.set_title(f"{config.name}: hypervolume per round")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def write_reports(
    observations: pd.DataFrame,
    trace: pd.DataFrame,
    config: CampaignConfig,
    directory: str | Path,
) -> list[Path]:
    """Save ``pareto.png`` and ``hypervolume.png`` of a campaign into ``directory``.

    Args:
        observations: the campaign's observations.
        trace: its hypervolume trace.
        config: the campaign config.
        directory: where to write (made if missing).

    Returns:
        The written paths.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    figures = {
        "pareto.png": pareto_figure(observations, config),
        "hypervolume.png": hypervolume_figure(trace, config),
    }
    paths = []
    for name, fig in figures.items():
        path = folder / name
        tmp = folder / f".{name}.tmp"
        fig.savefig(tmp, format="png")
        tmp.replace(path)
        paths.append(path)
    return paths


class ReportWriter:
    """Campaign listener keeping the files for people up to date.

    After each round the proposals go to ``rounds_dir/round_NNN.csv``; after each upload that
    changed the campaign the plots go to ``reports_dir`` (:func:`write_reports`). Failures only
    warn.

    Args:
        reports_dir: folder of the plots (None: no plots).
        rounds_dir: folder of the round tables (None: no tables).
    """

    def __init__(self, reports_dir: Path | None, rounds_dir: Path | None) -> None:
        self.reports_dir = reports_dir
        self.rounds_dir = rounds_dir

    def created(self, campaign: CampaignView) -> Mapping[str, Any] | None:
        """Nothing to write yet."""
        return None

    def asked(
        self,
        campaign: CampaignView,
        record: RoundRecord,
        proposals: pd.DataFrame,
        model: CampaignModel | None,
    ) -> None:
        """Write the round's proposals table."""
        if self.rounds_dir is None:
            return
        try:
            write_csv(proposals, self.rounds_dir / f"round_{record.round:03d}.csv")
        except OSError as err:
            warnings.warn(f"could not write the round table ({err})", RuntimeWarning, stacklevel=4)

    def told(self, campaign: CampaignView, summary: TellSummary, record: TellRecord) -> None:
        """Redraw the plots."""
        if self.reports_dir is None:
            return
        try:
            write_reports(
                campaign.observations, campaign.hypervolume_trace, campaign.config, self.reports_dir
            )
        except Exception as err:
            warnings.warn(f"could not write the reports ({err})", RuntimeWarning, stacklevel=4)
