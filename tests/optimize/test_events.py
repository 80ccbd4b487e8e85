"""Campaign listeners: called after each committed change; a failing one only warns."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from poreml.design.config import CampaignConfig
from poreml.optimize.campaign import Campaign
from poreml.optimize.events import CampaignListener, notify

CONFIG = Path("experiments/campaign_td_vs_buffering.toml")


class Log:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def created(self, campaign: Any) -> Mapping[str, Any] | None:
        self.calls.append(("created", campaign.directory))
        return {"note": "hello"}

    def asked(self, campaign: Any, record: Any, proposals: pd.DataFrame, model: Any) -> None:
        self.calls.append(("asked", (record.round, len(proposals), campaign.n_observations)))

    def told(self, campaign: Any, summary: Any, record: Any) -> None:
        self.calls.append(("told", (summary.new, record.tell, campaign.n_observations)))


class Failing(Log):
    def asked(self, *args: Any) -> None:
        raise ValueError("boom")


def test_listeners_hear_of_every_committed_change(tmp_path: Path) -> None:
    log = Log()
    assert isinstance(log, CampaignListener)
    c = Campaign.create(tmp_path / "c", CONFIG, listeners=[log])
    assert c.tracking["note"] == "hello"
    batch = c.ask(2)
    results = pd.DataFrame({"candidate_id": batch["candidate_id"], "feasible": [True, False]})
    c.tell(results)
    c.tell(results)  # nothing new: no call
    assert log.calls == [
        ("created", tmp_path / "c"),
        ("asked", (1, 2, 0)),
        ("told", (tuple(batch["candidate_id"]), 1, 2)),
    ]


def test_a_failing_listener_only_warns_and_the_others_still_hear() -> None:
    log = Log()
    c = Campaign(CampaignConfig.from_toml(CONFIG), listeners=[Failing(), log])
    with pytest.warns(RuntimeWarning, match=r"Failing\.asked failed \(boom\)"):
        batch = c.ask(1)
    assert c.n_pending == 1 and len(batch) == 1
    assert log.calls == [("asked", (1, 1, 0))]


def test_notify_returns_what_each_listener_returned() -> None:
    with pytest.warns(RuntimeWarning):
        out = notify([Log(), Failing()], "asked", lambda x: x.asked(None, None, None, None))
    assert out == [None, None]
