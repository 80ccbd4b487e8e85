"""`poreml campaign`: init / suggest / observe / status / export / run, as a lab would use them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from poreml.cli.campaign import app
from poreml.data.schema import DESIGN_COLUMNS, MEASURED_COLUMNS, ROUTES
from poreml.exceptions import CampaignError, ConfigError, ConflictError, DataValidationError
from poreml.virtual_lab import VirtualLab

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "experiments" / "campaign_td_vs_buffering.toml"


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def _init(tmp_path: Path, initial_points: int | None = None) -> Path:
    config = CONFIG
    if initial_points is not None:
        text = CONFIG.read_text().replace(
            "initial_points = 8", f"initial_points = {initial_points}"
        )
        config = tmp_path / "campaign.toml"
        config.write_text(text)
    directory = tmp_path / "camp"
    _ok(["init", str(directory), "--config", str(config), "--fast", "--no-tracking"])
    return directory


def _lab(proposals: Path, out: Path, seed: int) -> None:
    """The outside oracle: reads the proposal CSV, writes a results CSV."""
    designs = pd.read_csv(proposals)
    VirtualLab().measure(designs[["candidate_id", *DESIGN_COLUMNS]], seed=seed).to_csv(
        out, index=False
    )


def test_scripted_lab_loop_with_suggest_observe_status_export(tmp_path: Path) -> None:
    directory = _init(tmp_path)
    for k in range(3):
        proposals = tmp_path / f"round{k}.csv"
        results = tmp_path / f"results{k}.csv"
        out = _ok(
            ["suggest", str(directory), "--batch", "4", "--out", str(proposals), "--no-tracking"]
        )
        assert "recorded as pending" in out
        frame = pd.read_csv(proposals)
        assert list(frame.columns[:10]) == ["candidate_id", *DESIGN_COLUMNS]
        assert (frame["porosity"] * (1 - frame["closed_pore_fraction"]) <= 0.6).all()
        if k == 2:  # model-based round
            assert "predicted_tap_density_g_cm3_mean" in frame.columns
        _lab(proposals, results, seed=k)
        _ok(["observe", str(directory), str(results), "--no-tracking"])
        # re-sending the same file is a no-op
        assert "nothing new" in _ok(["observe", str(directory), str(results), "--no-tracking"])
    status = json.loads(_ok(["status", str(directory), "--json"]))
    assert status["n_observations"] == 12
    assert status["n_pending"] == 0
    assert isinstance(status["hypervolume"], float)
    assert isinstance(status["pareto_front"], list)
    for row in status["pareto_front"]:
        assert row["feasible"] is not False
        assert {"candidate_id", "tap_density_g_cm3", "expansion_pct"} <= set(row)
    assert [r["route"] for r in status["routes"]] == list(ROUTES)
    assert sum(r["tried"] for r in status["routes"]) == 12
    # the model's predictions of round 2 (4 designs) were checked against the lab's results
    check = {r["outcome"]: r for r in status["model_check"]}
    assert check["tap_density_g_cm3"]["n"] == int(
        pd.read_csv(results)["feasible"].astype(str).str.lower().eq("true").sum()
    )
    assert all(r["widening"] == 1.0 for r in check.values())  # fewer than 8 records: none
    calibration = status["physics_calibration"]  # the model-based round's physics check
    assert calibration["rows"] == 8 and isinstance(calibration["accepted"], bool)
    human = _ok(["status", str(directory)])
    assert "Pareto front" in human and "hypervolume" in human
    assert "Physics prior by route" in human
    # on a wide terminal the route table's calibration column is whole
    wide = runner.invoke(app, ["status", str(directory)], env={"COLUMNS": "250"})
    assert wide.exit_code == 0 and "constants calibrated (x published)" in wide.output
    assert "Model check" in human
    _ok(["export", str(directory), "--out", str(tmp_path / "export.csv")])
    exported = pd.read_csv(tmp_path / "export.csv")
    assert len(exported) == 12
    assert list(exported.columns) == [
        "candidate_id",
        *DESIGN_COLUMNS,
        *MEASURED_COLUMNS,
        "feasible",
    ]


def test_suggest_prints_csv_without_out(tmp_path: Path) -> None:
    directory = _init(tmp_path)
    out = _ok(["suggest", str(directory), "--batch", "2", "--no-tracking"])
    lines = out.strip().splitlines()
    assert lines[0].startswith("candidate_id,route,pore_size_nm")
    assert len(lines) == 3


def test_init_refuses_an_existing_campaign(tmp_path: Path) -> None:
    directory = _init(tmp_path)
    result = runner.invoke(app, ["init", str(directory), "--config", str(CONFIG)])
    assert isinstance(result.exception, CampaignError)
    assert "already exists" in str(result.exception)


def test_bad_config_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG.read_text().replace("batch_size = 4", "batch_size = 0"))
    result = runner.invoke(app, ["init", str(tmp_path / "c"), "--config", str(bad)])
    assert isinstance(result.exception, ConfigError)
    assert "campaign.batch_size" in str(result.exception)


def test_observe_reports_bad_cells_and_conflicts(tmp_path: Path) -> None:
    directory = _init(tmp_path)
    proposals = tmp_path / "p.csv"
    _ok(["suggest", str(directory), "--batch", "2", "--out", str(proposals), "--no-tracking"])
    ids = pd.read_csv(proposals)["candidate_id"].tolist()
    bad = tmp_path / "bad.csv"
    bad.write_text(f"candidate_id,ice_pct\n{ids[0]},NaN\n{ids[1]},180\n")
    result = runner.invoke(app, ["observe", str(directory), str(bad), "--no-tracking"])
    assert isinstance(result.exception, DataValidationError)
    assert "row 1" in str(result.exception) and "row 2" in str(result.exception)
    good = tmp_path / "good.csv"
    good.write_text(f"candidate_id,ice_pct\n{ids[0]},85\n")
    _ok(["observe", str(directory), str(good), "--no-tracking"])
    other = tmp_path / "other.csv"
    other.write_text(f"candidate_id,ice_pct\n{ids[0]},86\n")
    result = runner.invoke(app, ["observe", str(directory), str(other), "--no-tracking"])
    assert isinstance(result.exception, ConflictError)
    assert ids[0] in str(result.exception) and "85.0" in str(result.exception)


def test_unknown_oracle_is_rejected(tmp_path: Path) -> None:
    directory = _init(tmp_path)
    result = runner.invoke(app, ["run", str(directory), "--oracle", "robot", "--rounds", "1"])
    assert isinstance(result.exception, ConfigError)


def test_closed_loop_run_logs_rounds_to_mlflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "mlruns.db"
    monkeypatch.setenv("POREML_TRACKING_URI", f"sqlite:///{store}")
    monkeypatch.setenv("POREML_ARTIFACT_LOCATION", (tmp_path / "artifacts").as_uri())
    monkeypatch.setenv("POREML_HOME", str(tmp_path / "home"))
    directory = tmp_path / "camp"
    _ok(["init", str(directory), "--config", str(CONFIG), "--fast"])
    out = _ok(["run", str(directory), "--oracle", "virtual-lab", "--rounds", "3", "--seed", "3"])
    assert "Pareto front" in out and "poreml ui" in out and str(store) in out
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    exp = client.get_experiment_by_name("poreml-campaigns")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("poreml.kind") == "campaign"]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    kinds = sorted(r.data.tags["poreml.kind"] for r in children)
    assert kinds == ["campaign-observe"] * 3 + ["campaign-round"] * 3
    rounds = sorted(
        (r for r in children if r.data.tags["poreml.kind"] == "campaign-round"),
        key=lambda r: r.info.run_name,
    )
    artifacts = {a.path for a in client.list_artifacts(rounds[0].info.run_id)}
    assert {"proposals.csv", "pareto.png", "hypervolume.png", "state.json"} <= artifacts
    model_round = rounds[-1]  # 8 observations: the first model-based round
    assert {"predicted_front.csv", "proposals.csv"} <= {
        a.path for a in client.list_artifacts(model_round.info.run_id)
    }
    assert "model.tap_density_g_cm3.rmse_in_sample" in model_round.data.metrics
    assert (directory / "reports" / "pareto.png").is_file()


def test_errors_exit_with_code_2_and_a_message_through_the_console_script(tmp_path: Path) -> None:
    code = (
        "import sys, typer\n"
        "from poreml.cli import main\n"
        "from poreml.cli import app as root\n"
        "from poreml.cli.campaign import app\n"
        "if not any(g.name == 'campaign' for g in root.registered_groups):\n"
        "    root.add_typer(app, name='campaign')\n"
        "main(sys.argv[1:])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "campaign", "status", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.returncode == 2
    assert "no campaign here" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- campaigns in a database (--storage URL) -------------------------------------------------------
@pytest.fixture(autouse=True)
def _no_campaign_storage_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Folder tests stay folder tests where the environment names a campaign database."""
    monkeypatch.delenv("POREML_CAMPAIGN_STORAGE", raising=False)


def _loop(target: str, tmp_path: Path, extra: list[str]) -> list[str]:
    """init + two suggest / observe rounds; returns every printed message."""
    printed = [_ok(["init", target, "--config", str(CONFIG), "--fast", "--no-tracking", *extra])]
    for k in range(2):
        proposals = tmp_path / f"round{k}.csv"
        results = tmp_path / f"results{k}.csv"
        printed.append(
            _ok(
                [
                    "suggest",
                    target,
                    "--batch",
                    "4",
                    "--out",
                    str(proposals),
                    "--no-tracking",
                    *extra,
                ]
            )
        )
        _lab(proposals, results, seed=k)
        printed.append(_ok(["observe", target, str(results), "--no-tracking", *extra]))
    return printed


def test_a_campaign_in_a_database_behaves_and_prints_as_a_folder_campaign(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'campaigns.db'}"
    folder = str(tmp_path / "camp")
    on_disk = _loop(folder, tmp_path, [])
    in_db = _loop("camp", tmp_path, ["--storage", url])
    assert f"Next: poreml campaign suggest camp --batch 4 --storage {url}" in in_db[0]
    assert [m.replace(f" --storage {url}", "") for m in in_db] == [
        m.replace(folder, "camp") for m in on_disk
    ]
    folder_status = json.loads(_ok(["status", folder, "--json"]))
    db_status = json.loads(_ok(["status", "camp", "--json", "--storage", url]))
    assert folder_status.pop("directory") == folder
    assert db_status.pop("directory") is None
    assert db_status == folder_status
    assert db_status["n_observations"] == 8
    _ok(["export", folder, "--out", str(tmp_path / "folder.csv")])
    _ok(["export", "camp", "--out", str(tmp_path / "db.csv"), "--storage", url])
    assert (tmp_path / "folder.csv").read_text() == (tmp_path / "db.csv").read_text()
    human = _ok(["status", "camp", "--storage", url])
    assert "Pareto front" in human and "(camp)" in human
    assert list(tmp_path.glob("*.db")) == [tmp_path / "campaigns.db"]


def test_storage_defaults_to_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'campaigns.db'}"
    monkeypatch.setenv("POREML_CAMPAIGN_STORAGE", url)
    _ok(["init", "td", "--config", str(CONFIG), "--fast", "--no-tracking"])
    out = _ok(["suggest", "td", "--batch", "2", "--no-tracking"])
    assert len(out.strip().splitlines()) == 3
    assert not (tmp_path / "td").exists() and not Path("td").exists()
    from poreml.optimize.sql_store import SqlStore

    assert SqlStore(url, "td").load_state().pending[0].candidate_id == "C0001"


def test_storage_refuses_an_existing_name_and_lists_the_names_for_an_unknown_one(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'campaigns.db'}"
    _ok(["init", "td", "--config", str(CONFIG), "--fast", "--no-tracking", "--storage", url])
    again = runner.invoke(app, ["init", "td", "--config", str(CONFIG), "--storage", url])
    assert isinstance(again.exception, CampaignError)
    assert "already exists" in str(again.exception)
    unknown = runner.invoke(app, ["status", "tb", "--storage", url])
    assert isinstance(unknown.exception, CampaignError)
    assert "campaigns in this database: td" in str(unknown.exception)
    assert "poreml campaign init tb" in str(unknown.exception)


def test_storage_reports_go_where_reports_says_and_need_storage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'campaigns.db'}"
    plots = tmp_path / "plots"
    _ok(["init", "td", "--config", str(CONFIG), "--fast", "--no-tracking", "--storage", url])
    out = _ok(
        [
            "run",
            "td",
            "--oracle",
            "virtual-lab",
            "--rounds",
            "1",
            "--no-tracking",
            "--storage",
            url,
            "--reports",
            str(plots),
        ]
    )
    assert f"Plots: {plots}" in out
    assert (plots / "pareto.png").is_file() and list((plots / "rounds").glob("*.csv"))
    folder = runner.invoke(app, ["status", str(tmp_path / "c"), "--json"])
    assert isinstance(folder.exception, CampaignError)
    no_storage = runner.invoke(
        app, ["suggest", str(tmp_path / "c"), "--reports", str(plots), "--no-tracking"]
    )
    assert isinstance(no_storage.exception, ConfigError)
    assert "--storage" in str(no_storage.exception)


def test_unreachable_storage_names_the_url_without_its_password(tmp_path: Path) -> None:
    url = "postgresql+psycopg://alice:s3cret@127.0.0.1:1/poreml"
    result = runner.invoke(app, ["status", "td", "--storage", url])
    assert isinstance(result.exception, CampaignError)
    message = str(result.exception)
    assert "alice:***@127.0.0.1:1/poreml" in message and "s3cret" not in message


def test_cancel_withdraws_pending_candidates_and_keeps_the_record(tmp_path: Path) -> None:
    directory = _init(tmp_path)
    _ok(
        [
            "suggest",
            str(directory),
            "--batch",
            "3",
            "--out",
            str(tmp_path / "s.csv"),
            "--no-tracking",
        ]
    )
    out = _ok(["cancel", str(directory), "C0002", "--reason", "furnace down"])
    assert "1 cancelled (C0002)" in out and "2 pending" in out
    status = json.loads(_ok(["status", str(directory), "--json"]))
    assert status["pending_ids"] == ["C0001", "C0003"]
    assert status["cancelled_ids"] == ["C0002"]
    again = _ok(["cancel", str(directory), "C0002", "C0003"])
    assert "1 cancelled (C0003)" in again and "1 already cancelled" in again
    assert "1 cancelled (C0001)" in _ok(["cancel", str(directory), "--all-pending"])
    state = json.loads((directory / "state.json").read_text())
    assert [r["reason"] for r in state["cancelled"]] == ["furnace down", None, None]
    nxt = _ok(["suggest", str(directory), "--batch", "1", "--no-tracking"])
    assert "C0004" in nxt  # cancelled ids are never given out again


def test_cancel_refuses_measured_or_unknown_ids_and_changes_nothing(tmp_path: Path) -> None:
    directory = _init(tmp_path)
    _ok(
        [
            "suggest",
            str(directory),
            "--batch",
            "2",
            "--out",
            str(tmp_path / "s.csv"),
            "--no-tracking",
        ]
    )
    _lab(tmp_path / "s.csv", tmp_path / "r.csv", seed=0)
    results = pd.read_csv(tmp_path / "r.csv").head(1)
    results.to_csv(tmp_path / "r1.csv", index=False)
    _ok(["observe", str(directory), str(tmp_path / "r1.csv"), "--no-tracking"])
    result = runner.invoke(app, ["cancel", str(directory), "C0001", "C0002", "C9999"])
    assert isinstance(result.exception, CampaignError)
    msg = str(result.exception)
    assert "C0001 already have results" in msg and "C9999 were never proposed" in msg
    assert json.loads(_ok(["status", str(directory), "--json"]))["pending_ids"] == ["C0002"]


def test_suggest_to_an_unwritable_file_records_nothing(tmp_path: Path) -> None:
    directory = _init(tmp_path)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    result = runner.invoke(
        app, ["suggest", str(directory), "--out", str(blocker / "s.csv"), "--no-tracking"]
    )
    assert isinstance(result.exception, ConfigError)
    assert "cannot write there" in str(result.exception)
    assert json.loads(_ok(["status", str(directory), "--json"]))["n_pending"] == 0


def test_route_table_names_the_calibrated_constants_or_says_they_were_kept() -> None:
    from rich.console import Console

    from poreml.cli.campaign import _routes_table

    routes = [
        {"route": r, "tried": 4, "made": 3, "failed": 1, "feasibility_agreement": 1.0}
        | {"misfit": 0.2, "verdict": "good"}
        for r in ROUTES
    ]
    base = {"rows": 24, "statistic": 120.0, "threshold": 66.6, "globals": {"lam_star": 0.3}}
    routes_moved = {r: {} for r in ROUTES} | {"top_down": {"eta_max": 1.25}}

    def render(summary) -> str:
        console = Console(width=250, record=True)
        console.print(_routes_table(routes, summary))
        return " ".join(console.export_text().split())  # the title wraps at the table's width

    accepted = render(
        base
        | {"accepted": True, "misfit_before": 0.52, "misfit_after": 0.21}
        | {"routes": routes_moved}
    )
    assert "calibrated the physics to this lab: misfit 0.52 -> 0.21" in accepted
    assert "eta_max x1.25" in accepted and "lam_star 0.3" in accepted
    assert accepted.count("as published") == 2
    kept = render(
        base
        | {"accepted": False, "statistic": 29.0, "misfit_before": 0.1, "misfit_after": 0.1}
        | {"routes": {r: {} for r in ROUTES}}
    )
    assert "published constants wrong (test statistic 29 <= 67): kept" in kept
    assert kept.count("as published") == 3
    assert "constants calibrated" not in render(None)
