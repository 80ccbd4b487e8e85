"""The lab loop end to end: a campaign's own results train a model the API then serves.

campaign init + run on the virtual lab -> ``poreml train --data campaign:DIR`` -> a registered
version holding ``@champion`` (a worse one does not take it) -> the API started on
``models:/poreml-surrogate@champion`` reports that version and the campaign rows it learned from.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from poreml.api import create_app
from poreml.cli.campaign import app as campaign_app
from poreml.cli.models import register
from poreml.exceptions import CampaignError, ConfigError
from poreml.optimize.campaign import Campaign
from poreml.settings import Settings
from poreml.surrogates import load as load_surrogate
from poreml.surrogates.base import TARGETS
from poreml.tracker import dataset_digest
from poreml.tracking import MlflowTracker
from poreml.tracking.registry import CHAMPION_ALIAS, current_champion

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "experiments" / "campaign_td_vs_buffering.toml"
ROUNDS = 3
BATCH = 4
CHAMPION_URI = f"models:/poreml-surrogate@{CHAMPION_ALIAS}"


def _ok(app: typer.Typer, args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def _models_app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A temporary POREML_HOME: MLflow is a fresh SQLite store inside it."""
    folder = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("POREML_HOME", str(folder))
        for name in ("POREML_TRACKING_URI", "POREML_ARTIFACT_LOCATION", "POREML_CAMPAIGN_STORAGE"):
            mp.delenv(name, raising=False)
        yield folder


@pytest.fixture(scope="module")
def campaign_dir(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three rounds of four on the virtual lab, all space-filling (fast), seeded."""
    tmp = tmp_path_factory.mktemp("lab")
    config = tmp / "campaign.toml"
    config.write_text(
        CONFIG.read_text().replace("initial_points = 8", f"initial_points = {ROUNDS * BATCH}")
    )
    directory = tmp / "camp"
    _ok(campaign_app, ["init", str(directory), "--config", str(config), "--fast", "--no-tracking"])
    _ok(
        campaign_app,
        [
            *("run", str(directory), "--oracle", "virtual-lab", "--rounds", str(ROUNDS)),
            *("--batch", str(BATCH), "--seed", "3", "--no-tracking"),
        ],
    )
    return directory


@pytest.fixture(scope="module")
def trained(campaign_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The physics-informed GP, then a mean model, trained on the campaign and registered."""
    out = tmp_path_factory.mktemp("models")
    folders = {}
    for model in ("gp", "mean"):
        folders[model] = out / model
        _ok(
            _models_app(),
            [
                *("train", "--model", model, "--data", f"campaign:{campaign_dir}"),
                *("--seed", "0", "--out", str(folders[model])),
            ],
        )
    return folders


def _expected_training(campaign_dir: Path) -> pd.DataFrame:
    """The rows the model must have learned from: every observation before the last round
    (the held-out round), in the export's columns."""
    campaign = Campaign.load(campaign_dir)
    observations = campaign.observations
    assert len(observations) == ROUNDS * BATCH
    return campaign.export().loc[observations["round"] < ROUNDS].reset_index(drop=True)


def test_campaign_model_records_the_campaign_rows_it_learned_from(
    campaign_dir: Path, trained: dict[str, Path]
) -> None:
    expected = _expected_training(campaign_dir)
    meta = json.loads((trained["gp"] / "metadata.json").read_text())
    training = meta["training"]
    assert training["data"] == f"campaign:{campaign_dir}"
    assert training["rows"] == len(expected) == (ROUNDS - 1) * BATCH
    assert training["sha256"] == dataset_digest(expected)
    assert training["heldout_rounds"] == [ROUNDS]
    assert load_surrogate(trained["gp"]).prior == "physics"  # the virtual lab is the prior mean
    assert meta["metrics"]["interval"] == "new measurement"
    rebuild = f"poreml train --model gp --data campaign:{campaign_dir} --seed 0"
    assert meta["rebuild_command"].startswith(rebuild)


def test_first_campaign_model_is_champion_and_a_worse_one_does_not_move_it(
    home: Path, trained: dict[str, Path]
) -> None:
    gp = json.loads((trained["gp"] / "metadata.json").read_text())
    mean = json.loads((trained["mean"] / "metadata.json").read_text())
    assert (gp["registered_version"], mean["registered_version"]) == ("1", "2")
    assert gp["metrics"]["heldout_sha256"] == mean["metrics"]["heldout_sha256"]
    assert mean["metrics"]["mean_nll_std"] > gp["metrics"]["mean_nll_std"]
    tracker = MlflowTracker()
    assert str(current_champion(tracker.client).version) == "1"
    # the champion was re-scored on the same held-out rows when the mean model was registered
    runs = tracker.client.search_runs(
        [tracker.client.get_experiment_by_name("poreml-surrogates").experiment_id],
        filter_string="tags.`poreml.registered_version` = '2'",
    )
    assert len(runs) == 1
    rescored = runs[0].data.metrics["champion_mean_nll_std"]
    assert rescored == pytest.approx(gp["metrics"]["mean_nll_std"], rel=1e-9)
    assert runs[0].data.tags["poreml.promoted"] == "false"


def test_api_serves_the_champion_with_its_campaign_training_data(
    home: Path, campaign_dir: Path, trained: dict[str, Path]
) -> None:
    expected = _expected_training(campaign_dir)
    settings = Settings(
        home=home,
        tracking_uri=f"sqlite:///{(home / 'mlflow.db').resolve()}",
        model_uri=CHAMPION_URI,
        api_token=None,
    )
    with TestClient(create_app(settings)) as client:
        info = client.get("/v1/model").json()
        assert info["version"] == "1"
        assert info["training_rows"] == len(expected)
        assert info["training_data_sha256"] == dataset_digest(expected)
        assert info["targets"] == list(TARGETS)
        designs = Campaign.load(campaign_dir).export().head(2)
        candidates = [
            {"candidate_id": r["candidate_id"], "route": r["route"], "porosity": r["porosity"]}
            for r in designs.to_dict("records")
        ]
        response = client.post("/v1/predict", json={"candidates": candidates})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model_version"] == "1"
        assert [p["candidate_id"] for p in body["predictions"]] == designs["candidate_id"].tolist()
        first = body["predictions"][0]["ice_pct"]
        assert first["lower"] <= first["mean"] <= first["upper"]


def test_campaign_data_errors_name_the_problem_and_the_fix(home: Path, tmp_path: Path) -> None:
    app = _models_app()
    missing = runner.invoke(app, ["train", "--data", f"campaign:{tmp_path / 'none'}"])
    assert isinstance(missing.exception, CampaignError)
    assert "no campaign here" in str(missing.exception)
    empty = runner.invoke(app, ["train", "--data", "campaign:"])
    assert isinstance(empty.exception, ConfigError)
    assert "expected a campaign after the colon" in str(empty.exception)
    directory = tmp_path / "young"
    _ok(campaign_app, ["init", str(directory), "--config", str(CONFIG), "--fast", "--no-tracking"])
    _ok(
        campaign_app,
        ["run", str(directory), "--oracle", "virtual-lab", "--rounds", "1", "--no-tracking"],
    )
    young = runner.invoke(app, ["train", "--data", f"campaign:{directory}", "--no-register"])
    assert isinstance(young.exception, ConfigError)
    assert "measure more rounds" in str(young.exception)
    assert "got 0 to train on, 4 held out" in str(young.exception)


def test_a_database_campaign_trains_the_same_model_as_its_folder_twin(
    home: Path, campaign_dir: Path, trained: dict[str, Path], tmp_path: Path
) -> None:
    """The same three rounds kept in a database (``--storage``) give the same training rows."""
    config = campaign_dir.parent / "campaign.toml"
    url = f"sqlite:///{tmp_path / 'campaigns.db'}"
    storage = ["--storage", url]
    _ok(
        campaign_app, ["init", "camp", "--config", str(config), "--fast", "--no-tracking", *storage]
    )
    _ok(
        campaign_app,
        [
            *("run", "camp", "--oracle", "virtual-lab", "--rounds", str(ROUNDS)),
            *("--batch", str(BATCH), "--seed", "3", "--no-tracking", *storage),
        ],
    )
    out = tmp_path / "gp-db"
    _ok(
        _models_app(),
        [
            *("train", "--model", "gp", "--data", "campaign:camp", *storage),
            *("--seed", "0", "--out", str(out), "--no-register", "--no-track"),
        ],
    )
    meta = json.loads((out / "metadata.json").read_text())
    folder_meta = json.loads((trained["gp"] / "metadata.json").read_text())
    assert meta["training"]["data"] == "campaign:camp"
    assert meta["training"]["storage"] == url  # no password in a SQLite URL to hide
    assert meta["training"]["rows"] == folder_meta["training"]["rows"]
    assert meta["training"]["sha256"] == folder_meta["training"]["sha256"]
    assert f"--storage {url}" in meta["rebuild_command"]
