"""kill -9 during ``poreml campaign observe`` / ``suggest``, then the user's retry: nothing lost.

A CI-sized slice of ``experiments/reliability.py``: real subprocesses of the ``poreml`` console
script are SIGKILLed after a seeded random delay spread over the command's measured duration,
then re-run to completion. The campaign folder needs no services and always runs; PostgreSQL
runs when ``POREML_CAMPAIGN_STORAGE`` is a ``postgresql`` URL (skipped otherwise).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from poreml.optimize.acquisition import AcquisitionSettings
from poreml.optimize.campaign import Campaign
from poreml.optimize.store import CampaignStore, FolderStore
from poreml.virtual_lab.lab import measure

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "experiments" / "campaign_td_vs_buffering.toml"
OBSERVE_KILLS = 6
SUGGEST_KILLS = 4
ROWS = 2


def _poreml() -> str:
    local = Path(sys.executable).with_name("poreml")
    found = str(local) if local.is_file() else shutil.which("poreml")
    if found is None:
        pytest.fail("the poreml console script is not installed (pip install -e .)")
    return found


@pytest.fixture(params=["folder", "postgresql"])
def campaign_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, list[str]]]:
    """(campaign target, extra CLI arguments) of a fresh campaign in the store under test."""
    if request.param == "folder":
        yield str(tmp_path / "campaign"), []
        return
    url = os.environ.get("POREML_CAMPAIGN_STORAGE", "")
    if not url.startswith("postgresql"):
        pytest.skip("POREML_CAMPAIGN_STORAGE is not a postgresql:// URL")
    import sqlalchemy as sa

    from poreml.optimize.sql_store import campaigns_table

    name = f"test-kill-{uuid.uuid4().hex[:12]}"
    yield name, ["--storage", url]
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.delete(campaigns_table).where(campaigns_table.c.name == name))
    engine.dispose()


def _store(target: str, extra: list[str]) -> CampaignStore:
    if extra:
        from poreml.optimize.sql_store import SqlStore

        return SqlStore(extra[1], target)
    return FolderStore(target)


def _config(tmp_path: Path) -> Path:
    """The shipped config with a long space-filling phase, so ``suggest`` is cheap."""
    text = CONFIG.read_text(encoding="utf-8").replace(
        "initial_points = 8 ", "initial_points = 100000 "
    )
    assert "initial_points = 100000" in text
    path = tmp_path / "campaign.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_killed_commands_and_retries_lose_and_duplicate_nothing(
    campaign_store: tuple[str, list[str]], tmp_path: Path
) -> None:
    target, extra = campaign_store
    env = {k: v for k, v in os.environ.items() if not k.startswith("POREML_")}
    env.update(POREML_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))

    def argv(command: str, *args: str) -> list[str]:
        return [_poreml(), "campaign", command, target, *args, "--no-tracking", *extra]

    def run(command: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv(command, *args), env=env, capture_output=True, text=True, timeout=300
        )

    def killed_run(delay: float, command: str, *args: str) -> None:
        proc = subprocess.Popen(
            argv(command, *args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=60)

    store = _store(target, extra)
    campaign = Campaign.create(store, _config(tmp_path), settings=AcquisitionSettings.fast())
    pool = campaign.ask((OBSERVE_KILLS + 1) * ROWS)
    results = measure(pool, seed=7)
    files = []
    for k in range(OBSERVE_KILLS + 1):
        path = tmp_path / f"results-{k}.csv"
        results.iloc[k * ROWS : (k + 1) * ROWS].to_csv(path, index=False)
        files.append(path)
    rng = random.Random(0)

    started = time.perf_counter()
    first = run("observe", str(files[0]))
    assert first.returncode == 0, first.stderr
    duration = time.perf_counter() - started
    for path in files[1:]:
        killed_run(rng.uniform(0.0, duration), "observe", str(path))
        Campaign.load(_store(target, extra))  # the state always loads
        retry = run("observe", str(path))
        assert retry.returncode == 0, retry.stderr

    handed_out = list(pool["candidate_id"])
    for k in range(SUGGEST_KILLS):
        out = tmp_path / f"suggest-{k}.csv"
        killed_run(rng.uniform(0.0, duration), "suggest", "--batch", "2", "--out", str(out))
        if out.is_file():
            handed_out += list(pd.read_csv(out)["candidate_id"])
        retry = run("suggest", "--batch", "2", "--out", str(out))
        assert retry.returncode == 0, retry.stderr
        handed_out += list(pd.read_csv(out)["candidate_id"])

    exported = Campaign.load(_store(target, extra)).export()
    ids = exported["candidate_id"]
    assert sorted(ids) == sorted(results["candidate_id"])  # 0 lost, 0 unexpected
    assert not ids.duplicated().any()  # 0 duplicated
    merged = results.merge(exported, on="candidate_id", suffixes=("_sent", "_stored"))
    for col in ("tap_density_g_cm3", "expansion_pct", "ice_pct"):
        pd.testing.assert_series_equal(
            merged[f"{col}_sent"], merged[f"{col}_stored"], check_names=False, rtol=1e-9
        )
    assert len(handed_out) == len(set(handed_out))  # no candidate id handed out twice
    if not extra:
        assert not list(Path(target).rglob(".*.tmp"))  # no half-written file left behind
