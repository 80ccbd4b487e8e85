"""A campaign logs its parent run and nested round runs to the MLflow tracking server."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "experiments" / "campaign_td_vs_buffering.toml"


def test_campaign_run_logs_parent_and_round_runs(services, poreml, workdir: Path) -> None:
    """A team campaign: kept in the services' PostgreSQL, tracked on their MLflow server."""
    name = f"it-campaign-{uuid.uuid4().hex[:8]}"
    storage = ["--storage", services.campaign_storage]
    poreml.run(["campaign", "init", name, "--config", str(CONFIG), "--fast", *storage], workdir)
    poreml.run(
        ["campaign", "run", name, "--oracle", "virtual-lab", "--rounds", "1", *storage], workdir
    )

    runs = services.search_runs("poreml-campaigns")
    parents = [
        r
        for r in runs
        if f" · {name} · " in r["info"]["run_name"] and "mlflow.parentRunId" not in r["tags"]
    ]
    assert len(parents) == 1, [r["info"]["run_name"] for r in runs]
    parent_id = parents[0]["info"]["run_id"]
    children = [r for r in runs if r["tags"].get("mlflow.parentRunId") == parent_id]
    names = sorted(r["info"]["run_name"] for r in children)
    assert any(name.startswith("round-") for name in names), names
    assert all(r["info"]["status"] == "FINISHED" for r in [*parents, *children])


def test_campaign_database_is_provided(services) -> None:
    if not services.campaign_storage:
        pytest.fail("POREML_CAMPAIGN_STORAGE is unset; scripts/services.sh writes it")
    engine = sqlalchemy.create_engine(
        services.campaign_storage, connect_args={"connect_timeout": 5}
    )
    try:
        with engine.connect() as conn:
            name = conn.execute(sqlalchemy.text("SELECT current_database()")).scalar_one()
    finally:
        engine.dispose()
    assert name == "poreml_campaigns"
