"""Campaign runs: a campaign listener that logs a campaign to a tracker (MLflow).

:class:`CampaignRuns` opens one parent run when the campaign is created (tag ``poreml.kind =
campaign``; params: the config and the acquisition settings) and keeps its run id in the
campaign state. The parent run is named so that campaigns can be told apart in a list of runs:
``<config name> · <campaign folder or short run id> · <UTC date>`` (:func:`parent_run_name`).
After every upload that changed the campaign, the parent run also receives the metric series
``hypervolume``, ``n_observations`` and ``best.<objective>`` at ``step`` = the newest round with
results (:func:`progress_metrics`), so its chart shows the campaign's progress round by round;
this needs a tracker that can log to a closed run (:class:`ParentRunTracker`, e.g.
:class:`~poreml.tracking.mlflow_tracker.MlflowTracker`).

Every round gets a child run ``round-NNN`` (``campaign-round``: params, hypervolume and model
diagnostics / calibration / widening / ``physics.*`` calibration metrics, ``proposals.csv``,
for model-based rounds
``predicted_front.csv``) and every upload that changed the campaign a child run ``observe-NNN``
(``campaign-observe``: counts, hypervolume, ``results.csv``). Each child run also holds the
Pareto and hypervolume plots and, for a campaign kept in a directory, ``state.json``.

Tracking is a side channel: a failure in it warns and leaves the campaign as it is.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pandas as pd

from poreml.data.io import write_json
from poreml.design.config import CampaignConfig
from poreml.optimize.events import CampaignView
from poreml.optimize.report import hypervolume_figure, pareto_figure
from poreml.optimize.results import TellSummary
from poreml.optimize.state import RoundRecord, TellRecord
from poreml.tracker import Tracker
from poreml.tracking.base import flatten_params

if TYPE_CHECKING:
    from poreml.optimize.models import CampaignModel

__all__ = [
    "CampaignRuns",
    "ParentRunTracker",
    "config_params",
    "parent_run_name",
    "progress_metrics",
]

NAME_SEPARATOR = " · "
"""Separator of the parts of a parent run name."""


@runtime_checkable
class ParentRunTracker(Protocol):
    """A tracker that can add metrics to a run that is no longer open (the campaign parent)."""

    def log_run_metrics(
        self, run_id: str, metrics: Mapping[str, float], step: int | None = None
    ) -> None:
        """Record ``metrics`` at ``step`` on the run ``run_id``."""
        ...


def parent_run_name(name: str, place: str | None, when: datetime | None = None) -> str:
    """Name of a campaign's parent run: ``<name> · <place> · <YYYY-MM-DD>``.

    Args:
        name: the campaign config's name (e.g. ``td-vs-buffering``).
        place: what tells this campaign from others of the same config: the campaign folder's
            name (e.g. ``demo-20261201``) or a short run id; None leaves it out.
        when: creation time (default now); its UTC date is used.

    Returns:
        e.g. ``td-vs-buffering · demo-20261201 · 2026-12-01``.
    """
    when = when or datetime.now(UTC)
    day = when.astimezone(UTC).date().isoformat() if when.tzinfo else when.date().isoformat()
    return NAME_SEPARATOR.join(part for part in (name, place, day) if part)


def progress_metrics(campaign: CampaignView) -> tuple[int, dict[str, float]]:
    """The campaign's progress as one point of the parent run's metric series.

    Args:
        campaign: the campaign after an upload.

    Returns:
        ``(step, metrics)``: step is the newest proposal round with results (0 when only
        outside data has results); metrics are ``hypervolume`` (observed front against the
        objective thresholds), ``n_observations`` and ``best.<objective>`` (best measured
        value, in the objective's direction, among the observations that may sit on the
        observed front: made, every objective measured, outcome constraints met; absent
        while there is none) and the prior check by route (``prior.<route>.tried``,
        ``.misfit``, ``.feasibility_agreement``; :mod:`poreml.optimize.prior_check`).
    """
    from poreml.optimize.pareto import eligible_mask
    from poreml.optimize.prior_check import prior_metrics, route_report

    observations = campaign.observations
    rounds = pd.to_numeric(observations["round"], errors="coerce").dropna()
    step = int(rounds.max()) if len(rounds) else 0
    trace = campaign.hypervolume_trace
    hypervolume = float(trace["hypervolume"].iloc[-1]) if len(trace) else math.nan
    metrics: dict[str, float] = {
        "hypervolume": hypervolume,
        "n_observations": float(campaign.n_observations),
    }
    config = campaign.config
    eligible = observations[
        eligible_mask(observations, config.objectives, config.outcome_constraints)
    ]
    if len(eligible):
        for objective in config.objectives:
            values = pd.to_numeric(eligible[objective.name], errors="coerce")
            best = values.max() if objective.direction == "maximize" else values.min()
            metrics[f"best.{objective.name}"] = float(best)
    metrics.update(prior_metrics(route_report(observations, config.outcome_names)))
    return step, metrics


class CampaignRuns:
    """Campaign listener logging the campaign as a parent run with a child run per change.

    Args:
        tracker: where to log (e.g. :class:`~poreml.tracking.mlflow_tracker.MlflowTracker`
            on :data:`~poreml.tracking.mlflow_tracker.CAMPAIGN_EXPERIMENT`).
    """

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def created(self, campaign: CampaignView) -> Mapping[str, Any] | None:
        """Open and close the parent run; returns ``{"parent_run_id": …}`` for the state.

        The run is named by :func:`parent_run_name`: config name, campaign folder or database
        name (for a campaign in memory: the first 8 characters of the run id, set once the run
        exists) and the UTC date.
        """
        place = campaign.short_name
        name = parent_run_name(campaign.config.name, place)
        try:
            with self.tracker.start_run(
                name,
                tags={
                    "poreml.kind": "campaign",
                    "poreml.campaign": campaign.config.name,
                    "poreml.campaign_dir": str(campaign.directory),
                },
            ) as run:
                self.tracker.log_params(
                    flatten_params(
                        {
                            "config": config_params(campaign.config),
                            "settings": campaign.settings.to_dict(),
                        }
                    )
                )
                run_id = getattr(getattr(run, "info", None), "run_id", None)
                if place is None and run_id:
                    self.tracker.set_tags(
                        {"mlflow.runName": parent_run_name(campaign.config.name, run_id[:8])}
                    )
        except Exception as err:  # tracking is a side channel
            warnings.warn(
                f"campaign tracking failed ({err}); the campaign is unaffected",
                RuntimeWarning,
                stacklevel=2,
            )
            return None
        return {"parent_run_id": run_id}

    def asked(
        self,
        campaign: CampaignView,
        record: RoundRecord,
        proposals: pd.DataFrame,
        model: CampaignModel | None,
    ) -> None:
        """Log the round as a child run ``round-NNN``."""
        try:
            with self.tracker.start_run(
                f"round-{record.round:03d}", tags=_child_tags(campaign, "campaign-round")
            ):
                self.tracker.log_params(
                    {
                        "round": record.round,
                        "strategy": record.strategy,
                        "n": len(proposals),
                        "reason": record.reason,
                    }
                )
                metrics = {
                    "hypervolume": record.hypervolume,
                    "n_observations": record.n_observations,
                    "seconds": record.seconds,
                }
                for key, value in (record.model.get("diagnostics") or {}).items():
                    metrics[f"model.{key}"] = value
                for key, value in (record.model.get("calibration") or {}).items():
                    metrics[f"calibration.{key}"] = value
                for key, value in (record.model.get("widening") or {}).items():
                    metrics[f"widening.{key}"] = value
                metrics.update(
                    _physics_calibration_metrics(record.model.get("physics_calibration"))
                )
                self.tracker.log_metrics(metrics, step=record.round)
                self.tracker.log_table(proposals, "proposals.csv")
                if model is not None:
                    predicted = campaign.predicted_front(model=model)
                    self.tracker.log_metrics(
                        {"predicted_front_size": len(predicted)}, step=record.round
                    )
                    self.tracker.log_table(predicted, "predicted_front.csv")
                self._log_reports(campaign)
        except Exception as err:  # tracking is a side channel
            warnings.warn(
                f"round tracking failed ({err}); the campaign is unaffected",
                RuntimeWarning,
                stacklevel=2,
            )

    def told(self, campaign: CampaignView, summary: TellSummary, record: TellRecord) -> None:
        """Log the upload as a child run ``observe-NNN``."""
        try:
            with self.tracker.start_run(
                f"observe-{record.tell:03d}", tags=_child_tags(campaign, "campaign-observe")
            ):
                self.tracker.log_params(
                    {
                        "new": len(summary.new),
                        "updated": len(summary.updated),
                        "outside": len(summary.outside),
                    }
                )
                self.tracker.log_metrics(
                    {"hypervolume": record.hypervolume, "n_observations": record.n_observations},
                    step=record.tell,
                )
                ids = set(summary.new) | set(summary.updated)
                obs = campaign.export()
                self.tracker.log_table(obs[obs["candidate_id"].isin(ids)], "results.csv")
                self._log_reports(campaign)
            self._log_progress(campaign)
        except Exception as err:  # tracking is a side channel
            warnings.warn(
                f"observe tracking failed ({err}); the campaign is unaffected",
                RuntimeWarning,
                stacklevel=2,
            )

    def _log_progress(self, campaign: CampaignView) -> None:
        """Add one point per metric of :func:`progress_metrics` to the parent run's series."""
        parent = campaign.tracking.get("parent_run_id")
        if parent and isinstance(self.tracker, ParentRunTracker):
            step, metrics = progress_metrics(campaign)
            self.tracker.log_run_metrics(parent, metrics, step=step)

    def _log_reports(self, campaign: CampaignView) -> None:
        """Plots, and the state JSON of a campaign kept in a directory, into the open run."""
        observations = campaign.observations
        self.tracker.log_figure(pareto_figure(observations, campaign.config), "pareto.png")
        self.tracker.log_figure(
            hypervolume_figure(campaign.hypervolume_trace, campaign.config), "hypervolume.png"
        )
        if campaign.directory is not None:
            with tempfile.TemporaryDirectory() as folder:
                path = write_json(campaign.to_dict(), Path(folder) / "state.json")
                self.tracker.log_artifact(path)


def _child_tags(campaign: CampaignView, kind: str) -> dict[str, str]:
    tags = {"poreml.kind": kind, "poreml.campaign": campaign.config.name}
    parent = campaign.tracking.get("parent_run_id")
    if parent:
        tags["mlflow.parentRunId"] = parent
    if campaign.directory:
        tags["poreml.campaign_dir"] = str(campaign.directory)
    return tags


def config_params(config: CampaignConfig) -> dict[str, Any]:
    """The campaign config as flat run params (objectives and constraints as readable text).

    Args:
        config: the campaign config.

    Returns:
        ``name``, ``batch_size``, ``initial_points``, ``seed``, ``surrogate``, ``acquisition``,
        ``objectives``, ``outcome_constraints`` and ``parameter_constraints``.
    """
    data = config.to_dict()
    return {
        "name": data["name"],
        "batch_size": data["batch_size"],
        "initial_points": data["initial_points"],
        "seed": data["seed"],
        "surrogate": data["surrogate"],
        "acquisition": data["acquisition"],
        "objectives": ", ".join(
            f"{o.name} {o.direction} (ref {o.threshold:g})" for o in config.objectives
        ),
        "outcome_constraints": ", ".join(f"{c.name} {c}" for c in config.outcome_constraints),
        "parameter_constraints": "; ".join(data["parameter_constraints"]),
    }


def _physics_calibration_metrics(summary: Mapping[str, Any] | None) -> dict[str, float]:
    """A round's physics calibration as metrics: ``physics.accepted`` (1 when the fitted
    constants replaced the published ones), ``physics.misfit_before`` / ``_after`` and, per
    route constant it moved, ``physics.<route>.<constant>`` (calibrated / published)."""
    if not summary:
        return {}
    metrics = {
        "physics.accepted": float(summary["accepted"]),
        "physics.misfit_before": float(summary["misfit_before"]),
        "physics.misfit_after": float(summary["misfit_after"]),
    }
    for route, factors in summary["routes"].items():
        for name, factor in factors.items():
            metrics[f"physics.{route}.{name}"] = float(factor)
    return metrics
