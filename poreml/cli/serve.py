"""``poreml serve``: run the prediction API (CONTRACT.md §4) with uvicorn.

:func:`register` adds :func:`serve` to the top-level app as ``poreml serve``. The model is
loaded before the server starts, so a missing or broken model is a one-paragraph error with
exit code 2 (through :func:`poreml.cli.main`), not a traceback from inside uvicorn. FastAPI and
uvicorn are imported inside the command so that ``poreml --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register", "serve"]


def serve(
    host: Annotated[
        str, typer.Option("--host", help="Interface to listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            "--model-dir", help="Saved model folder to serve (default: POREML_MODEL_DIR)."
        ),
    ] = None,
    model_uri: Annotated[
        str | None,
        typer.Option(
            "--model-uri",
            help="MLflow model URI to serve, e.g. models:/poreml-surrogate@champion "
            "(default: POREML_MODEL_URI); wins over --model-dir.",
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="uvicorn log level: debug, info, warning, error.")
    ] = "info",
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log every request.")
    ] = True,
    torch_threads: Annotated[
        int | None,
        typer.Option(
            "--torch-threads",
            min=1,
            help="torch intra-op threads per model call (default: torch's choice). 1 is "
            "often fastest when the CPUs are shared with other work.",
        ),
    ] = None,
) -> None:
    """Serve the prediction and screening API (docs at http://HOST:PORT/docs).

    Settings come from POREML_* variables: POREML_API_TOKEN (bearer token required on /v1/*),
    POREML_API_MAX_CANDIDATES, POREML_API_MAX_BODY_BYTES, POREML_MODEL_URI, POREML_MODEL_DIR.
    """
    import uvicorn

    from poreml.api.app import create_app
    from poreml.api.service import load_model
    from poreml.settings import get_settings

    overrides: dict[str, object] = {}
    if model_dir is not None:
        overrides["model_dir"] = model_dir
    if model_uri is not None:
        overrides["model_uri"] = model_uri
    settings = get_settings().model_copy(update=overrides)
    if torch_threads is not None:
        import torch

        torch.set_num_threads(torch_threads)
    model = load_model(settings)
    info = model.info
    typer.echo(
        f"poreml serve: model {info['name']} version {info['version']} ({info['model_type']}, "
        f"from {info['source']}) on http://{host}:{port}  (docs: /docs)",
        err=True,
    )
    uvicorn.run(
        create_app(settings, model=model),
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
    )


def register(app: typer.Typer) -> None:
    """Add :func:`serve` to ``app`` as the top-level command ``serve``."""
    app.command("serve")(serve)
