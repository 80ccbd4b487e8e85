"""The FastAPI application factory.

::

    from poreml.api import create_app

    app = create_app()                          # settings from POREML_* variables
    app = create_app(settings, model=surrogate)  # tests: inject a fitted surrogate

The model is loaded once, when the application starts (its lifespan), unless one is injected;
a ``models:/NAME@ALIAS`` URI is resolved to the version the alias names at that moment, so the
server reports (and keeps serving) that version even when the alias moves later. Creating the
app does no I/O.

Interactive documentation works without internet access: ``/docs`` (Swagger UI) and ``/redoc``
load their scripts, stylesheet and icon from :data:`DOCS_STATIC_URL`, served by the app itself
from the files the ``fastapi-offline`` package ships, never from a CDN, and Swagger UI's online
validator badge is off.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from poreml import __version__
from poreml.api.errors import install_error_handlers
from poreml.api.routes import health_router, v1_router
from poreml.api.security import BearerTokenMiddleware, BodySizeLimitMiddleware
from poreml.api.service import ServedModel, load_model, served_model
from poreml.settings import Settings, get_settings

__all__ = ["DOCS_STATIC_URL", "create_app"]

DOCS_STATIC_URL = "/docs-static"
"""Where the app serves the Swagger UI and ReDoc assets (open like ``/docs``, no token)."""

_DESCRIPTION = """
Predictions and screening of porous Si–C anode particle designs (CONTRACT.md §4).

Designs use the column vocabulary of CONTRACT.md §1; design columns left out take their
contract defaults. Errors are JSON with a `detail` naming the offending field and value.
When the server has `POREML_API_TOKEN` set, `/v1/*` needs `Authorization: Bearer <token>`.
"""


def create_app(settings: Settings | None = None, model: Any = None) -> FastAPI:
    """Build the API application.

    Args:
        settings: runtime settings; read from the environment when None.
        model: the model to serve, a :class:`~poreml.api.service.ServedModel`, a
            :class:`~poreml.tracking.artifacts.ModelArtifact` or a fitted surrogate; when None,
            the model named by the settings (``model_uri``, else ``model_dir``) is loaded at
            start-up.

    Returns:
        The FastAPI app (run it with uvicorn, or ``poreml serve``).
    """
    settings = settings if settings is not None else get_settings()
    injected: ServedModel | None = None if model is None else served_model(model)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "model", None) is None:
            app.state.model = await run_in_threadpool(load_model, settings)
        yield

    # FastAPIOffline builds a FastAPI app whose /docs and /redoc pages reference the assets it
    # mounts at static_url (the CDN defaults are switched off).
    app = FastAPIOffline(
        title="poreml API",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        static_url=DOCS_STATIC_URL,
        # Swagger UI would otherwise fetch a validity badge from validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.settings = settings
    app.state.model = injected
    install_error_handlers(app)
    # Added last = runs first: the token is checked before the body size, and both before
    # the body is read.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(BearerTokenMiddleware, token=settings.api_token)
    app.include_router(health_router)
    app.include_router(v1_router(require_token=bool(settings.api_token)))
    return app
