"""Fixtures of the API tests: a small real surrogate, saved model folders, apps and clients."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from poreml.api import create_app
from poreml.data.schema import DESIGN_COLUMNS
from poreml.settings import Settings
from poreml.tracking.artifacts import METADATA_FILE


def _brute_force_ranks(y: np.ndarray) -> np.ndarray:
    """Textbook non-dominated sorting: peel the non-dominated rows, one front at a time."""
    ranks = np.zeros(len(y), dtype=int)
    remaining = list(range(len(y)))
    rank = 0
    while remaining:
        rank += 1
        front = [
            i
            for i in remaining
            if not any(np.all(y[j] >= y[i]) and np.any(y[j] > y[i]) for j in remaining)
        ]
        ranks[front] = rank
        remaining = [i for i in remaining if i not in front]
    return ranks


@pytest.fixture(scope="session")
def brute_force_ranks() -> Callable[[np.ndarray], np.ndarray]:
    """Reference non-dominated sorting (larger is better in every column), ``O(n^3)``."""
    return _brute_force_ranks


@pytest.fixture(scope="session")
def api_token() -> str:
    """The bearer token of the token tests (non-ASCII on purpose)."""
    return "test-token-ünïcode-42"


MAX_TRAINED_POROSITY = 0.5
"""Training designs stop here, so designs with more porosity are outside the model's domain."""


@pytest.fixture(scope="session")
def training_data() -> pd.DataFrame:
    """Noisy virtual-lab rows (seed 0) with porosity <= 0.5."""
    from poreml.surrogates.evaluation import virtual_lab_data

    data = virtual_lab_data(64, seed=0)
    return data[data["porosity"] <= MAX_TRAINED_POROSITY].reset_index(drop=True)


@pytest.fixture(scope="session")
def surrogate(training_data: pd.DataFrame) -> Any:
    """A small tree-ensemble surrogate fitted on every target (fast to fit and to predict)."""
    from poreml.surrogates.base import TARGETS
    from poreml.surrogates.registry import make

    return make("trees", n_estimators=25).fit(
        training_data[list(DESIGN_COLUMNS)], training_data[list(TARGETS)]
    )


@pytest.fixture(scope="session")
def cascade_surrogate(training_data: pd.DataFrame) -> Any:
    """A small cascade with GP stages, the champion's kind of model (it conditions on measured
    SSA and tap density)."""
    from poreml.surrogates.base import TARGETS
    from poreml.surrogates.registry import make

    return make(
        "cascade", stage1_params={"fit_maxiter": 30}, stage2_params={"fit_maxiter": 30}
    ).fit(training_data[list(DESIGN_COLUMNS)], training_data[list(TARGETS)])


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, surrogate: Any) -> Path:
    """``surrogate`` saved as a shipped model folder (surrogate files plus metadata)."""
    folder = surrogate.save(tmp_path_factory.mktemp("models") / "champion")
    meta = {  # the form `poreml train` writes
        "format": "poreml-model-metadata",
        "format_version": 1,
        "model_name": "poreml-surrogate",
        "model": surrogate.name,
        "version": "test-1",
        "targets": list(surrogate.targets_),
        "training": {"rows": int(surrogate.n_train_), "sha256": "0" * 64},
    }
    (folder / METADATA_FILE).write_text(json.dumps(meta), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def make_settings(model_dir: Path) -> Callable[..., Settings]:
    """Settings independent of the caller's POREML_* variables, with overrides."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "model_dir": model_dir,
            "model_uri": None,
            "api_token": None,
            "api_max_candidates": 10_000,
            "api_max_explain_candidates": 16,
            "api_max_body_bytes": 16 * 1024 * 1024,
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture(scope="session")
def app(make_settings: Callable[..., Settings]) -> FastAPI:
    """The app as ``poreml serve`` builds it: the model folder is loaded in the lifespan."""
    return create_app(make_settings())


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    """A test client with the app started (lifespan run)."""
    with TestClient(app) as test_client:
        yield test_client
