"""Concurrent /v1/predict requests answered in shared batches: each gets its own answer."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from poreml.api import create_app
from poreml.api.batching import PredictBatcher
from poreml.design.search_space import SearchSpace
from poreml.settings import Settings


def bodies(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` request bodies of 1-3 candidates; some with ids, some with measured columns."""
    designs = SearchSpace.contract_box().sample(3 * n, seed=seed)
    records = json.loads(designs.to_json(orient="records"))
    out = []
    for k in range(n):
        candidates = records[3 * k : 3 * k + 1 + k % 3]
        if k % 2:
            candidates[0]["candidate_id"] = f"powder-{k}"
        if k % 4 == 1:
            candidates[-1]["ssa_m2_g"] = 40.0 + k
        out.append({"candidates": candidates})
    return out


async def post(app: Any, payloads: list[dict[str, Any]], *, at_once: bool) -> list[Any]:
    """The responses to every payload, posted all at once or one after the other."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        if at_once:
            return await asyncio.gather(*(client.post("/v1/predict", json=p) for p in payloads))
        return [await client.post("/v1/predict", json=p) for p in payloads]


def assert_same_answer(got: dict[str, Any], alone: dict[str, Any]) -> None:
    assert got["model_version"] == alone["model_version"]
    assert len(got["predictions"]) == len(alone["predictions"])
    for row, expected in zip(got["predictions"], alone["predictions"], strict=True):
        assert row.keys() == expected.keys()
        for key, value in expected.items():
            if isinstance(value, dict):
                for stat, number in value.items():
                    assert row[key][stat] == pytest.approx(number, rel=1e-9, abs=1e-12), key
            else:
                assert row[key] == value, key


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(
    make_settings: Callable[..., Settings], surrogate: Any
) -> None:
    app = create_app(make_settings(), model=surrogate)
    payloads = bodies(24, seed=5)
    alone = asyncio.run(post(app, payloads, at_once=False))
    together = asyncio.run(post(app, payloads, at_once=True))
    for got, expected in zip(together, alone, strict=True):
        assert got.status_code == expected.status_code == 200
        assert_same_answer(got.json(), expected.json())
    # each request counts its own candidates; ids and conditioning are its own
    first = together[1].json()["predictions"]
    assert [row["index"] for row in first] == list(range(len(payloads[1]["candidates"])))
    assert first[0]["candidate_id"] == "powder-1"
    batcher: PredictBatcher = app.state.predict_batcher
    assert max(batcher.batch_sizes) > 1  # requests were answered together
    assert sum(batcher.batch_sizes) == 2 * len(payloads)


def test_a_non_finite_prediction_fails_only_the_request_it_belongs_to(
    make_settings: Callable[..., Settings], surrogate: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = surrogate.predict_arrays
    poisoned = 0.4321

    def nan_for_one_design(X: Any, level: float = 0.9, **kwargs: Any) -> Any:
        out = original(X, level=level, **kwargs)
        out.mean[(X["porosity"] == poisoned).to_numpy(), 0] = math.nan
        return out

    monkeypatch.setattr(surrogate, "predict_arrays", nan_for_one_design)
    app = create_app(make_settings(), model=surrogate)
    payloads = bodies(8, seed=9)
    payloads[3]["candidates"][0]["porosity"] = poisoned
    responses = asyncio.run(post(app, payloads, at_once=True))
    assert [r.status_code for r in responses] == [503 if k == 3 else 200 for k in range(8)]
    assert "non-finite mean" in responses[3].json()["detail"]
    assert max(app.state.predict_batcher.batch_sizes) > 1


def test_a_failing_batch_answers_every_request_in_it_503_and_the_next_batch_works(
    make_settings: Callable[..., Settings], surrogate: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from poreml.api import service

    app = create_app(make_settings(), model=surrogate)
    original = service.prediction_records
    monkeypatch.setattr(
        service, "prediction_records", lambda *a, **k: (_ for _ in ()).throw(KeyError("a bug"))
    )
    responses = asyncio.run(post(app, bodies(6, seed=2), at_once=True))
    assert {r.status_code for r in responses} == {503}
    assert all("KeyError" in r.json()["detail"] for r in responses)
    monkeypatch.setattr(service, "prediction_records", original)
    assert {r.status_code for r in asyncio.run(post(app, bodies(6, seed=2), at_once=True))} == {200}


def test_a_lone_request_is_answered_without_waiting_for_others(
    make_settings: Callable[..., Settings], surrogate: Any
) -> None:
    app = create_app(make_settings(), model=surrogate)
    (response,) = asyncio.run(post(app, bodies(1, seed=3), at_once=True))
    assert response.status_code == 200
    assert list(app.state.predict_batcher.batch_sizes) == [1]


def test_too_many_candidates_is_refused_before_batching(
    make_settings: Callable[..., Settings], surrogate: Any
) -> None:
    app = create_app(make_settings(api_max_candidates=2), model=surrogate)
    payloads = bodies(4, seed=4)  # 1, 2, 3 and 1 candidates
    responses = asyncio.run(post(app, payloads, at_once=True))
    assert [r.status_code for r in responses] == [200, 200, 413, 200]
    assert sum(app.state.predict_batcher.batch_sizes) == 3
