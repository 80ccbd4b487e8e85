"""``POST /v1/explain``: additive explanations, schema, determinism, 401/413/422, no 500."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from poreml.api import create_app
from poreml.api.schemas import ExplainResponse
from poreml.data.schema import DESIGN_COLUMNS
from poreml.settings import Settings

CANDIDATES = [
    {"candidate_id": "a", "route": "bottom_up", "porosity": 0.2, "pore_size_nm": 5.0},
    {"candidate_id": "b", "route": "top_down", "porosity": 0.45, "carbon_wt_pct": 30.0},
    {"route": "transcription", "si_domain_nm": 200.0, "shell_nm": 12.0},
]


@pytest.fixture(scope="module")
def answer(client: TestClient) -> dict:
    response = client.post("/v1/explain", json={"candidates": CANDIDATES})
    assert response.status_code == 200, response.text
    return response.json()


def test_contributions_add_up_to_the_predicted_mean_of_every_target(
    client: TestClient, answer: dict
) -> None:
    predicted = client.post("/v1/predict", json={"candidates": CANDIDATES}).json()
    targets = client.get("/v1/model").json()["targets"]
    assert len(answer["explanations"]) == len(CANDIDATES)
    for explanation, prediction in zip(
        answer["explanations"], predicted["predictions"], strict=True
    ):
        assert explanation["candidate_id"] == prediction["candidate_id"]
        for target in targets:
            part = explanation[target]
            total = part["base_value"] + sum(part["contributions"].values())
            mean = prediction[target]["mean"]
            assert abs(total - mean) <= 1e-6 * abs(mean), (target, total, mean)


def test_answer_follows_the_schema(answer: dict) -> None:
    ExplainResponse.model_validate(answer)
    assert answer["model_version"] == "test-1"
    assert answer["method"].startswith("exact-shapley")
    first = answer["explanations"][0]
    assert first["index"] == 0 and answer["explanations"][2]["candidate_id"] is None
    assert list(first["ice_pct"]["contributions"]) == list(DESIGN_COLUMNS)


def test_answers_are_deterministic(client: TestClient, answer: dict) -> None:
    again = client.post("/v1/explain", json={"candidates": CANDIDATES})
    assert again.json() == answer


def test_every_candidate_shares_the_base_value(answer: dict) -> None:
    # The base value is the mean prediction over the fixed background, whatever the candidate.
    bases = {e["ice_pct"]["base_value"] for e in answer["explanations"]}
    assert len(bases) == 1


@pytest.mark.parametrize(
    ("candidate", "field", "value"),
    [
        ({"porosity": 0.95}, "candidates[0].porosity", 0.95),
        ({"route": "sideways"}, "candidates[0].route", "sideways"),
        ({"porosity": "0.3"}, "candidates[0].porosity", "0.3"),
        ({"porsity": 0.3}, "candidates[0].porsity", "porsity"),
    ],
)
def test_invalid_candidates_are_422_naming_field_and_value(
    client: TestClient, candidate: dict, field: str, value: object
) -> None:
    response = client.post("/v1/explain", json={"candidates": [candidate]})
    assert response.status_code == 422
    entry = response.json()["detail"][0]
    assert entry["field"] == field and entry["value"] == value


def test_empty_and_malformed_requests_are_422(client: TestClient) -> None:
    assert client.post("/v1/explain", json={"candidates": []}).status_code == 422
    assert client.post("/v1/explain", json={}).status_code == 422
    bad = client.post(
        "/v1/explain", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 422


@pytest.fixture(scope="module")
def limited(make_settings: Callable[..., Settings], api_token: str) -> Iterator[TestClient]:
    app = create_app(
        make_settings(api_max_candidates=2, api_max_explain_candidates=2, api_token=api_token)
    )
    with TestClient(app) as test_client:
        yield test_client


def test_more_candidates_than_allowed_is_413(limited: TestClient, api_token: str) -> None:
    auth = {"Authorization": f"Bearer {api_token}".encode()}
    response = limited.post("/v1/explain", json={"candidates": [{}] * 3}, headers=auth)
    assert response.status_code == 413
    assert "3 candidates" in response.json()["detail"]
    assert "POREML_API_MAX_EXPLAIN_CANDIDATES" in response.json()["detail"]


def test_without_the_token_is_401(limited: TestClient, api_token: str) -> None:
    assert limited.post("/v1/explain", json={"candidates": [{}]}).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert limited.post("/v1/explain", json={"candidates": [{}]}, headers=wrong).status_code == 401
    auth = {"Authorization": f"Bearer {api_token}".encode()}
    assert limited.post("/v1/explain", json={"candidates": [{}]}, headers=auth).status_code == 200
