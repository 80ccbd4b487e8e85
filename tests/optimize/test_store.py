"""The campaign directory: atomic state, locking, refusal to overwrite, exact resume."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from poreml.exceptions import CampaignError
from poreml.optimize.campaign import Campaign
from poreml.optimize.state import SCHEMA_VERSION, CampaignState
from poreml.optimize.store import FolderStore, MemoryStore

CONFIG = Path("experiments/campaign_td_vs_buffering.toml")


def _results(batch: pd.DataFrame, value: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "candidate_id": batch["candidate_id"],
            "tap_density_g_cm3": [value] * len(batch),
            "expansion_pct": [20.0] * len(batch),
            "ice_pct": [90.0] * len(batch),
            "retention_pct": [90.0] * len(batch),
            "specific_capacity_mah_g": [1200.0] * len(batch),
        }
    )


def test_create_copies_the_config_verbatim_and_writes_a_versioned_state(tmp_path: Path) -> None:
    Campaign.create(tmp_path / "c", CONFIG)
    store = FolderStore(tmp_path / "c")
    assert store.config_path.read_text() == CONFIG.read_text()
    state = json.loads(store.state_path.read_text())
    assert state["type"] == "CampaignState"
    assert state["schema_version"] == SCHEMA_VERSION


def test_create_refuses_to_overwrite_an_existing_campaign(tmp_path: Path) -> None:
    c = Campaign.create(tmp_path / "c", CONFIG)
    c.ask(2)
    before = (tmp_path / "c" / "state.json").read_text()
    with pytest.raises(CampaignError, match="already exists"):
        Campaign.create(tmp_path / "c", CONFIG)
    assert (tmp_path / "c" / "state.json").read_text() == before


def test_load_of_a_directory_without_campaign_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(CampaignError, match="campaign init"):
        Campaign.load(tmp_path)


def test_state_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    Campaign.create(tmp_path / "c", CONFIG)
    path = tmp_path / "c" / "state.json"
    data = json.loads(path.read_text())
    data["schema_version"] = 999
    path.write_text(json.dumps(data))
    with pytest.raises(CampaignError, match="schema version 999"):
        Campaign.load(tmp_path / "c")


def test_load_gives_back_exactly_the_saved_campaign(tmp_path: Path) -> None:
    c = Campaign.create(tmp_path / "c", CONFIG)
    batch = c.ask(3)
    c.tell(_results(batch.iloc[:2]))
    again = Campaign.load(tmp_path / "c")
    assert again.to_dict() == c.to_dict()
    pd.testing.assert_frame_equal(again.observations, c.observations)
    pd.testing.assert_frame_equal(again.pending, c.pending)
    # the next proposals continue identically from a JSON copy and from disk
    copy = Campaign.from_dict(json.loads(json.dumps(c.to_dict())))
    pd.testing.assert_frame_equal(copy.ask(2), again.ask(2))


def test_a_crash_while_writing_leaves_the_previous_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = Campaign.create(tmp_path / "c", CONFIG)
    batch = c.ask(4)
    before = (tmp_path / "c" / "state.json").read_text()

    def boom(src: str, dst: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk gone"):
        c.tell(_results(batch))
    monkeypatch.undo()
    assert (tmp_path / "c" / "state.json").read_text() == before
    assert not list((tmp_path / "c").glob(".state.json.*"))  # no temp file left behind
    # memory was not changed either: the same results can be told again
    assert c.n_pending == 4
    assert Campaign.load(tmp_path / "c").n_pending == 4
    assert c.tell(_results(batch)).new == tuple(batch["candidate_id"])


def test_a_second_command_waits_for_the_lock_then_fails_clearly(tmp_path: Path) -> None:
    Campaign.create(tmp_path / "c", CONFIG)
    holder = FolderStore(tmp_path / "c")
    other = Campaign.load(tmp_path / "c", lock_timeout=0.3)
    with holder.locked():
        t0 = time.perf_counter()
        with pytest.raises(CampaignError, match="another poreml command is working"):
            other.ask(1)
        assert time.perf_counter() - t0 >= 0.25
    assert other.ask(1)["candidate_id"].tolist() == ["C0001"]


def test_concurrent_threads_serialise_and_lose_no_update(tmp_path: Path) -> None:
    Campaign.create(tmp_path / "c", CONFIG)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            camp = Campaign.load(tmp_path / "c")
            for _ in range(2):
                batch = camp.ask(1)
                camp.tell(_results(batch, value=1.0 + k))
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    final = Campaign.load(tmp_path / "c")
    assert final.n_observations == 6
    assert final.n_pending == 0
    ids = final.observations["candidate_id"].tolist()
    assert len(set(ids)) == 6
    assert len(final.to_dict()["tells"]) == 6


def test_the_state_file_is_the_campaign_state_and_the_files_for_people_follow(
    tmp_path: Path,
) -> None:
    c = Campaign.create(tmp_path / "c", CONFIG)
    batch = c.ask(2)
    assert (tmp_path / "c" / "rounds" / "round_001.csv").is_file()
    c.tell(_results(batch))
    assert (tmp_path / "c" / "reports" / "pareto.png").is_file()
    store = FolderStore(tmp_path / "c")
    assert json.loads(store.state_path.read_text()) == c.to_dict()
    assert store.load_state().to_dict() == c.to_dict()
    assert store.load_config_text() == CONFIG.read_text()


def test_a_transaction_commits_changes_only_on_a_clean_exit(tmp_path: Path) -> None:
    Campaign.create(tmp_path / "c", CONFIG)
    store = FolderStore(tmp_path / "c")
    before = store.state_path.read_text()
    with store.transaction() as state:
        pass  # unchanged: nothing written, revision kept
    assert store.state_path.read_text() == before
    with pytest.raises(RuntimeError), store.transaction() as state:
        state.sobol_drawn = 5
        raise RuntimeError("stop")
    assert store.state_path.read_text() == before
    with store.transaction() as state:
        state.sobol_drawn = 5
    assert state.revision == 1
    assert store.load_state() == state


def test_a_memory_store_keeps_the_same_rules() -> None:
    store = MemoryStore()
    assert not store.exists() and store.directory is None and store.reports_dir is None
    with store.create("text", CampaignState(config={}, settings={}, seed=1)):
        pass
    again = CampaignState(config={}, settings={}, seed=1)
    with pytest.raises(CampaignError, match="already exists"), store.create("text", again):
        pass
    with store.transaction() as state:
        state.next_candidate = 9
    assert store.load_state().next_candidate == 9 and store.load_state().revision == 1
    assert store.load_config_text() == "text"
