"""Campaigns in PostgreSQL: 4 processes observing and suggesting at once lose and repeat nothing.

Runs when ``POREML_CAMPAIGN_STORAGE`` is a ``postgresql`` URL (the database must exist; the
campaign schema is created on first use); skipped otherwise. Each test uses campaign names of
its own, so a shared database is not disturbed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Iterator
from multiprocessing.pool import Pool
from pathlib import Path

import pytest
import sqlalchemy as sa

from poreml.optimize.campaign import Campaign
from poreml.optimize.sql_store import SqlStore, campaigns_table

pytestmark = pytest.mark.integration

_HELPERS = Path(__file__).resolve().parents[1] / "optimize" / "test_sql_store.py"


def _helpers() -> object:
    """The concurrency workers of the SQLite tests, imported under their module name so that
    spawned processes can import them too."""
    name = "tests.optimize.test_sql_store"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _HELPERS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def postgres_url() -> str:
    """``POREML_CAMPAIGN_STORAGE`` when it points to PostgreSQL, else skip."""
    url = os.environ.get("POREML_CAMPAIGN_STORAGE", "")
    if not url.startswith("postgresql"):
        pytest.skip("POREML_CAMPAIGN_STORAGE is not a postgresql:// URL")
    return url


@pytest.fixture
def name(postgres_url: str) -> Iterator[str]:
    """A fresh campaign name, deleted after the test."""
    unique = f"test-{uuid.uuid4().hex[:12]}"
    yield unique
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.delete(campaigns_table).where(campaigns_table.c.name == unique))
    engine.dispose()


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    """4 spawned worker processes shared by the tests of this module."""
    with _helpers().spawn_pool() as workers:  # type: ignore[attr-defined]
        yield workers


def test_four_processes_observing_25_rows_each_store_all_100(
    pool: Pool, postgres_url: str, name: str
) -> None:
    helpers = _helpers()
    campaign = helpers.run_concurrently_observing(pool, postgres_url, name)  # type: ignore[attr-defined]
    helpers.check_observed(campaign)  # type: ignore[attr-defined]


def test_four_concurrent_suggests_hand_out_8_distinct_candidates(
    pool: Pool, postgres_url: str, name: str
) -> None:
    helpers = _helpers()
    rows = helpers.run_concurrently_asking(pool, postgres_url, name)  # type: ignore[attr-defined]
    helpers.check_asked(rows, Campaign.load(SqlStore(postgres_url, name)))  # type: ignore[attr-defined]


def test_round_trip_and_refusal_of_an_existing_name(postgres_url: str, name: str) -> None:
    config = Path(__file__).resolve().parents[2] / "experiments" / "campaign_td_vs_buffering.toml"
    campaign = Campaign.create(SqlStore(postgres_url, name), config)
    campaign.ask(2)
    assert Campaign.load(SqlStore(postgres_url, name)).to_dict() == campaign.to_dict()
    from poreml.exceptions import CampaignError

    with pytest.raises(CampaignError, match="already exists"):
        Campaign.create(SqlStore(postgres_url, name), config)
