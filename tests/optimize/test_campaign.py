"""The campaign: proposals that respect every constraint, tell semantics, JSON round trip, loop."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poreml.data.schema import DESIGN_COLUMNS
from poreml.design.config import CampaignConfig
from poreml.exceptions import ConfigError, ConflictError, DataValidationError
from poreml.optimize.acquisition import AcquisitionSettings
from poreml.optimize.campaign import Campaign
from poreml.virtual_lab import VirtualLab

CONFIG = Path("experiments/campaign_td_vs_buffering.toml")
FAST = AcquisitionSettings.fast()


@pytest.fixture(scope="module")
def config() -> CampaignConfig:
    return CampaignConfig.from_toml(CONFIG)


def _measure(batch: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    return VirtualLab().measure(batch[["candidate_id", *DESIGN_COLUMNS]], seed=seed)


def _assert_in_space(campaign: Campaign, batch: pd.DataFrame) -> None:
    space = campaign.space
    assert space.contains(batch, atol=0.0).all()
    slack = batch["porosity"] * (1 - batch["closed_pore_fraction"])
    assert (slack <= 0.6).all()
    assert (batch["d50_um"] == 12.0).all()
    assert set(batch["route"]) <= {"bottom_up", "top_down", "transcription"}


# -- configuration ---------------------------------------------------------------------------------
def test_config_errors_name_the_key(tmp_path: Path) -> None:
    bad = CONFIG.read_text().replace('direction = "minimize"', 'direction = "minimise"')
    (tmp_path / "bad.toml").write_text(bad)
    with pytest.raises(ConfigError, match=r"objectives\.expansion_pct\.direction"):
        Campaign.create(tmp_path / "c", tmp_path / "bad.toml")
    assert not (tmp_path / "c" / "state.json").exists()


def test_unknown_acquisition_is_a_config_error(config: CampaignConfig) -> None:
    with pytest.raises(ConfigError, match=r"campaign\.acquisition"):
        Campaign(dataclasses.replace(config, acquisition="ucb"))


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"settings\.num_restarts"):
        AcquisitionSettings(num_restarts=0)


def test_config_written_as_toml_reads_back_equal(config: CampaignConfig) -> None:
    assert CampaignConfig.from_toml_string(config.to_toml()) == config


def test_batch_size_is_checked(config: CampaignConfig) -> None:
    with pytest.raises(ConfigError, match="batch"):
        Campaign(config).ask(0)


# -- ask -------------------------------------------------------------------------------------------
def test_space_filling_proposals_respect_every_constraint_and_are_recorded(
    config: CampaignConfig,
) -> None:
    c = Campaign(config, settings=FAST)
    batch = pd.concat([c.ask(8), c.ask(8), c.ask(8)], ignore_index=True)
    assert list(batch.columns) == ["candidate_id", *DESIGN_COLUMNS]
    assert batch["candidate_id"].is_unique
    _assert_in_space(c, batch)
    assert c.n_pending == 24
    counts = batch["route"].value_counts()
    assert counts.max() - counts.min() <= 1  # routes cycled evenly
    # the Sobol sequence continues across rounds: no repeated designs
    assert not batch.duplicated(subset=list(DESIGN_COLUMNS)).any()
    assert c.history["strategy"].tolist() == ["sobol"] * 3


def test_ask_is_deterministic_for_a_seed(config: CampaignConfig) -> None:
    a, b = Campaign(config), Campaign(config)
    pd.testing.assert_frame_equal(a.ask(5), b.ask(5))


# -- tell ------------------------------------------------------------------------------------------
def test_tell_is_idempotent_for_identical_results(config: CampaignConfig) -> None:
    c = Campaign(config)
    results = _measure(c.ask(4))
    first = c.tell(results)
    assert len(first.new) == 4 and c.n_pending == 0
    state = c.to_dict()
    again = c.tell(results)
    assert not again.changed and len(again.unchanged) == 4
    assert c.to_dict() == state  # nothing changed, not even the revision


def test_conflicting_values_name_id_column_old_and_new(config: CampaignConfig) -> None:
    c = Campaign(config)
    results = _measure(c.ask(2))
    c.tell(results)
    changed = results.copy()
    cid = changed.loc[1, "candidate_id"]
    old = changed.loc[1, "ice_pct"]
    changed.loc[1, "ice_pct"] = old + 1.0
    with pytest.raises(ConflictError) as info:
        c.tell(changed)
    msg = str(info.value)
    assert cid in msg and "ice_pct" in msg and repr(float(old)) in msg
    assert repr(float(old + 1.0)) in msg
    assert c.observations.loc[1, "ice_pct"] == old  # nothing recorded


def test_changed_design_of_a_proposal_is_a_conflict(config: CampaignConfig) -> None:
    c = Campaign(config)
    results = _measure(c.ask(1))
    results.loc[0, "porosity"] = results.loc[0, "porosity"] * 0.5 + 0.01
    with pytest.raises(ConflictError, match="porosity"):
        c.tell(results)
    assert c.n_pending == 1


def test_partial_outcomes_arrive_over_several_tells(config: CampaignConfig) -> None:
    c = Campaign(config)
    batch = c.ask(2)
    full = _measure(batch)
    c.tell(full[["candidate_id", "tap_density_g_cm3"]].iloc[:1])
    assert c.n_observations == 1 and c.n_pending == 1
    assert np.isnan(c.observations.loc[0, "ice_pct"])
    summary = c.tell(full[["candidate_id", "tap_density_g_cm3", "ice_pct", "feasible"]])
    assert summary.updated == (batch.loc[0, "candidate_id"],)
    assert summary.new == (batch.loc[1, "candidate_id"],)
    assert c.observations["ice_pct"].notna().all()
    assert c.n_pending == 0


def test_blank_cells_are_not_measured(config: CampaignConfig) -> None:
    c = Campaign(config)
    batch = c.ask(1)
    frame = pd.DataFrame({"candidate_id": batch["candidate_id"], "ice_pct": [None]})
    assert not c.tell(frame).changed  # a pending id with only blanks: nothing happened
    assert c.n_pending == 1


def test_outside_data_needs_every_design_column(config: CampaignConfig) -> None:
    c = Campaign(config)
    row = {"candidate_id": "lit-1", "route": "top_down", "porosity": 0.3, "ice_pct": 85.0}
    with pytest.raises(DataValidationError) as info:
        c.tell(pd.DataFrame([row]))
    msg = str(info.value)
    for col in ("pore_size_nm", "si_domain_nm", "graphitic_fraction"):
        assert col in msg
    assert "outside data" in msg
    design = VirtualLab().evaluate(pd.DataFrame([{"route": "top_down", "d50_um": 8.0}]))
    design["candidate_id"] = "lit-1"
    summary = c.tell(design)
    assert summary.outside == ("lit-1",)
    obs = c.observations
    assert obs.loc[0, "source"] == "outside" and obs.loc[0, "d50_um"] == 8.0


def test_validation_lists_every_bad_cell(config: CampaignConfig) -> None:
    c = Campaign(config)
    batch = c.ask(2)
    frame = pd.DataFrame(
        {
            "candidate_id": batch["candidate_id"],
            "ice_pct": ["abc", "120"],
            "tap_densty_g_cm3": [1.0, 1.0],
        }
    )
    with pytest.raises(DataValidationError) as info:
        c.tell(frame, source="results.csv")
    problems = info.value.problems
    assert {(p.row, p.column) for p in problems} >= {
        (1, "ice_pct"),
        (2, "ice_pct"),
        (None, "tap_densty_g_cm3"),
    }
    assert "did you mean 'tap_density_g_cm3'" in str(info.value)


def test_failed_syntheses_never_reach_the_front(config: CampaignConfig) -> None:
    c = Campaign(config)
    batch = c.ask(2)
    results = pd.DataFrame(
        {
            "candidate_id": batch["candidate_id"],
            "tap_density_g_cm3": [1.2, 0.8],
            "expansion_pct": [10.0, 20.0],
            "ice_pct": [90.0, 90.0],
            "retention_pct": [90.0, 90.0],
            "specific_capacity_mah_g": [1500.0, 1500.0],
            "feasible": [False, True],
        }
    )
    c.tell(results)
    assert c.pareto_front()["candidate_id"].tolist() == [batch.loc[1, "candidate_id"]]
    assert c.status()["n_failed"] == 1


# -- persistence -----------------------------------------------------------------------------------
def test_campaign_round_trips_through_json(config: CampaignConfig) -> None:
    c = Campaign(config, settings=FAST)
    c.tell(_measure(c.ask(3)))
    c.ask(2)
    data = json.loads(json.dumps(c.to_dict()))
    back = Campaign.from_dict(data)
    assert back.to_dict() == c.to_dict()
    assert back.config == c.config and back.settings == c.settings
    pd.testing.assert_frame_equal(back.observations, c.observations)


_CHILD = """
import os, sys, time
import pandas as pd
from poreml.optimize.campaign import Campaign
real_fsync = os.fsync
def slow_fsync(fd):
    open(sys.argv[2], "w").write("writing")
    time.sleep(60)
os.fsync = slow_fsync
c = Campaign.load(sys.argv[1])
c.tell(pd.read_csv(sys.argv[3], dtype=str, keep_default_na=False, na_values=[""]))
"""


def test_killing_observe_mid_write_leaves_the_old_state(tmp_path: Path) -> None:
    c = Campaign.create(tmp_path / "c", CONFIG)
    batch = c.ask(3)
    results = tmp_path / "results.csv"
    _measure(batch).to_csv(results, index=False)
    before = (tmp_path / "c" / "state.json").read_text()
    marker = tmp_path / "marker"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(tmp_path / "c"),
            str(marker),
            str(tmp_path / "results.csv"),
        ],
        env=env,
    )
    try:
        deadline = time.time() + 60
        while not marker.exists() and time.time() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the child never reached the state write"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert (tmp_path / "c" / "state.json").read_text() == before
    again = Campaign.load(tmp_path / "c", lock_timeout=5)  # the lock died with the child
    assert again.n_pending == 3 and again.n_observations == 0
    assert len(again.tell(pd.read_csv(results)).new) == 3


# -- model-based proposals -------------------------------------------------------------------------
@pytest.mark.slow
def test_closed_loop_on_the_virtual_lab_raises_the_hypervolume(config: CampaignConfig) -> None:
    c = Campaign(config, settings=FAST)
    lab = VirtualLab()
    c.run(lambda batch, k: lab.measure(batch, seed=100 + k), rounds=2)  # 8 initial points
    hv_initial = c.hypervolume()
    c.run(lambda batch, k: lab.measure(batch, seed=100 + k), rounds=2)
    history = c.history
    assert history["strategy"].tolist() == ["sobol", "sobol", "qlognehvi", "qlognehvi"]
    model_batches = c.observations[c.observations["round"] >= 3]
    _assert_in_space(c, model_batches)
    assert c.hypervolume() > hv_initial
    last = c.to_dict()["rounds"][-1]
    assert last["model"]["sources"]["tap_density_g_cm3"] == "surrogate:gp"
    assert "tap_density_g_cm3.rmse_in_sample" in last["model"]["diagnostics"]
    pending = c.ask(2)
    assert {"predicted_tap_density_g_cm3_mean", "predicted_expansion_pct_std"} <= set(
        pending.columns
    )
    _assert_in_space(c, pending)


def test_a_route_without_confirmed_data_gets_a_point_of_the_next_batch(
    config: CampaignConfig,
) -> None:
    # 12 lab results on bottom_up and transcription only: top_down has no data, so the prior
    # check cannot confirm the physics there and one point of the batch goes to it
    designs = config.search_space().sample(12, seed=3)
    designs["route"] = ["bottom_up", "transcription"] * 6
    designs.insert(0, "candidate_id", [f"LAB{i:02d}" for i in range(12)])
    results = _measure(designs, seed=3)
    proposals = {}
    for floor in (0.15, 0.0):
        c = Campaign(config, settings=FAST.replace(route_floor=floor))
        c.tell(results)
        proposals[floor] = c.ask(4)
        _assert_in_space(c, proposals[floor])
        explored = c.to_dict()["rounds"][-1]["model"]["explored_routes"]
        assert explored == (["top_down"] if floor else [])
    assert proposals[0.15]["route"].iloc[-1] == "top_down"


@pytest.mark.slow
def test_parego_proposals_respect_every_constraint(config: CampaignConfig) -> None:
    c = Campaign(dataclasses.replace(config, acquisition="qlognparego"), settings=FAST)
    c.tell(_measure(c.ask(8), seed=5))
    batch = c.ask(2)
    assert c.history["strategy"].tolist() == ["sobol", "qlognparego"]
    _assert_in_space(c, batch)
    assert "predicted_feasible_probability" in batch.columns


def test_importing_the_campaign_and_its_cli_does_not_import_torch(tmp_path: Path) -> None:
    code = (
        "import sys, poreml.optimize, poreml.optimize.campaign, poreml.cli.campaign\n"
        "heavy = [m for m in ('torch', 'botorch', 'mlflow', 'optuna') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env=env)
    assert list(tmp_path.iterdir()) == []


def test_observe_status_and_export_of_a_folder_campaign_do_not_import_torch(
    config: CampaignConfig, tmp_path: Path
) -> None:
    # the commands a lab runs most load no torch / BoTorch: a light, seconds-fast CLI
    folder = tmp_path / "c"
    c = Campaign.create(folder, config, settings=FAST)
    results = _measure(c.ask(3), seed=2)
    results.to_csv(tmp_path / "results.csv", index=False)
    code = (
        "import sys\n"
        "import pandas as pd\n"
        "from poreml.optimize.campaign import Campaign\n"
        f"c = Campaign.load({str(folder)!r})\n"
        f"c.tell(pd.read_csv({str(tmp_path / 'results.csv')!r}))\n"
        "status = c.status()\n"
        "c.observations\n"
        "assert status['n_observations'] == 3, status\n"
        "heavy = [m for m in ('torch', 'botorch', 'gpytorch') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env=env)


# -- a lab the physics prior is wrong about ------------------------------------------------------
def _shifted_lab() -> VirtualLab:
    """top_down packs denser and traps less Li than the published route table says."""
    from poreml.virtual_lab import lab_params

    base = lab_params()
    routes = dataclasses.replace(
        base.routes, eta_max=(0.64, 0.70, 0.62), f_trap0=(0.08, 0.03, 0.04)
    )
    return VirtualLab(params=dataclasses.replace(base, routes=routes))


def test_status_reports_the_route_constants_the_model_calibrated(config: CampaignConfig) -> None:
    lab = _shifted_lab()
    c = Campaign(dataclasses.replace(config, initial_points=24), settings=FAST)
    for k in range(3):
        batch = c.ask(8)
        c.tell(lab.measure(batch[["candidate_id", *DESIGN_COLUMNS]], seed=k))
    assert c.physics_calibration() is None  # no model-based proposal yet
    c.ask(4)
    calibrated = c.status()["physics_calibration"]
    assert calibrated["accepted"] and calibrated["statistic"] > calibrated["threshold"]
    assert calibrated["misfit_after"] < calibrated["misfit_before"]
    assert calibrated["routes"]["top_down"]["eta_max"] > 1.15
    # the published lab's measurements keep the published constants
    c = Campaign(dataclasses.replace(config, initial_points=24), settings=FAST)
    for k in range(3):
        c.tell(_measure(c.ask(8), seed=k))
    c.ask(4)
    published = c.status()["physics_calibration"]
    assert not published["accepted"]
    assert all(not moved for moved in published["routes"].values())
