"""Characterised candidates (CONTRACT.md §4.1): measured columns in /v1/predict and /v1/screen."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from poreml.api import create_app
from poreml.data.schema import DESIGN_COLUMNS
from poreml.settings import Settings

DESIGN = {"route": "transcription", "porosity": 0.3, "pore_size_nm": 20.0}
SCREEN = {
    "objectives": {"ice_pct": {"direction": "maximize"}},
    "constraints": {"ice_pct": ">= 10"},
    "top_k": 3,
}


@pytest.fixture(scope="module")
def cascade_client(
    cascade_surrogate: Any,
    tmp_path_factory: pytest.TempPathFactory,
    make_settings: Callable[..., Settings],
) -> Iterator[TestClient]:
    """The API serving a small cascade (it conditions on measured SSA and tap density)."""
    folder: Path = cascade_surrogate.save(tmp_path_factory.mktemp("cascade") / "model")
    with TestClient(create_app(make_settings(model_dir=folder))) as client:
        yield client


def _predict(client: TestClient, candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = client.post("/v1/predict", json={"candidates": candidates})
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def test_measured_columns_are_used_and_listed(cascade_client: TestClient) -> None:
    rows = _predict(
        cascade_client,
        [
            {**DESIGN, "candidate_id": "made", "ssa_m2_g": 40.0, "tap_density_g_cm3": 0.7},
            {**DESIGN, "candidate_id": "ssa only", "ssa_m2_g": 40.0},
            {**DESIGN, "candidate_id": "design only"},
        ],
    )
    assert [r["conditioned_on"] for r in rows] == [
        ["tap_density_g_cm3", "ssa_m2_g"],
        ["ssa_m2_g"],
        [],
    ]
    # the measured inputs are not echoed: ssa_m2_g in the answer is the prediction
    assert set(rows[0]["ssa_m2_g"]) == {"mean", "std", "lower", "upper"}
    assert rows[0]["ice_pct"]["mean"] != rows[2]["ice_pct"]["mean"]


def test_higher_measured_ssa_predicts_lower_ice(cascade_client: TestClient) -> None:
    rows = _predict(
        cascade_client,
        [{**DESIGN, "ssa_m2_g": 20.0}, {**DESIGN, "ssa_m2_g": 80.0}],
    )
    assert rows[1]["ice_pct"]["mean"] < rows[0]["ice_pct"]["mean"]
    for r in rows:
        for t in ("ice_pct", "retention_pct"):
            assert 0 < r[t]["lower"] <= r[t]["mean"] <= r[t]["upper"] < 100


def test_design_only_answers_keep_their_shape(cascade_client: TestClient, client) -> None:
    served = _predict(cascade_client, [DESIGN])[0]
    plain = _predict(client, [DESIGN])[0]
    assert list(served) == list(plain)
    assert served["conditioned_on"] == [] and plain["conditioned_on"] == []


def test_a_model_that_cannot_condition_accepts_and_ignores_measured_columns(client) -> None:
    plain = _predict(client, [DESIGN])[0]
    given = _predict(client, [{**DESIGN, "ssa_m2_g": 40.0, "ice_pct": 85.0}])[0]
    assert given["conditioned_on"] == []
    assert given["ice_pct"] == plain["ice_pct"]


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("ssa_m2_g", 40000.0, "40000"),
        ("tap_density_g_cm3", -0.1, "-0.1"),
        ("ice_pct", 120.0, "120"),
        ("ssa_m2_g", "40", "'40'"),
    ],
)
def test_out_of_range_measured_values_are_422_naming_field_and_value(
    cascade_client: TestClient, field: str, value: Any, shown: str
) -> None:
    response = cascade_client.post("/v1/predict", json={"candidates": [{**DESIGN, field: value}]})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["field"] == f"candidates[0].{field}"
    assert shown in error["msg"]


def test_nan_measured_values_are_422(cascade_client: TestClient) -> None:
    body = '{"candidates": [{"ssa_m2_g": NaN}]}'
    response = cascade_client.post(
        "/v1/predict", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_screen_ranks_characterised_candidates_with_conditioned_on(
    cascade_client: TestClient,
) -> None:
    candidates = [
        {**DESIGN, "candidate_id": "high ssa", "ssa_m2_g": 400.0},
        {**DESIGN, "candidate_id": "low ssa", "ssa_m2_g": 5.0},
        {**DESIGN, "candidate_id": "unmeasured"},
    ]
    response = cascade_client.post("/v1/screen", json={"candidates": candidates, **SCREEN})
    assert response.status_code == 200, response.text
    ranked = response.json()["candidates"]
    assert ranked[0]["candidate_id"] == "low ssa"
    on = {r["candidate_id"]: r["conditioned_on"] for r in ranked}
    assert on == {"high ssa": ["ssa_m2_g"], "low ssa": ["ssa_m2_g"], "unmeasured": []}


def test_csv_answers_carry_conditioned_on(cascade_client: TestClient) -> None:
    response = cascade_client.post(
        "/v1/predict",
        json={"candidates": [{**DESIGN, "ssa_m2_g": 40.0, "tap_density_g_cm3": 0.7}, DESIGN]},
        headers={"accept": "text/csv"},
    )
    table = pd.read_csv(io.StringIO(response.text), keep_default_na=False)
    assert table["conditioned_on"].tolist() == ["tap_density_g_cm3;ssa_m2_g", ""]


def test_explanations_stay_over_the_design_columns(cascade_client: TestClient) -> None:
    response = cascade_client.post(
        "/v1/explain", json={"candidates": [{**DESIGN, "ssa_m2_g": 40.0}]}
    )
    assert response.status_code == 200, response.text
    contributions = response.json()["explanations"][0]["ice_pct"]["contributions"]
    assert set(contributions) == set(DESIGN_COLUMNS)
