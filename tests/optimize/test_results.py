"""Result validation and merging: what a tell changes, and every conflict named."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from poreml.exceptions import ConflictError, DataValidationError
from poreml.optimize.results import TellSummary, merge_results, validate_results
from poreml.optimize.state import CampaignState

FIXTURE = Path(__file__).parent / "data" / "state_v1.json"


@pytest.fixture
def state() -> CampaignState:
    return CampaignState.from_dict(json.loads(FIXTURE.read_text()))


def _merge(state: CampaignState, frame: pd.DataFrame) -> TellSummary:
    return merge_results(state, validate_results(frame, state.known_ids()), "r.csv")


def test_a_pending_candidate_with_a_result_becomes_an_observation(state: CampaignState) -> None:
    predicted = dict(state.pending[0].predicted)
    summary = _merge(state, pd.DataFrame({"candidate_id": ["C0011"], "ice_pct": [85.0]}))
    assert summary == TellSummary(new=("C0011",))
    assert summary.changed
    assert not state.pending
    obs = state.observations[-1]
    assert (obs.candidate_id, obs.source, obs.round) == ("C0011", "proposal", 3)
    assert obs.measured["ice_pct"] == 85.0 and obs.feasible is None
    assert obs.predicted == predicted


def test_blank_rows_and_identical_resends_change_nothing(state: CampaignState) -> None:
    before = state.copy()
    first = state.observations[0]
    value = first.measured["tap_density_g_cm3"]
    frame = pd.DataFrame(
        {"candidate_id": [first.candidate_id, "C0011"], "tap_density_g_cm3": [value, None]}
    )
    summary = _merge(state, frame)
    assert not summary.changed
    assert summary.unchanged == (first.candidate_id, "C0011")
    assert state == before  # a plain return value, nothing changed


def test_missing_values_are_filled_in(state: CampaignState) -> None:
    partial = next(r for r in state.observations if r.measured["retention_pct"] is None)
    summary = _merge(
        state, pd.DataFrame({"candidate_id": [partial.candidate_id], "retention_pct": [88.0]})
    )
    assert summary.updated == (partial.candidate_id,)
    assert partial.measured["retention_pct"] == 88.0


def test_conflicts_name_every_id_column_old_and_new_value(state: CampaignState) -> None:
    first = state.observations[0]
    frame = pd.DataFrame(
        {
            "candidate_id": [first.candidate_id],
            "tap_density_g_cm3": [first.measured["tap_density_g_cm3"] + 0.1],
            "feasible": [not first.feasible],
            "porosity": [first.design["porosity"] / 2],
        }
    )
    with pytest.raises(ConflictError) as info:
        _merge(state, frame)
    message = str(info.value)
    assert message.startswith("r.csv: 3 value(s)")
    for column in ("tap_density_g_cm3", "feasible", "porosity"):
        assert f"column '{column}'" in message


def test_outside_data_needs_every_design_column_and_a_result(state: CampaignState) -> None:
    with pytest.raises(DataValidationError) as info:
        validate_results(pd.DataFrame({"candidate_id": ["X1"], "porosity": [0.5]}), set())
    text = str(info.value)
    assert "route" in text and "no result" in text


def test_outside_data_is_recorded_as_outside(state: CampaignState) -> None:
    design = dict(state.observations[0].design)
    frame = pd.DataFrame([{"candidate_id": "X1", **design, "feasible": False}])
    summary = _merge(state, frame)
    assert summary.new == summary.outside == ("X1",)
    assert state.observations[-1].source == "outside"
    assert state.observations[-1].round is None
