"""CampaignRuns: a campaign logged as a parent run with a child run per round and upload."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from poreml.design.config import CampaignConfig
from poreml.optimize.acquisition import AcquisitionSettings
from poreml.optimize.campaign import Campaign
from poreml.optimize.store import MemoryStore
from poreml.tracking.campaign_runs import CampaignRuns, config_params

CONFIG = Path("experiments/campaign_td_vs_buffering.toml")


class Recorder:
    """A tracker that remembers what each run received."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []

    @contextmanager
    def start_run(
        self, name: str, nested: bool = False, *, tags: Mapping[str, str] | None = None
    ) -> Iterator[Any]:
        run = {"name": name, "tags": dict(tags or {}), "params": {}, "metrics": {}, "files": []}
        self.runs.append(run)
        yield SimpleNamespace(info=SimpleNamespace(run_id=f"id-{len(self.runs)}"))

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.runs[-1]["params"].update(params)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.runs[-1]["metrics"].update(metrics)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.runs[-1]["tags"].update(tags)

    def log_figure(self, figure: Any, filename: str) -> None:
        self.runs[-1]["files"].append(filename)

    def log_table(self, table: pd.DataFrame, filename: str) -> None:
        self.runs[-1]["files"].append(filename)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        assert Path(path).is_file()
        self.runs[-1]["files"].append(Path(path).name)

    def log_dataset(self, frame: pd.DataFrame, name: str, context: str = "training") -> str:
        return ""


class Broken(Recorder):
    @contextmanager
    def start_run(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        raise RuntimeError("tracking server down")
        yield  # pragma: no cover


def _results(batch: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "candidate_id": batch["candidate_id"],
            "tap_density_g_cm3": 1.0,
            "expansion_pct": 10.0,
            "ice_pct": 88.0,
            "retention_pct": 90.0,
            "specific_capacity_mah_g": 1200.0,
            "feasible": True,
        }
    )


def test_parent_run_id_is_stored_and_children_point_to_it(tmp_path: Path) -> None:
    tracker = Recorder()
    settings = AcquisitionSettings.fast()
    c = Campaign.create(
        tmp_path / "c", CONFIG, settings=settings, listeners=[CampaignRuns(tracker)]
    )
    assert c.to_dict()["tracking"] == {"parent_run_id": "id-1"}
    parent = tracker.runs[0]
    assert parent["tags"]["poreml.kind"] == "campaign"
    assert parent["params"]["config.name"] == c.config.name
    c.tell(_results(c.ask(2)))
    round_run, observe_run = tracker.runs[1:]
    assert round_run["name"] == "round-001" and observe_run["name"] == "observe-001"
    for run, kind in ((round_run, "campaign-round"), (observe_run, "campaign-observe")):
        assert run["tags"]["poreml.kind"] == kind
        assert run["tags"]["mlflow.parentRunId"] == "id-1"
        assert {"pareto.png", "hypervolume.png", "state.json"} <= set(run["files"])
    assert "proposals.csv" in round_run["files"] and "results.csv" in observe_run["files"]
    assert round_run["params"]["strategy"] == "sobol"
    assert observe_run["params"] == {"new": 2, "updated": 0, "outside": 0}
    # a campaign opened later logs under the same parent
    again = Campaign.load(tmp_path / "c", listeners=[CampaignRuns(tracker)])
    again.ask(1)
    assert tracker.runs[-1]["tags"]["mlflow.parentRunId"] == "id-1"


def test_tracking_failures_only_warn(tmp_path: Path) -> None:
    listener = CampaignRuns(Broken())
    with pytest.warns(RuntimeWarning, match="campaign tracking failed"):
        c = Campaign.create(tmp_path / "c", CONFIG, listeners=[listener])
    assert c.to_dict()["tracking"] == {"parent_run_id": None}
    with pytest.warns(RuntimeWarning, match="round tracking failed"):
        batch = c.ask(2)
    with pytest.warns(RuntimeWarning, match="observe tracking failed"):
        summary = c.tell(_results(batch))
    assert summary.new == tuple(batch["candidate_id"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Campaign.load(tmp_path / "c").n_observations == 2


def test_config_params_are_flat_and_readable() -> None:
    params = config_params(CampaignConfig.from_toml(CONFIG))
    assert all(not isinstance(v, dict | list) for v in params.values())
    assert "(ref " in params["objectives"]


def test_parent_run_name_tells_campaigns_apart() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from poreml.tracking.campaign_runs import parent_run_name

    when = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    assert (
        parent_run_name("td-vs-buffering", "demo-20261201", when)
        == "td-vs-buffering · demo-20261201 · 2026-12-01"
    )
    # the date is the UTC date, whatever the local zone of ``when``
    tokyo = when.astimezone(timezone(timedelta(hours=9)))
    assert parent_run_name("td", "abcd1234", tokyo) == "td · abcd1234 · 2026-12-01"
    assert parent_run_name("td", None, when) == "td · 2026-12-01"


def test_parent_run_is_named_by_config_folder_and_date(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    tracker = Recorder()
    first = Campaign.create(tmp_path / "lab-a", CONFIG, listeners=[CampaignRuns(tracker)])
    Campaign.create(tmp_path / "lab-b", CONFIG, listeners=[CampaignRuns(tracker)])
    today = datetime.now(UTC).date().isoformat()
    names = [run["name"] for run in tracker.runs]
    assert names == [
        f"{first.config.name} · lab-a · {today}",
        f"{first.config.name} · lab-b · {today}",
    ]
    assert tracker.runs[0]["tags"]["poreml.campaign"] == first.config.name


def test_database_campaign_is_named_by_its_name_in_the_database(tmp_path: Path) -> None:
    from poreml.optimize.sql_store import SqlStore

    tracker = Recorder()
    url = f"sqlite:///{tmp_path / 'campaigns.db'}"
    campaign = Campaign.create(SqlStore(url, "td-team"), CONFIG, listeners=[CampaignRuns(tracker)])
    (run,) = tracker.runs
    assert run["name"].split(" · ")[:2] == [campaign.config.name, "td-team"]


def test_campaign_without_folder_is_named_by_short_run_id(store: Path) -> None:
    from poreml.tracking.mlflow_tracker import MlflowTracker

    tracker = MlflowTracker("campaign-no-folder")
    campaign = Campaign.create(MemoryStore(), CONFIG, listeners=[CampaignRuns(tracker)])
    run_id = campaign.tracking["parent_run_id"]
    name = tracker.client.get_run(run_id).info.run_name
    parts = name.split(" · ")
    assert parts[:2] == [campaign.config.name, run_id[:8]] and len(parts) == 3


def test_parent_run_has_one_hypervolume_point_per_round(store: Path, tmp_path: Path) -> None:
    from poreml.tracking.mlflow_tracker import MlflowTracker

    tracker = MlflowTracker("campaign-parent-series")
    campaign = Campaign.create(
        tmp_path / "c",
        CONFIG,
        settings=AcquisitionSettings.fast(),
        listeners=[CampaignRuns(tracker)],
    )
    values = [(1.0, 10.0), (1.4, 8.0)]  # (tap density, expansion) of rounds 1 and 2
    for tap, expansion in values:
        results = _results(campaign.ask(2))
        results["tap_density_g_cm3"] = tap
        results["expansion_pct"] = expansion
        campaign.tell(results)
    parent = campaign.tracking["parent_run_id"]
    client = tracker.client
    history = client.get_metric_history(parent, "hypervolume")
    assert [m.step for m in history] == [1, 2]
    assert [m.value for m in history] == [t["hypervolume"] for t in campaign.to_dict()["tells"]]
    assert history[1].value > history[0].value > 0
    counts = client.get_metric_history(parent, "n_observations")
    assert [(m.step, m.value) for m in counts] == [(1, 2.0), (2, 4.0)]
    # the prior check by route is a series too: designs tried per route, round by round
    last_tried = [
        client.get_metric_history(parent, f"prior.{r['route']}.tried")[-1].value
        for r in campaign.prior_check()
    ]
    assert sum(last_tried) == 4.0
    best = client.get_metric_history(parent, "best.tap_density_g_cm3")
    assert [(m.step, m.value) for m in best] == [(1, 1.0), (2, 1.4)]
    # the child runs keep their own metrics
    children = client.search_runs([tracker.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    assert sorted(r.info.run_name for r in children) == [
        "observe-001",
        "observe-002",
        "round-001",
        "round-002",
    ]
    assert all("hypervolume" in r.data.metrics for r in children)


def test_a_rounds_physics_calibration_becomes_metrics() -> None:
    from poreml.tracking.campaign_runs import _physics_calibration_metrics

    summary = {
        "rows": 24,
        "accepted": True,
        "statistic": 120.5,
        "threshold": 66.6,
        "misfit_before": 0.52,
        "misfit_after": 0.21,
        "routes": {"bottom_up": {}, "top_down": {"eta_max": 1.25, "t_ox_nm": 0.2}},
        "globals": {"lam_star": 0.3},
    }
    assert _physics_calibration_metrics(summary) == {
        "physics.accepted": 1.0,
        "physics.misfit_before": 0.52,
        "physics.misfit_after": 0.21,
        "physics.top_down.eta_max": 1.25,
        "physics.top_down.t_ox_nm": 0.2,
    }
    assert _physics_calibration_metrics(None) == {}
