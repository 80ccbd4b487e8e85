"""The service layer: chunked and combined model calls give the surrogate's own predictions."""

from __future__ import annotations

import io
import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest

from poreml.api import service
from poreml.api.errors import ModelUnavailableError
from poreml.data.schema import DESIGN_COLUMNS
from poreml.data.validation import validate_designs


def design_frame(n: int, seed: int) -> pd.DataFrame:
    """``n`` validated space-filling designs."""
    from poreml.design.search_space import SearchSpace

    return validate_designs(SearchSpace.contract_box().sample(n, seed=seed))


def assert_matches_surrogate(pred: service.Predictions, surrogate: Any, X: pd.DataFrame) -> None:
    expected = surrogate.predict_interval(X[list(DESIGN_COLUMNS)], level=0.9)
    for j, target in enumerate(pred.targets):
        for stat in ("mean", "std", "lower", "upper"):
            np.testing.assert_allclose(
                getattr(pred, stat)[:, j], expected[target][stat].to_numpy(), rtol=1e-10
            )
    assert pred.in_domain.tolist() == surrogate.in_domain(X[list(DESIGN_COLUMNS)]).tolist()
    np.testing.assert_allclose(
        pred.domain_distance, surrogate.domain_distance(X[list(DESIGN_COLUMNS)]), rtol=1e-12
    )


@pytest.fixture
def counted_calls(surrogate: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Row counts of every model call made through the service."""
    calls: list[int] = []
    original = surrogate.predict_arrays

    def counting(designs: pd.DataFrame, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(designs))
        return original(designs, *args, **kwargs)

    monkeypatch.setattr(surrogate, "predict_arrays", counting)
    return calls


def test_a_large_request_is_predicted_in_chunks_with_identical_results(
    surrogate: Any, counted_calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "CHUNK_ROWS", 4)
    X = design_frame(10, seed=2)
    pred = service.served_model(surrogate).predict(X)
    assert counted_calls == [4, 4, 2]
    assert_matches_surrogate(pred, surrogate, X)


def test_concurrent_requests_share_model_calls_and_get_their_own_rows(
    surrogate: Any, counted_calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "CHUNK_ROWS", 9)
    model = service.served_model(surrogate)
    frames = [design_frame(1 + k % 4, seed=10 + k) for k in range(16)]
    results: dict[int, service.Predictions] = {}
    gate = threading.Barrier(len(frames))

    def request(k: int) -> None:
        gate.wait()
        results[k] = model.predict(frames[k])

    threads = [threading.Thread(target=request, args=(k,)) for k in range(len(frames))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(results) == list(range(len(frames)))
    for k, frame in enumerate(frames):
        assert_matches_surrogate(results[k], surrogate, frame)
    assert sum(counted_calls) == sum(len(f) for f in frames)
    assert max(counted_calls) <= 9
    assert len(counted_calls) < len(frames)  # requests were combined


def test_a_failed_model_call_fails_only_its_requests(
    surrogate: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = service.served_model(surrogate)
    monkeypatch.setattr(
        surrogate, "predict_arrays", lambda *a, **k: (_ for _ in ()).throw(MemoryError("oom"))
    )
    with pytest.raises(ModelUnavailableError, match="MemoryError: oom"):
        model.predict(design_frame(3, seed=1))
    monkeypatch.undo()
    X = design_frame(3, seed=1)
    assert_matches_surrogate(model.predict(X), surrogate, X)


def test_records_and_csv_put_the_domain_distance_before_the_flag(surrogate: Any) -> None:
    X = design_frame(4, seed=3)
    pred = service.served_model(surrogate).predict(X)
    frame = X[list(DESIGN_COLUMNS)]
    records = service.prediction_records(frame, pred)
    keys = list(records[0])
    assert keys[-2:] == ["domain_distance", "in_domain"]
    assert [r["domain_distance"] for r in records] == pred.domain_distance.tolist()
    table = pd.read_csv(io.StringIO(service.predictions_csv(frame, pred)))
    assert list(table.columns[len(frame.columns) : len(frame.columns) + 2]) == [
        "domain_distance",
        "in_domain",
    ]
    np.testing.assert_allclose(table["domain_distance"], pred.domain_distance, rtol=1e-12)


# ---- the served champion-like model ----------------------------------------------------------


def characterised_candidates(n: int, seed: int) -> list[Any]:
    """``n`` validated candidates, some carrying measured SSA, tap density or both."""
    from poreml.api.schemas import PredictRequest

    records = design_frame(n, seed).to_dict("records")
    for k, record in enumerate(records, start=seed):
        if k % 3 == 1:
            record["ssa_m2_g"] = 20.0 + 7.0 * k % 300
        if k % 4 == 2:
            record["tap_density_g_cm3"] = 0.4 + 0.01 * (k % 50)
    return PredictRequest.model_validate({"candidates": records}).candidates


def characterised_frame(n: int, seed: int) -> pd.DataFrame:
    """:func:`characterised_candidates` as the request's frame."""
    return service.candidates_frame(characterised_candidates(n, seed), n)


def assert_reference_numbers(pred: service.Predictions, surrogate: Any, X: pd.DataFrame) -> None:
    """``pred`` holds what the surrogate predicts for ``X`` through GPyTorch's reference path
    with every input checked, to 1e-9 relative."""
    from poreml.surrogates.gp import reference_predictions

    with reference_predictions():
        want = surrogate.predict_arrays(X.drop(columns=["candidate_id"]), level=0.9)
    order = [want.targets.index(t) for t in pred.targets]
    for stat in ("mean", "std", "lower", "upper"):
        np.testing.assert_allclose(
            getattr(pred, stat), getattr(want, stat)[:, order], rtol=1e-9, atol=0
        )
    np.testing.assert_allclose(pred.domain_distance, want.domain_distance, rtol=1e-9, atol=0)
    assert pred.in_domain.tolist() == want.in_domain.tolist()
    assert [";".join(c) for c in pred.conditioned_on] == want.conditioned_on.tolist()


@pytest.mark.parametrize("n", [1, 2, 300])
def test_a_served_cascade_answers_with_the_reference_paths_numbers(
    cascade_surrogate: Any, n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "CHUNK_ROWS", 128)  # 300 rows: three model calls
    model = service.served_model(cascade_surrogate)
    frames = [design_frame(n, seed=n).assign(candidate_id=None)]
    frames += [characterised_frame(n, seed) for seed in (1, 2)]  # SSA; tap density (n = 1)
    for X in frames:
        assert_reference_numbers(model.predict(X), cascade_surrogate, X)


def test_batched_requests_with_different_measured_columns_get_the_reference_numbers(
    cascade_surrogate: Any,
) -> None:
    model = service.served_model(cascade_surrogate)
    requests = [characterised_candidates(1 + k % 3, seed=40 + k) for k in range(8)]
    frames = [service.candidates_frame(c, len(c)) for c in requests]
    answers = service.predict_many(model, requests)
    for frame, answer in zip(frames, answers, strict=True):
        assert isinstance(answer, list)
        alone = model.predict(frame)
        for j, target in enumerate(alone.targets):
            for stat in ("mean", "std", "lower", "upper"):
                got = [row[target][stat] for row in answer]
                np.testing.assert_allclose(got, getattr(alone, stat)[:, j], rtol=1e-9, atol=0)
        assert [row["conditioned_on"] for row in answer] == [list(c) for c in alone.conditioned_on]
        assert_reference_numbers(alone, cascade_surrogate, frame)


def test_serving_a_model_builds_its_caches_before_the_first_request(
    cascade_surrogate: Any, tmp_path
) -> None:
    from poreml.surrogates import load

    loaded = load(cascade_surrogate.save(tmp_path / "cascade"))
    assert loaded.stage2_._posterior_caches_ is None
    service.served_model(loaded)
    assert loaded.stage1_._posterior_caches_ is not None
    assert loaded.stage2_._posterior_caches_ is not None
