"""Campaign runs: a campaign listener that logs a campaign to a tracker (MLflow).

:class:`CampaignRuns` opens one parent run when the campaign is created (tag ``poreml.kind =
campaign``; params: the config and the acquisition settings) and keeps its run id in the
campaign state. Every round then gets a child run ``round-NNN`` (``campaign-round``: params,
hypervolume and model diagnostics / calibration metrics, ``proposals.csv``, for model-based
rounds ``predicted_front.csv``) and every upload that changed the campaign a child run
``observe-NNN`` (``campaign-observe``: counts, hypervolume, ``results.csv``). Each child run also
holds the Pareto and hypervolume plots and, for a campaign kept in a directory, ``state.json``.

Tracking is a side channel: a failure in it warns and leaves the campaign as it is.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

__all__ = ["CampaignRuns", "config_params"]


class CampaignRuns:
    """Campaign listener logging the campaign as a parent run with a child run per change.

    Args:
        tracker: where to log (e.g. :class:`~poreml.tracking.mlflow_tracker.MlflowTracker`
            on :data:`~poreml.tracking.mlflow_tracker.CAMPAIGN_EXPERIMENT`).
    """

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def created(self, campaign: CampaignView) -> Mapping[str, Any] | None:
        """Open and close the parent run; returns ``{"parent_run_id": …}`` for the state."""
        try:
            with self.tracker.start_run(
                f"campaign-{campaign.config.name}",
                tags={"poreml.kind": "campaign", "poreml.campaign_dir": str(campaign.directory)},
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
        except Exception as err:  # tracking is a side channel
            warnings.warn(
                f"observe tracking failed ({err}); the campaign is unaffected",
                RuntimeWarning,
                stacklevel=2,
            )

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
