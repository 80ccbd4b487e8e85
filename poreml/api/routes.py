"""The endpoints of CONTRACT.md §4: thin wrappers around :mod:`poreml.api.service`.

Request bodies are validated by the models of :mod:`poreml.api.schemas` before a route runs.
Routes that call the model are plain ``def`` functions, so FastAPI runs them in its thread
pool and a long screen does not block the event loop; ``/v1/predict`` (JSON) is the exception:
its requests are batched together on the event loop (:mod:`poreml.api.batching`) and each
batch runs in the thread pool.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

from poreml.api import service
from poreml.api.batching import PredictBatcher
from poreml.api.errors import ModelUnavailableError, TooManyCandidatesError
from poreml.api.schemas import (
    ErrorResponse,
    ExplainResponse,
    HealthResponse,
    ModelInfo,
    PredictRequest,
    PredictResponse,
    ScreenRequest,
    ScreenResponse,
)
from poreml.settings import Settings

__all__ = ["health_router", "v1_router"]

CSV_MEDIA_TYPE = "text/csv"

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {
        "model": ErrorResponse,
        "description": "POREML_API_TOKEN is set and the bearer token is missing or wrong",
    },
    413: {
        "model": ErrorResponse,
        "description": "more candidates, or a larger body, than the server accepts",
    },
    422: {"model": ErrorResponse, "description": "invalid input: detail names field and value"},
    503: {"model": ErrorResponse, "description": "the model could not answer"},
}


# The dependencies are coroutines: FastAPI would run plain functions in its thread pool, one
# hop per dependency per request.


async def get_model(request: Request) -> service.ServedModel:
    """The served model, loaded at start-up (503 if start-up did not load one)."""
    model = getattr(request.app.state, "model", None)
    if model is None:
        raise ModelUnavailableError("no model is loaded: the server did not finish starting")
    return model


async def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


async def get_batcher(
    request: Request, model: service.ServedModel = Depends(get_model)
) -> PredictBatcher:
    """The app's :class:`~poreml.api.batching.PredictBatcher` of the served model."""
    batcher = getattr(request.app.state, "predict_batcher", None)
    if batcher is None or batcher.model is not model:
        batcher = request.app.state.predict_batcher = PredictBatcher(model)
    return batcher


LARGE_ANSWER = 256
"""Candidates above which a JSON predict answer is serialised in the thread pool, not on the
event loop (a 10,000-candidate answer takes tens of milliseconds to render)."""


health_router = APIRouter(tags=["health"])


@health_router.get("/healthz", response_model=HealthResponse, summary="Liveness check")
async def healthz() -> dict[str, str]:
    """Always ``{"status": "ok"}`` while the process serves requests (no token needed)."""
    return {"status": "ok"}


def v1_router(require_token: bool) -> APIRouter:
    """The ``/v1`` endpoints.

    Args:
        require_token: document the bearer token in the OpenAPI schema. The token itself is
            checked by :class:`~poreml.api.security.BearerTokenMiddleware` before the body is
            read; the scheme here only parses the header for the docs' "Authorize" button.
    """
    dependencies = [Security(HTTPBearer(auto_error=False))] if require_token else []
    router = APIRouter(prefix="/v1", tags=["model"], dependencies=dependencies, responses=_ERRORS)

    @router.get("/model", response_model=ModelInfo, summary="The served model")
    def model_info(model: service.ServedModel = Depends(get_model)) -> Any:
        """Model name, version, targets, design columns with their trained ranges, training
        row count and sha256 of the training data."""
        return model.info

    @router.post(
        "/predict",
        response_model=PredictResponse,
        summary="Predict candidates",
        responses={200: {"content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}}}},
    )
    async def predict(
        body: PredictRequest,
        request: Request,
        model: service.ServedModel = Depends(get_model),
        settings: Settings = Depends(get_settings),
        batcher: PredictBatcher = Depends(get_batcher),
    ) -> Response:
        """Mean, standard deviation and 90 % interval of every target for each candidate,
        whether it lies in the model's training domain, and its design with defaults filled.
        ``Accept: text/csv`` answers CSV."""
        n = len(body.candidates)
        if n > settings.api_max_candidates:
            raise TooManyCandidatesError(n, settings.api_max_candidates)
        if wants_csv(request.headers.get("accept")):
            return await run_in_threadpool(_predict_csv, model, body.candidates, n)
        content = {
            "model_version": model.version,
            "predictions": await batcher.answer(body.candidates),
        }
        if n > LARGE_ANSWER:
            return await run_in_threadpool(JSONResponse, content)
        return JSONResponse(content)

    @router.post(
        "/screen",
        response_model=ScreenResponse,
        summary="Rank candidates by predicted Pareto rank",
        responses={200: {"content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}}}},
    )
    def screen(
        body: ScreenRequest,
        request: Request,
        model: service.ServedModel = Depends(get_model),
        settings: Settings = Depends(get_settings),
    ) -> Response:
        """The ``top_k`` candidates by Pareto rank of the predicted means (1 = front), ties
        broken by the probability that every constraint holds. ``Accept: text/csv`` answers
        CSV."""
        frame = service.candidates_frame(body.candidates, settings.api_max_candidates)
        ranked, pred = service.screen(
            model, frame, body.parsed_objectives, body.parsed_constraints, body.top_k
        )
        if wants_csv(request.headers.get("accept")):
            return Response(service.predictions_csv(ranked, pred), media_type=CSV_MEDIA_TYPE)
        return JSONResponse(
            {
                "model_version": model.version,
                "n_screened": len(frame),
                "objectives": {
                    o.name: {"direction": o.direction, "threshold": o.threshold}
                    for o in body.parsed_objectives
                },
                "constraints": {c.name: str(c) for c in body.parsed_constraints},
                "candidates": service.prediction_records(ranked, pred),
            }
        )

    @router.post("/explain", response_model=ExplainResponse, summary="Explain predictions")
    def explain(
        body: PredictRequest,
        model: service.ServedModel = Depends(get_model),
        settings: Settings = Depends(get_settings),
    ) -> Response:
        """Per candidate and target, the exact Shapley values of the predicted mean over the
        design columns: ``base_value + sum(contributions)`` is the ``mean`` of
        ``/v1/predict``. About ``2**9 * 16`` model rows per candidate, so batches are capped
        at ``POREML_API_MAX_EXPLAIN_CANDIDATES`` (413 above it)."""
        frame = service.candidates_frame(
            body.candidates,
            settings.api_max_explain_candidates,
            "POREML_API_MAX_EXPLAIN_CANDIDATES",
        )
        return JSONResponse(service.explain(model, frame))

    return router


def _predict_csv(model: service.ServedModel, candidates: list[Any], n: int) -> Response:
    frame, pred = service.predict(model, service.candidates_frame(candidates, n))
    return Response(service.predictions_csv(frame, pred), media_type=CSV_MEDIA_TYPE)


def wants_csv(accept: str | None) -> bool:
    """Whether an ``Accept`` header prefers ``text/csv`` to JSON (q-values honoured; ties and
    wildcards go to JSON, the default)."""
    if not accept:
        return False
    best_csv, best_json = 0.0, 0.0
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        if media == CSV_MEDIA_TYPE:
            best_csv = max(best_csv, q)
        elif media in ("application/json", "application/*", "*/*"):
            best_json = max(best_json, q)
    return best_csv > best_json
