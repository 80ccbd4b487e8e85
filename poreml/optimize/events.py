"""What a campaign tells its listeners: created, asked, told.

A :class:`CampaignListener` is a side channel (experiment tracking, plots for people): the
campaign calls its hooks after each change is committed, and a failing hook only warns
(:func:`notify`), never stops or changes the campaign. Listeners see the campaign through the
read-only :class:`CampaignView`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pandas as pd

from poreml.design.config import CampaignConfig
from poreml.optimize.results import TellSummary
from poreml.optimize.state import RoundRecord, TellRecord

if TYPE_CHECKING:
    from poreml.optimize.models import CampaignModel
    from poreml.optimize.strategy import AcquisitionSettings

__all__ = ["CampaignListener", "CampaignView", "notify"]


class CampaignView(Protocol):
    """What listeners may read of a campaign (:class:`~poreml.optimize.campaign.Campaign`)."""

    @property
    def config(self) -> CampaignConfig:
        """The campaign configuration."""
        ...

    @property
    def settings(self) -> AcquisitionSettings:
        """Acquisition-optimisation effort."""
        ...

    @property
    def directory(self) -> Path | None:
        """The campaign's folder, or None."""
        ...

    @property
    def short_name(self) -> str | None:
        """What people call the campaign (folder or database name), or None."""
        ...

    @property
    def tracking(self) -> Mapping[str, Any]:
        """What side channels noted at creation (e.g. ``parent_run_id``)."""
        ...

    @property
    def n_observations(self) -> int:
        """Candidates with at least one result."""
        ...

    @property
    def observations(self) -> pd.DataFrame:
        """Every observation (:attr:`Campaign.observations`)."""
        ...

    @property
    def hypervolume_trace(self) -> pd.DataFrame:
        """Observed hypervolume after each changing upload."""
        ...

    def export(self) -> pd.DataFrame:
        """Every observation with its design and result columns."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The campaign state as written to ``state.json``."""
        ...

    def predicted_front(
        self, n: int | None = None, *, model: CampaignModel | None = None
    ) -> pd.DataFrame:
        """The model-predicted front."""
        ...


@runtime_checkable
class CampaignListener(Protocol):
    """Hooks a campaign calls after each committed change (a side channel)."""

    def created(self, campaign: CampaignView) -> Mapping[str, Any] | None:
        """A campaign was created in a store (called before its state is first written).

        Returns:
            Notes to keep in the state's ``tracking`` record (e.g. ``parent_run_id``), or None.
        """
        ...

    def asked(
        self,
        campaign: CampaignView,
        record: RoundRecord,
        proposals: pd.DataFrame,
        model: CampaignModel | None,
    ) -> None:
        """A round of proposals was recorded.

        Args:
            campaign: the campaign after the round.
            record: the round's record.
            proposals: the proposals as returned by ``ask``.
            model: the fitted model behind them (None for space-filling rounds).
        """
        ...

    def told(self, campaign: CampaignView, summary: TellSummary, record: TellRecord) -> None:
        """Results changed the campaign.

        Args:
            campaign: the campaign after the upload.
            summary: what changed.
            record: the upload's record.
        """
        ...


def notify(
    listeners: Sequence[CampaignListener],
    hook: str,
    call: Callable[[CampaignListener], Any],
) -> list[Any]:
    """Call ``call(listener)`` for each listener; a failure only warns (side channel).

    Args:
        listeners: the listeners, called in order.
        hook: the hook's name, for the warning.
        call: what to do with one listener.

    Returns:
        What each call returned (None for a failed one).
    """
    out: list[Any] = []
    for listener in listeners:
        try:
            out.append(call(listener))
        except Exception as err:  # a side channel never stops the campaign
            warnings.warn(
                f"{type(listener).__name__}.{hook} failed ({err}); the campaign is unaffected",
                RuntimeWarning,
                stacklevel=4,
            )
            out.append(None)
    return out
