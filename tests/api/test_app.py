"""Endpoints of CONTRACT.md §4 with a real (small) surrogate: answers, errors, limits, token."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from poreml.api import create_app
from poreml.data.schema import DESIGN_COLUMNS, DESIGN_DEFAULTS
from poreml.settings import Settings
from poreml.surrogates.base import TARGETS

STATS = ("mean", "std", "lower", "upper")

SCREEN_BODY: dict[str, Any] = {
    "objectives": {
        "tap_density_g_cm3": {"direction": "maximize", "threshold": 0.3},
        "expansion_pct": {"direction": "minimize", "threshold": 150.0},
    },
    "constraints": {"ice_pct": ">= 80", "specific_capacity_mah_g": ">= 1000"},
}


def designs(n: int, seed: int = 1) -> list[dict[str, Any]]:
    """``n`` space-filling candidates with ids ``c0``, ``c1``, ..."""
    from poreml.design.search_space import SearchSpace

    frame = SearchSpace.contract_box().sample(n, seed=seed)
    rows = frame.to_dict("records")
    return [{"candidate_id": f"c{i}", **row} for i, row in enumerate(rows)]


def only_error(response: Any, status: int = 422) -> dict[str, Any]:
    """The single problem of a 422 answer (asserting status and shape)."""
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    return detail[0]


# ---- health, model, docs ------------------------------------------------------------------


def test_healthz_answers_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_model_endpoint_describes_the_served_model(
    client: TestClient, surrogate: Any, training_data: Any
) -> None:
    info = client.get("/v1/model").json()
    assert info["name"] == "poreml-surrogate"
    assert info["version"] == "test-1"
    assert info["model_type"] == surrogate.name
    assert info["targets"] == list(TARGETS)
    assert info["training_rows"] == len(training_data)
    assert info["training_data_sha256"] == "0" * 64
    assert set(info["design_columns"]) == set(DESIGN_COLUMNS)
    porosity = info["design_columns"]["porosity"]
    assert porosity["contract_low"] == 0.0 and porosity["contract_high"] == 0.8
    assert porosity["trained_high"] == training_data["porosity"].max() <= 0.5
    assert porosity["trained_low"] == training_data["porosity"].min()
    pore = info["design_columns"]["pore_size_nm"]  # log-scale column: back in nm
    assert 0.5 <= pore["trained_low"] < pore["trained_high"] <= 1000.0
    assert set(info["design_columns"]["route"]["trained_values"]) == {
        "bottom_up",
        "top_down",
        "transcription",
    }


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/healthz", "/v1/model", "/v1/predict", "/v1/screen"} <= set(spec["paths"])
    candidate = spec["components"]["schemas"]["DesignCandidate"]
    assert candidate["additionalProperties"] is False
    assert candidate["properties"]["porosity"]["maximum"] == 0.8
    assert candidate["properties"]["route"]["enum"] == ["bottom_up", "top_down", "transcription"]


# ---- predict ------------------------------------------------------------------------------


def test_predict_fills_defaults_and_echoes_the_design(client: TestClient) -> None:
    response = client.post("/v1/predict", json={"candidates": [{"porosity": 0.4}]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == "test-1"
    (row,) = body["predictions"]
    assert row["candidate_id"] is None and row["index"] == 0
    expected = {**DESIGN_DEFAULTS, "porosity": 0.4}
    assert {k: row[k] for k in DESIGN_COLUMNS} == expected
    assert isinstance(row["in_domain"], bool)
    for target in TARGETS:
        pred = row[target]
        assert set(pred) == set(STATS)
        assert all(math.isfinite(pred[s]) for s in STATS)
        assert pred["std"] >= 0 and pred["lower"] <= pred["upper"]


def test_predict_matches_the_surrogate_and_keeps_request_order(
    client: TestClient, surrogate: Any
) -> None:
    import pandas as pd

    cands = designs(25)
    response = client.post("/v1/predict", json={"candidates": cands})
    assert response.status_code == 200, response.text
    rows = response.json()["predictions"]
    assert [r["candidate_id"] for r in rows] == [c["candidate_id"] for c in cands]
    frame = pd.DataFrame(cands)[list(DESIGN_COLUMNS)]
    intervals = surrogate.predict_interval(frame, level=0.9)
    in_domain = surrogate.in_domain(frame)
    for target in TARGETS:
        for stat in STATS:
            got = [r[target][stat] for r in rows]
            np.testing.assert_allclose(got, intervals[target][stat].to_numpy(), rtol=1e-12)
    assert [r["in_domain"] for r in rows] == in_domain.tolist()


def test_predict_flags_designs_outside_the_training_domain(client: TestClient) -> None:
    # the fixture's training designs have porosity <= 0.5
    body = {"candidates": [{"porosity": 0.8}, {"porosity": 0.3}]}
    rows = client.post("/v1/predict", json=body).json()["predictions"]
    assert [r["in_domain"] for r in rows] == [False, True]


def test_predict_answers_csv_when_asked(client: TestClient) -> None:
    response = client.post(
        "/v1/predict", json={"candidates": designs(3)}, headers={"Accept": "text/csv"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["candidate_id"] for r in rows] == ["c0", "c1", "c2"]
    assert {f"{t}_{s}" for t in TARGETS for s in STATS} <= set(rows[0])


# ---- bad input: 422 naming field and value ------------------------------------------------


@pytest.mark.parametrize(
    ("raw_value", "kind"),
    [("NaN", "finite_number"), ("Infinity", "finite_number"), ("-Infinity", "finite_number")],
)
def test_non_finite_numbers_are_rejected(client: TestClient, raw_value: str, kind: str) -> None:
    body = '{"candidates": [{"porosity": 0.2}, {"shell_nm": RAW}]}'.replace("RAW", raw_value)
    response = client.post(
        "/v1/predict", content=body, headers={"Content-Type": "application/json"}
    )
    error = only_error(response)
    assert error["field"] == "candidates[1].shell_nm"
    assert error["type"] == kind
    assert raw_value in error["msg"] and "shell_nm" in error["msg"]


@pytest.mark.parametrize(
    ("candidate", "field", "shown"),
    [
        ({"porosity": 0.95}, "candidates[0].porosity", "0.95"),
        ({"pore_size_nm": 0.1}, "candidates[0].pore_size_nm", "0.1"),
        ({"carbon_wt_pct": 95}, "candidates[0].carbon_wt_pct", "95"),
        ({"porosity": "0.3"}, "candidates[0].porosity", "'0.3'"),
        ({"porosity": True}, "candidates[0].porosity", "True"),
        ({"porosity": None}, "candidates[0].porosity", "None"),
        ({"porosity": [0.3]}, "candidates[0].porosity", "[0.3]"),
        ({"route": "sol_gel"}, "candidates[0].route", "'sol_gel'"),
        ({"route": 1}, "candidates[0].route", "1"),
        ({"porosityy": 0.3}, "candidates[0].porosityy", "porosity"),
        # measured columns are accepted (CONTRACT.md §4.1) and range-checked like any other
        ({"tap_density_g_cm3": 3.5}, "candidates[0].tap_density_g_cm3", "3.5"),
        ({"ssa_m2_g": -1.0}, "candidates[0].ssa_m2_g", "-1"),
        ({"ssa_m2_g": "120"}, "candidates[0].ssa_m2_g", "'120'"),
        ({"candidate_id": 7}, "candidates[0].candidate_id", "7"),
        ({"candidate_id": ""}, "candidates[0].candidate_id", "''"),
    ],
)
def test_bad_design_values_name_field_and_value(
    client: TestClient, candidate: dict[str, Any], field: str, shown: str
) -> None:
    error = only_error(client.post("/v1/predict", json={"candidates": [candidate]}))
    assert error["field"] == field
    assert field in error["msg"] and shown in error["msg"]


def test_out_of_range_message_gives_the_allowed_range_with_unit(client: TestClient) -> None:
    error = only_error(client.post("/v1/predict", json={"candidates": [{"porosity": 0.95}]}))
    assert "[0, 0.8] (fraction)" in error["msg"]
    assert error["value"] == 0.95


def test_unknown_column_suggests_the_right_name(client: TestClient) -> None:
    error = only_error(client.post("/v1/predict", json={"candidates": [{"porosityy": 0.3}]}))
    assert error["type"] == "extra_forbidden"
    assert "did you mean 'porosity'" in error["msg"]


def test_every_bad_field_is_reported_at_once(client: TestClient) -> None:
    body = {"candidates": [{"porosity": 2.0}, {"route": "x", "shell_nm": -1}]}
    response = client.post("/v1/predict", json=body)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["detail"]}
    assert fields == {"candidates[0].porosity", "candidates[1].route", "candidates[1].shell_nm"}


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        ({"candidates": []}, "candidates", "at least 1"),
        ({}, "candidates", "missing"),
        ({"candidates": {}}, "candidates", "list"),
        ({"candidates": [{}], "extra": 1}, "extra", "unknown field"),
        ([], "body", "object"),
        ({"candidates": [{"candidate_id": "a"}, {"candidate_id": "a"}]}, "candidates", "'a'"),
    ],
)
def test_bad_request_shapes_are_422(client: TestClient, body: Any, field: str, needle: str) -> None:
    error = only_error(client.post("/v1/predict", json=body))
    assert error["field"] == field
    assert needle in error["msg"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"candidates": [',
        b"not json",
        b'{"candidates": [{"porosity": 0.3,}]}',
        b"\xff\xfe{}",
        b'{"candidates": [{"porosity": 1' + b"0" * 5000 + b"}]}",
    ],
)
def test_malformed_json_is_422(client: TestClient, raw: bytes) -> None:
    response = client.post("/v1/predict", content=raw, headers={"Content-Type": "application/json"})
    error = only_error(response)
    assert error["type"] == "json_invalid"
    assert "JSON" in error["msg"]


def test_a_body_that_is_not_json_by_content_type_is_422(client: TestClient) -> None:
    response = client.post(
        "/v1/predict", content=b'{"candidates": [{}]}', headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 422


# ---- limits: 413 ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_limits_client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    app = create_app(make_settings(api_max_candidates=5, api_max_body_bytes=4096))
    with TestClient(app) as test_client:
        yield test_client


def test_more_candidates_than_allowed_is_413(small_limits_client: TestClient) -> None:
    assert small_limits_client.post("/v1/predict", json={"candidates": [{}] * 5}).status_code == 200
    response = small_limits_client.post("/v1/predict", json={"candidates": [{}] * 6})
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert "6 candidates" in detail and "at most 5" in detail


def test_too_many_candidates_in_a_screen_is_413(small_limits_client: TestClient) -> None:
    body = {**SCREEN_BODY, "candidates": [{}] * 6}
    assert small_limits_client.post("/v1/screen", json=body).status_code == 413


def test_body_larger_than_the_limit_is_413_by_content_length(
    small_limits_client: TestClient,
) -> None:
    body = {"candidates": [{"candidate_id": "x" * 100, "porosity": 0.3}] * 40}
    response = small_limits_client.post("/v1/predict", json=body)
    assert response.status_code == 413
    assert "4096 bytes" in response.json()["detail"]


def test_body_larger_than_the_limit_is_413_while_streaming(
    small_limits_client: TestClient,
) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        yield b'{"candidates": ['
        for _ in range(400):
            yield b'{"porosity": 0.3},'
        yield b"{}]}"

    response = small_limits_client.post(
        "/v1/predict", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert "POREML_API_MAX_BODY_BYTES" in response.json()["detail"]


# ---- token: 401 ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_client(make_settings: Callable[..., Settings], api_token: str) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(api_token=api_token))) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "TOKEN"},
        {"Authorization": "Basic TOKEN"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer TOKENx"},
    ],
)
def test_v1_without_the_right_token_is_401(
    token_client: TestClient, api_token: str, headers: dict[str, str]
) -> None:
    headers = {k: v.replace("TOKEN", api_token) for k, v in headers.items()}
    encoded = {k: v.encode() for k, v in headers.items()}
    for method, path, body in (
        ("GET", "/v1/model", None),
        ("POST", "/v1/predict", {"candidates": [{}]}),
        ("POST", "/v1/screen", {**SCREEN_BODY, "candidates": [{}]}),
    ):
        response = token_client.request(method, path, json=body, headers=encoded)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "bearer token" in response.json()["detail"]


def test_401_comes_before_the_body_is_read(token_client: TestClient) -> None:
    response = token_client.post(
        "/v1/predict", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401


def test_the_right_token_opens_v1_and_healthz_needs_none(
    token_client: TestClient, api_token: str
) -> None:
    auth = {"Authorization": f"Bearer {api_token}".encode()}
    assert token_client.get("/healthz").status_code == 200
    assert token_client.get("/docs").status_code == 200
    assert token_client.get("/v1/model", headers=auth).status_code == 200
    assert (
        token_client.post("/v1/predict", json={"candidates": [{}]}, headers=auth).status_code == 200
    )
    lower = {"Authorization": f"bearer {api_token}".encode()}  # scheme is case-insensitive
    assert token_client.get("/v1/model", headers=lower).status_code == 200


def test_openapi_documents_the_bearer_scheme_when_a_token_is_set(
    token_client: TestClient,
) -> None:
    spec = token_client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


# ---- screen --------------------------------------------------------------------------------


def normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def test_screen_ranks_by_pareto_rank_of_the_predicted_means(
    client: TestClient, brute_force_ranks: Callable[[np.ndarray], np.ndarray]
) -> None:
    cands = designs(60, seed=3)
    body = {**SCREEN_BODY, "candidates": cands, "top_k": 60}
    response = client.post("/v1/screen", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["n_screened"] == 60 and result["model_version"] == "test-1"
    ranked = result["candidates"]
    assert sorted(r["candidate_id"] for r in ranked) == sorted(c["candidate_id"] for c in cands)

    # recompute the ranks from /v1/predict means by brute force
    preds = {
        r["candidate_id"]: r
        for r in client.post("/v1/predict", json={"candidates": cands}).json()["predictions"]
    }
    ids = list(preds)
    y = np.array(
        [[preds[i]["tap_density_g_cm3"]["mean"], -preds[i]["expansion_pct"]["mean"]] for i in ids]
    )
    expected = dict(zip(ids, brute_force_ranks(y).tolist(), strict=True))
    assert {r["candidate_id"]: r["pareto_rank"] for r in ranked} == expected

    # ordered by rank, then by probability_feasible (highest first)
    keys = [(r["pareto_rank"], -r["probability_feasible"]) for r in ranked]
    assert keys == sorted(keys)
    assert ranked[0]["pareto_rank"] == 1


def test_probability_feasible_is_the_gaussian_probability_of_all_constraints(
    client: TestClient,
) -> None:
    cands = designs(20, seed=4)
    body = {**SCREEN_BODY, "candidates": cands, "top_k": 20}
    for row in client.post("/v1/screen", json=body).json()["candidates"]:
        ice, cap = row["ice_pct"], row["specific_capacity_mah_g"]
        expected = normal_cdf((ice["mean"] - 80) / ice["std"]) * normal_cdf(
            (cap["mean"] - 1000) / cap["std"]
        )
        assert 0.0 <= row["probability_feasible"] <= 1.0
        assert row["probability_feasible"] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_probability_feasible_is_one_without_constraints_and_falls_as_they_tighten(
    client: TestClient,
) -> None:
    cands = designs(10, seed=5)

    def probabilities(constraints: dict[str, str]) -> dict[str, float]:
        body = {**SCREEN_BODY, "constraints": constraints, "candidates": cands, "top_k": 10}
        rows = client.post("/v1/screen", json=body).json()["candidates"]
        return {r["candidate_id"]: r["probability_feasible"] for r in rows}

    assert set(probabilities({}).values()) == {1.0}
    loose = probabilities({"ice_pct": ">= 50"})
    tight = probabilities({"ice_pct": ">= 95"})
    tighter = probabilities({"ice_pct": ">= 95", "retention_pct": ">= 99"})
    assert all(loose[k] >= tight[k] >= tighter[k] for k in loose)
    assert max(tighter.values()) < max(loose.values())


def test_screen_keeps_top_k_and_answers_csv(client: TestClient) -> None:
    cands = designs(30, seed=6)
    body = {**SCREEN_BODY, "candidates": cands, "top_k": 7}
    rows = client.post("/v1/screen", json=body).json()["candidates"]
    assert len(rows) == 7
    response = client.post("/v1/screen", json=body, headers={"Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["candidate_id"] for r in table] == [r["candidate_id"] for r in rows]
    assert [int(r["pareto_rank"]) for r in table] == [r["pareto_rank"] for r in rows]
    assert {"probability_feasible", "in_domain", "ice_pct_mean"} <= set(table[0])
    assert set(DESIGN_COLUMNS) <= set(table[0])


def test_json_wins_over_csv_unless_csv_is_preferred(client: TestClient) -> None:
    body = {"candidates": [{}]}
    for accept, csv_expected in (
        ("application/json, text/csv", False),
        ("text/csv;q=0.5, application/json", False),
        ("*/*", False),
        ("text/csv, application/json;q=0.9", True),
    ):
        response = client.post("/v1/predict", json=body, headers={"Accept": accept})
        assert response.headers["content-type"].startswith("text/csv") is csv_expected, accept


@pytest.mark.parametrize(
    ("change", "field", "needle"),
    [
        ({"objectives": {}}, "objectives", "at least 1"),
        ({"objectives": {"porosity": {"direction": "maximize"}}}, "objectives.porosity", "ice_pct"),
        (
            {"objectives": {"ice_pct": {"direction": "up"}}},
            "objectives.ice_pct.direction",
            "maximize",
        ),
        (
            {"objectives": {"ice_pct": {"direction": "maximize", "threshold": 400}}},
            "body",
            "ice_pct",
        ),
        (
            {"objectives": {"ice_pct": {"direction": "maximize", "threshold": "NaN"}}},
            "objectives.ice_pct.threshold",
            "NaN",
        ),
        ({"constraints": {"ice_pct": "at least 80"}}, "body", "'at least 80'"),
        ({"constraints": {"ice_pct": ">= 180"}}, "body", "180"),
        ({"constraints": {"volume": ">= 1"}}, "constraints.volume", "volume"),
        ({"top_k": 0}, "top_k", "0"),
        ({"top_k": 2.5}, "top_k", "2.5"),
    ],
)
def test_bad_screen_settings_are_422(
    client: TestClient, change: dict[str, Any], field: str, needle: str
) -> None:
    body = {**SCREEN_BODY, "candidates": [{}], **change}
    error = only_error(client.post("/v1/screen", json=body))
    assert error["field"] == field, error
    assert needle in error["msg"]


# ---- failures never answer 500 -------------------------------------------------------------


def test_a_failing_model_answers_503(
    make_settings: Callable[..., Settings], surrogate: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("weights corrupted")

    with TestClient(create_app(make_settings(), model=surrogate)) as test_client:
        monkeypatch.setattr(surrogate, "predict_arrays", broken)
        response = test_client.post("/v1/predict", json={"candidates": [{}]})
    assert response.status_code == 503
    assert "weights corrupted" in response.json()["detail"]


def test_a_model_returning_nan_answers_503(
    make_settings: Callable[..., Settings], surrogate: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = surrogate.predict_arrays

    def with_nan(X: Any, level: float = 0.9, **kwargs: Any) -> Any:
        out = original(X, level=level, **kwargs)
        out.std[:, out.targets.index("ice_pct")] = math.nan
        return out

    with TestClient(create_app(make_settings(), model=surrogate)) as test_client:
        monkeypatch.setattr(surrogate, "predict_arrays", with_nan)
        response = test_client.post("/v1/predict", json={"candidates": [{}]})
    assert response.status_code == 503
    assert "non-finite std for ice_pct" in response.json()["detail"]


def test_an_unexpected_error_answers_503_with_an_error_id(
    make_settings: Callable[..., Settings], surrogate: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from poreml.api import service

    def bug(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("a bug")

    monkeypatch.setattr(service, "prediction_records", bug)
    app = create_app(make_settings(), model=surrogate)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.post("/v1/predict", json={"candidates": [{}]})
    assert response.status_code == 503
    assert "error id" in response.json()["detail"]


def test_a_folder_without_a_model_fails_at_start_with_a_clear_message(
    make_settings: Callable[..., Settings], tmp_path: Any
) -> None:
    from poreml.exceptions import ConfigError

    app = create_app(make_settings(model_dir=tmp_path))
    with pytest.raises(ConfigError, match="no saved surrogate here"), TestClient(app):
        pass


def test_a_model_folder_without_metadata_is_served_unversioned(
    make_settings: Callable[..., Settings], surrogate: Any, tmp_path: Any
) -> None:
    folder = surrogate.save(tmp_path / "bare")
    with TestClient(create_app(make_settings(model_dir=folder))) as test_client:
        info = test_client.get("/v1/model").json()
        assert info["version"] == "unversioned"
        assert info["training_data_sha256"] is None
        assert test_client.post("/v1/predict", json={"candidates": [{}]}).status_code == 200


def test_unknown_paths_and_methods_are_json_4xx(client: TestClient) -> None:
    assert client.get("/v1/nothing").status_code == 404
    response = client.get("/v1/predict")
    assert response.status_code == 405
    assert "detail" in response.json()


# ---- domain distance and physical intervals ---------------------------------------------------


def _far_corner(surrogate: Any) -> dict[str, Any]:
    """Every continuous design column at its largest trained value (inside the training box)."""
    from poreml.data.schema import CONTINUOUS_DESIGN_COLUMNS
    from poreml.surrogates.features import LOG_FEATURES

    high = surrogate.domain_.high
    corner = {
        n: 10.0 ** high[n] if n in LOG_FEATURES else high[n] for n in CONTINUOUS_DESIGN_COLUMNS
    }
    return {"candidate_id": "corner", "route": "bottom_up", **corner}


def test_predict_reports_the_domain_distance_of_each_candidate(
    client: TestClient, surrogate: Any
) -> None:
    import pandas as pd

    cands = designs(6)
    rows = client.post("/v1/predict", json={"candidates": cands}).json()["predictions"]
    frame = pd.DataFrame(cands)[list(DESIGN_COLUMNS)]
    expected = surrogate.domain_distance(frame)
    np.testing.assert_allclose([r["domain_distance"] for r in rows], expected, rtol=1e-12)
    assert all((r["domain_distance"] <= 1) or not r["in_domain"] for r in rows)


def test_a_far_corner_candidate_is_out_of_domain_with_distance_above_one(
    client: TestClient, surrogate: Any
) -> None:
    body = {"candidates": [_far_corner(surrogate), {"porosity": 0.3}]}
    response = client.post("/v1/predict", json=body)
    assert response.status_code == 200, response.text
    corner, typical = response.json()["predictions"]
    assert corner["in_domain"] is False and corner["domain_distance"] > 1
    assert typical["in_domain"] is True and typical["domain_distance"] <= 1


def test_the_csv_answer_carries_the_domain_distance(client: TestClient, surrogate: Any) -> None:
    body = {"candidates": [_far_corner(surrogate), *designs(2)]}
    response = client.post("/v1/predict", json=body, headers={"Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert float(rows[0]["domain_distance"]) > 1 and rows[0]["in_domain"] == "False"
    assert all(math.isfinite(float(r["domain_distance"])) for r in rows)


def test_intervals_stay_inside_physical_ranges_for_extreme_candidates(client: TestClient) -> None:
    from poreml.data.schema import COLUMNS, CONTINUOUS_DESIGN_COLUMNS

    extreme = []
    for k, route in enumerate(["bottom_up", "top_down", "transcription"] * 2):
        side = 1 if k < 3 else 0
        extreme.append(
            {"route": route, **{n: COLUMNS[n].bounds[side] for n in CONTINUOUS_DESIGN_COLUMNS}}
        )
    response = client.post("/v1/predict", json={"candidates": extreme})
    assert response.status_code == 200, response.text
    for row in response.json()["predictions"]:
        for target in TARGETS:
            pred = row[target]
            if target in ("ice_pct", "retention_pct"):
                assert 0 <= pred["lower"] <= pred["upper"] <= 100, (target, pred)
            else:
                assert pred["lower"] > 0, (target, pred)
            assert pred["lower"] <= pred["upper"]
