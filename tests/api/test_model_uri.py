"""Serving a registered model by MLflow URI (``POREML_MODEL_URI``) from a temporary store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from poreml.api import create_app
from poreml.data.schema import DESIGN_COLUMNS
from poreml.settings import Settings
from poreml.surrogates.base import TARGETS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def registered_home(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path, training_data: pd.DataFrame
) -> Any:
    """POREML_HOME of a temporary MLflow store in which the test model is the champion."""
    from poreml.tracking import MlflowTracker, register_surrogate

    home = tmp_path_factory.mktemp("mlflow-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("POREML_HOME", str(home))
        mp.delenv("POREML_TRACKING_URI", raising=False)
        mp.delenv("POREML_ARTIFACT_LOCATION", raising=False)
        tracker = MlflowTracker()
        with tracker.start_run("api-test"):
            result = register_surrogate(
                tracker,
                model_dir,
                training_data[list(DESIGN_COLUMNS)].head(3),
                targets=list(TARGETS),
                metric="mean_nll_std",
                value=0.5,
            )
        assert result.promoted
        yield home


def test_a_registered_champion_is_served_by_uri(
    registered_home: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        model_uri="models:/poreml-surrogate@champion", home=registered_home, tracking_uri=None
    )
    with TestClient(create_app(settings)) as client:
        info = client.get("/v1/model").json()
        assert info["name"] == "poreml-surrogate"
        assert info["version"] == "1"
        assert info["source"] == "models:/poreml-surrogate/1"
        assert info["targets"] == list(TARGETS)
        response = client.post("/v1/predict", json={"candidates": [{"porosity": 0.3}]})
        assert response.status_code == 200, response.text
        assert response.json()["model_version"] == "1"


def test_an_unknown_model_uri_fails_at_start_with_a_clear_message(
    registered_home: Path, make_settings: Callable[..., Settings]
) -> None:
    from poreml.exceptions import PoremlError

    settings = make_settings(model_uri="models:/no-such-model@champion", home=registered_home)
    with pytest.raises(PoremlError, match="no-such-model"), TestClient(create_app(settings)):
        pass


def test_a_model_served_by_uri_reports_its_training_data_like_its_folder(
    registered_home: Path, make_settings: Callable[..., Settings]
) -> None:
    with TestClient(create_app(make_settings())) as client:
        by_dir = client.get("/v1/model").json()
    settings = make_settings(
        model_uri="models:/poreml-surrogate@champion", home=registered_home, tracking_uri=None
    )
    with TestClient(create_app(settings)) as client:
        by_uri = client.get("/v1/model").json()
    assert by_uri["training_data_sha256"] == "0" * 64
    assert set(by_uri) == set(by_dir)
    for key in set(by_dir) - {"version", "source"}:  # the URI names the version and source
        assert by_uri[key] == by_dir[key], key
