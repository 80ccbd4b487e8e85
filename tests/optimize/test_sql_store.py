"""Campaigns in a database (SQLite files here): round trip, transactions, refusals, concurrency."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from multiprocessing.pool import Pool
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from poreml.exceptions import CampaignError, ConflictError
from poreml.optimize.campaign import Campaign
from poreml.optimize.sql_store import (
    VERSION_TABLE,
    SqlStore,
    campaigns_table,
    safe_url,
    schema_revision,
    upgrade_schema,
)
from poreml.optimize.state import SCHEMA_VERSION

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "experiments" / "campaign_td_vs_buffering.toml"
WORKERS = 4
ROWS_PER_WORKER = 25


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'campaigns.db'}"


def _results(ids: list[str], value: float = 1.0) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame(
        {
            "candidate_id": ids,
            "tap_density_g_cm3": [value] * n,
            "expansion_pct": [20.0] * n,
            "ice_pct": [90.0] * n,
            "retention_pct": [90.0] * n,
            "specific_capacity_mah_g": [1200.0] * n,
        }
    )


# -- workers of the concurrency tests (module level: spawned processes import them) ------------
def observe_rows(url: str, name: str, ids: list[str]) -> None:
    """Tell results for ``ids`` one row (one transaction) at a time."""
    store = SqlStore(url, name)
    campaign = Campaign.load(store)
    for k, cid in enumerate(ids):
        campaign.tell(_results([cid], value=1.0 + k / 100), source=f"worker {cid}")
    store.close()


def ask_two(url: str, name: str) -> list[dict[str, object]]:
    """One ``suggest --batch 2`` against the shared campaign."""
    store = SqlStore(url, name)
    frame = Campaign.load(store).ask(2)
    store.close()
    return frame.to_dict("records")


def spawn_pool() -> Pool:
    """4 fresh interpreters (spawn: nothing inherited from this process, as on 4 machines)."""
    return multiprocessing.get_context("spawn").Pool(WORKERS)


def run_concurrently_observing(pool: Pool, url: str, name: str) -> Campaign:
    """100 pending candidates, 4 processes each observing 25 of them; returns the reloaded
    campaign."""
    campaign = Campaign.create(SqlStore(url, name), CONFIG)
    ids = campaign.ask(WORKERS * ROWS_PER_WORKER)["candidate_id"].tolist()
    chunks = [ids[k::WORKERS] for k in range(WORKERS)]
    pool.starmap(observe_rows, [(url, name, chunk) for chunk in chunks], chunksize=1)
    return Campaign.load(SqlStore(url, name))


def run_concurrently_asking(pool: Pool, url: str, name: str) -> list[dict[str, object]]:
    """4 processes asking 2 candidates each of one fresh campaign; returns every proposal."""
    Campaign.create(SqlStore(url, name), CONFIG)
    batches = pool.starmap(ask_two, [(url, name)] * WORKERS, chunksize=1)
    return [row for batch in batches for row in batch]


def check_observed(campaign: Campaign) -> None:
    assert campaign.n_observations == WORKERS * ROWS_PER_WORKER
    assert campaign.n_pending == 0
    ids = campaign.observations["candidate_id"]
    assert ids.is_unique
    assert len(campaign.hypervolume_trace) == WORKERS * ROWS_PER_WORKER


def check_asked(rows: list[dict[str, object]], campaign: Campaign) -> None:
    ids = [r["candidate_id"] for r in rows]
    assert len(ids) == 2 * WORKERS and len(set(ids)) == 2 * WORKERS
    designs = {tuple(v for k, v in r.items() if k != "candidate_id") for r in rows}
    assert len(designs) == 2 * WORKERS
    assert sorted(campaign.pending["candidate_id"]) == sorted(ids)
    assert len(campaign.history) == WORKERS


# -- tests ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    """One pool of spawned workers for the concurrency tests (interpreters start once)."""
    with spawn_pool() as workers:
        yield workers


def test_create_load_round_trip_keeps_state_and_config_text(tmp_path: Path) -> None:
    url = _url(tmp_path)
    campaign = Campaign.create(SqlStore(url, "td"), CONFIG)
    campaign.ask(3)
    loaded = Campaign.load(SqlStore(url, "td"))
    assert loaded.to_dict() == campaign.to_dict()
    assert loaded.directory is None and loaded.store.reports_dir is None
    assert SqlStore(url, "td").load_config_text() == CONFIG.read_text()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(sa.select(campaigns_table)).one()
    engine.dispose()
    assert row.name == "td" and row.schema_version == SCHEMA_VERSION
    assert row.revision == loaded.to_dict()["revision"] == 1
    assert row.state == loaded.to_dict()


def test_one_database_holds_campaigns_by_name(tmp_path: Path) -> None:
    url = _url(tmp_path)
    Campaign.create(SqlStore(url, "a"), CONFIG).ask(2)
    Campaign.create(SqlStore(url, "b"), CONFIG)
    assert SqlStore(url, "a").list_names() == ["a", "b"]
    assert Campaign.load(SqlStore(url, "a")).n_pending == 2
    assert Campaign.load(SqlStore(url, "b")).n_pending == 0


def test_transaction_commits_on_clean_exit_and_rolls_back_on_error(tmp_path: Path) -> None:
    url = _url(tmp_path)
    store = SqlStore(url, "td")
    campaign = Campaign.create(store, CONFIG)
    ids = campaign.ask(2)["candidate_id"].tolist()
    with store.transaction() as state:
        state.tracking["note"] = "kept"
    assert store.load_state().tracking["note"] == "kept"
    before = store.load_state()
    with pytest.raises(RuntimeError, match="boom"), store.transaction() as state:
        state.pending.clear()
        raise RuntimeError("boom")
    assert store.load_state() == before
    # a conflicting tell raises inside the transaction: nothing of it is stored
    campaign.tell(_results(ids[:1], 1.0))
    stored = store.load_state()
    with pytest.raises(ConflictError):
        campaign.tell(_results(ids, 2.0))
    assert store.load_state() == stored
    # an unchanged state is not rewritten (the revision stays)
    with store.transaction():
        pass
    assert store.load_state().revision == stored.revision


def test_creating_an_existing_name_is_refused_and_nothing_is_overwritten(tmp_path: Path) -> None:
    url = _url(tmp_path)
    Campaign.create(SqlStore(url, "td"), CONFIG).ask(2)
    before = SqlStore(url, "td").load_state()
    with pytest.raises(CampaignError, match="already exists"):
        Campaign.create(SqlStore(url, "td"), CONFIG)
    assert SqlStore(url, "td").load_state() == before


def test_unknown_name_says_how_to_create_it_and_lists_the_campaigns(tmp_path: Path) -> None:
    url = _url(tmp_path)
    Campaign.create(SqlStore(url, "td"), CONFIG)
    with pytest.raises(CampaignError, match=r"campaigns in this database: td\).*campaign init"):
        Campaign.load(SqlStore(url, "other"))


def test_bad_names_and_urls_are_refused_with_the_fix() -> None:
    with pytest.raises(CampaignError, match="campaign name"):
        SqlStore("sqlite://", "has space")
    with pytest.raises(CampaignError, match="not a database URL"):
        SqlStore("not a url", "td")


def test_unreachable_database_names_the_url_without_password_and_what_to_check() -> None:
    store = SqlStore("postgresql+psycopg://alice:s3cret@127.0.0.1:1/poreml", "td", lock_timeout=1)
    with pytest.raises(CampaignError) as info:
        store.exists()
    message = str(info.value)
    assert "s3cret" not in message
    assert "postgresql+psycopg://alice:***@127.0.0.1:1/poreml" in message
    assert "server is running" in message and "POREML_CAMPAIGN_STORAGE" in message
    assert safe_url("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"


def test_missing_sqlite_folder_is_reported(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'absent' / 'c.db'}", "td")
    with pytest.raises(CampaignError, match="folder of the database file exists"):
        store.exists()


def test_a_held_lock_times_out_with_a_clear_error(tmp_path: Path) -> None:
    url = _url(tmp_path)
    holder = SqlStore(url, "td")
    Campaign.create(holder, CONFIG)
    waiter = SqlStore(url, "td", lock_timeout=0.2)
    with holder.transaction():
        assert waiter.load_state().revision == 0  # readers are not blocked
        with pytest.raises(CampaignError, match="lock stayed taken"), waiter.transaction():
            pass


def test_schema_upgrade_on_empty_and_on_current_database(tmp_path: Path) -> None:
    url = _url(tmp_path)
    engine = sa.create_engine(url)
    assert schema_revision(engine) is None
    upgrade_schema(engine)
    assert schema_revision(engine) == "0001"
    upgrade_schema(engine)  # already current: nothing to do, nothing fails
    tables = set(sa.inspect(engine).get_table_names())
    assert {"campaigns", VERSION_TABLE} <= tables
    engine.dispose()


def test_a_database_at_revision_0001_with_a_campaign_opens(tmp_path: Path) -> None:
    from alembic import command

    from poreml.optimize.sql_store import _alembic_config

    url = _url(tmp_path)
    engine = sa.create_engine(url)
    config = _alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    engine.dispose()
    Campaign.create(SqlStore(url, "td"), CONFIG).ask(2)
    assert Campaign.load(SqlStore(url, "td")).n_pending == 2


def test_a_database_of_a_newer_poreml_is_refused(tmp_path: Path) -> None:
    url = _url(tmp_path)
    SqlStore(url, "td").exists()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(CampaignError, match="newer than this poreml"):
        SqlStore(url, "td").exists()


def test_reports_go_to_the_given_folder(tmp_path: Path) -> None:
    store = SqlStore(_url(tmp_path), "td", reports=tmp_path / "plots")
    assert store.reports_dir == tmp_path / "plots"
    assert store.rounds_dir == tmp_path / "plots" / "rounds"
    campaign = Campaign.create(store, CONFIG)
    campaign.ask(2)
    assert list((tmp_path / "plots" / "rounds").glob("*.csv"))


@pytest.mark.slow
def test_four_processes_observing_25_rows_each_store_all_100(pool: Pool, tmp_path: Path) -> None:
    check_observed(run_concurrently_observing(pool, _url(tmp_path), "shared"))


@pytest.mark.slow
def test_four_concurrent_asks_hand_out_8_distinct_candidates(pool: Pool, tmp_path: Path) -> None:
    url = _url(tmp_path)
    rows = run_concurrently_asking(pool, url, "shared")
    check_asked(rows, Campaign.load(SqlStore(url, "shared")))
