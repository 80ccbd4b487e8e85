"""CampaignState: the typed state.json, read back from files the earlier campaign code wrote."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from poreml.data.schema import CONTINUOUS_DESIGN_COLUMNS
from poreml.exceptions import CampaignError
from poreml.optimize.campaign import Campaign
from poreml.optimize.state import (
    SCHEMA_VERSION,
    STATE_TYPE,
    CampaignState,
    Observation,
    PendingCandidate,
    RoundRecord,
    TellRecord,
)

FIXTURE = Path(__file__).parent / "data" / "state_v1.json"
"""A state.json written before the state was typed: 3 rounds (Sobol, two model-based), a
partial result, a failed synthesis, outside data and one pending candidate."""
CONFIG = Path("experiments/campaign_td_vs_buffering.toml")


@pytest.fixture(scope="module")
def stored() -> dict:
    return json.loads(FIXTURE.read_text())


def test_a_state_written_by_the_earlier_code_reads_and_writes_back_unchanged(stored: dict) -> None:
    state = CampaignState.from_dict(stored)
    assert state.to_dict() == stored
    assert list(state.to_dict()) == list(stored)  # same keys in the same order
    assert json.loads(json.dumps(state.to_dict())) == stored
    assert isinstance(state.observations[0], Observation)
    assert isinstance(state.pending[0], PendingCandidate)
    assert isinstance(state.rounds[-1], RoundRecord)
    assert isinstance(state.tells[-1], TellRecord)
    for kind, records in (("observations", state.observations), ("rounds", state.rounds)):
        for record, raw in zip(records, stored[kind], strict=True):
            assert list(record.to_dict()) == list(raw)


def test_a_campaign_directory_of_the_earlier_code_opens_and_continues(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    directory.mkdir()
    shutil.copy(FIXTURE, directory / "state.json")
    shutil.copy(CONFIG, directory / "config.toml")
    c = Campaign.load(directory)
    assert c.to_dict() == json.loads(FIXTURE.read_text())
    assert c.n_observations == 11 and c.n_pending == 1
    obs = c.observations
    assert obs.loc[obs["candidate_id"] == "LAB-7", "source"].item() == "outside"
    assert c.history["strategy"].tolist() == ["sobol", "qlognehvi", "qlognehvi"]
    summary = c.tell(
        pd.DataFrame({"candidate_id": ["C0011"], "tap_density_g_cm3": [0.9], "feasible": [True]})
    )
    assert summary.new == ("C0011",)
    on_disk = json.loads((directory / "state.json").read_text())
    assert on_disk["revision"] == json.loads(FIXTURE.read_text())["revision"] + 1
    assert on_disk["type"] == STATE_TYPE and on_disk["schema_version"] == SCHEMA_VERSION


def test_a_new_state_has_the_stored_layout() -> None:
    state = CampaignState(config={"name": "x"}, settings={}, seed=7)
    data = state.to_dict()
    assert list(data) == list(json.loads(FIXTURE.read_text()))
    assert data["rng"] == {"seed": 7, "sobol_drawn": 0}
    assert data["tracking"] == {"parent_run_id": None}
    assert data["created_at"] == data["updated_at"]
    assert CampaignState.from_dict(json.loads(json.dumps(data))) == state


def test_new_ids_skip_ids_in_use_and_advance_the_counter(stored: dict) -> None:
    state = CampaignState.from_dict(stored)
    state.next_candidate = 10  # C0010 and C0011 are taken
    assert state.new_ids(2) == ["C0012", "C0013"]
    assert state.next_candidate == 14


def test_touch_counts_a_committed_change(stored: dict) -> None:
    state = CampaignState.from_dict(stored)
    state.touch()
    assert state.revision == stored["revision"] + 1


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d.update(type="Other"), "CampaignState"),
        (lambda d: d.update(schema_version=99), "schema version 99"),
        (lambda d: d.pop("rounds"), "malformed"),
    ],
)
def test_other_dicts_are_refused(stored: dict, change, match: str) -> None:
    data = json.loads(json.dumps(stored))
    change(data)
    with pytest.raises(CampaignError, match=match):
        CampaignState.from_dict(data)


def test_cancelled_candidates_round_trip_and_are_optional_in_the_json() -> None:
    state = CampaignState(config={}, settings={}, seed=0)
    assert "cancelled" not in state.to_dict()  # absent while nothing was cancelled
    design = {"route": "top_down", **dict.fromkeys(CONTINUOUS_DESIGN_COLUMNS, 1.0)}
    proposals = pd.DataFrame([{"candidate_id": cid, **design} for cid in state.new_ids(3)])
    state.add_pending(proposals, round_index=1)
    assert state.cancel_pending(["C0002"], "never made") == ["C0002"]
    assert [r.candidate_id for r in state.pending] == ["C0001", "C0003"]
    again = CampaignState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state
    assert again.cancelled[0].reason == "never made"
    assert "C0002" not in again.known_ids()  # a later result for it is outside data
    assert again.new_ids(1) == ["C0004"]  # and its id is never given out again
