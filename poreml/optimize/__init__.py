"""The optimize stage: multi-objective Bayesian-optimisation campaigns.

* :class:`Campaign` (:mod:`poreml.optimize.campaign`): ask / tell with DataFrames over a typed
  :class:`CampaignState` (:mod:`poreml.optimize.state`), kept in a :class:`CampaignStore`
  (:mod:`poreml.optimize.store`; :class:`FolderStore` for a campaign directory);
* result validation and merging, :class:`TellSummary` (:mod:`poreml.optimize.results`);
* proposals: space-filling or model-based (:mod:`poreml.optimize.proposals`);
* side channels: :class:`CampaignListener` (:mod:`poreml.optimize.events`);
* :class:`AcquisitionSettings` (:mod:`poreml.optimize.strategy`) and the acquisition optimiser
  (:mod:`poreml.optimize.acquisition`);
* the campaign model: surrogates plus feasibility (:mod:`poreml.optimize.models`);
* Pareto fronts and hypervolumes (:mod:`poreml.optimize.pareto`) and plots
  (:mod:`poreml.optimize.report`).

Importing this package does not import torch; the names below load their module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from poreml.optimize.campaign import Campaign
    from poreml.optimize.events import CampaignListener
    from poreml.optimize.results import TellSummary
    from poreml.optimize.state import CampaignState
    from poreml.optimize.store import CampaignStore, FolderStore
    from poreml.optimize.strategy import AcquisitionSettings

__all__ = [
    "AcquisitionSettings",
    "Campaign",
    "CampaignListener",
    "CampaignState",
    "CampaignStore",
    "FolderStore",
    "TellSummary",
]

_WHERE = {
    "AcquisitionSettings": "poreml.optimize.strategy",
    "Campaign": "poreml.optimize.campaign",
    "CampaignListener": "poreml.optimize.events",
    "CampaignState": "poreml.optimize.state",
    "CampaignStore": "poreml.optimize.store",
    "FolderStore": "poreml.optimize.store",
    "TellSummary": "poreml.optimize.results",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
