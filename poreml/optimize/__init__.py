"""The optimize stage: multi-objective Bayesian-optimisation campaigns.

* :class:`Campaign` (:mod:`poreml.optimize.campaign`): ask / tell with DataFrames, persisted in
  a campaign directory (:mod:`poreml.optimize.store`);
* :class:`AcquisitionSettings` and the acquisition optimiser (:mod:`poreml.optimize.acquisition`);
* the campaign model: surrogates plus feasibility (:mod:`poreml.optimize.models`);
* Pareto fronts and hypervolumes (:mod:`poreml.optimize.pareto`) and plots
  (:mod:`poreml.optimize.report`).

Importing this package does not import torch; the names below load their module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from poreml.optimize.acquisition import AcquisitionSettings
    from poreml.optimize.campaign import Campaign, TellSummary
    from poreml.optimize.store import CampaignStore

__all__ = ["AcquisitionSettings", "Campaign", "CampaignStore", "TellSummary"]

_WHERE = {
    "AcquisitionSettings": "poreml.optimize.acquisition",
    "Campaign": "poreml.optimize.campaign",
    "CampaignStore": "poreml.optimize.store",
    "TellSummary": "poreml.optimize.campaign",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
