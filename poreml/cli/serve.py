"""``poreml serve``: run the prediction API (CONTRACT.md §4) with uvicorn.

:func:`register` adds :func:`serve` to the top-level app as ``poreml serve``. The model is
loaded before the server starts, so a missing or broken model is a one-paragraph error with
exit code 2 (through :func:`poreml.cli.main`), not a traceback from inside uvicorn. FastAPI and
uvicorn are imported inside the command so that ``poreml --help`` stays fast.

``--workers N`` runs N uvicorn worker processes that share the port; each builds the app with
:func:`poreml.api.app.create_app` and loads the model once. The command still loads the model
first (the clear error), then hands the workers the model it checked: the folder as an absolute
path, or the registry URI pinned to the version an alias named at start-up, so every worker
serves the same version even if the alias moves while they start.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from poreml.exceptions import ConfigError

__all__ = ["register", "serve", "tcp_socket", "worker_environment"]


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
            help="torch intra-op threads per model call (default: torch's choice with one "
            "worker, 1 with several). 1 is often fastest when the CPUs are shared.",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Server processes sharing the port, each with its own copy of the model "
            "(about one per CPU core).",
        ),
    ] = 1,
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
    if workers == 1:
        uvicorn.run(
            create_app(settings, model=model),
            host=host,
            port=port,
            log_level=log_level,
            access_log=access_log,
        )
        return
    os.environ.update(worker_environment(settings.model_uri, info, settings.model_dir))
    if settings.model_uri is None:
        os.environ.pop("POREML_MODEL_URI", None)
    # spawned workers read their torch threads from the environment when torch loads
    os.environ["OMP_NUM_THREADS"] = str(torch_threads or 1)
    del model  # each worker loads its own
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "poreml.api.app:create_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
    )
    # uvicorn binds a worker socket as socket(family) (protocol 0), and asyncio sets
    # TCP_NODELAY only on connections of an IPPROTO_TCP socket: every keep-alive answer then
    # waited ~40 ms for the client's delayed ACK. Binding it here with the TCP protocol keeps
    # Nagle off in the workers, as in the single-process server.
    Multiprocess(config, sockets=[tcp_socket(host, port)]).run()


def tcp_socket(host: str, port: int) -> socket.socket:
    """A bound TCP listening socket (IPv6 when ``host`` is an IPv6 address), ``SO_REUSEADDR``.

    Raises:
        ConfigError: the address cannot be bound (in use, or not an address of this machine).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {err.strerror or err}. Fix: choose another "
            "--port or stop what uses it"
        ) from None
    sock.set_inheritable(True)
    return sock


def worker_environment(
    model_uri: str | None, info: Mapping[str, Any], model_dir: Path
) -> dict[str, str]:
    """The settings that make every worker load the model the command checked.

    Args:
        model_uri: the URI asked for (None: serve ``model_dir``).
        info: the loaded model's ``GET /v1/model`` answer (its ``source`` is the pinned URI).
        model_dir: the folder asked for.

    Returns:
        ``POREML_MODEL_URI`` (pinned) or ``POREML_MODEL_DIR`` (absolute).
    """
    if model_uri is not None:
        return {"POREML_MODEL_URI": str(info["source"])}
    return {"POREML_MODEL_DIR": str(Path(model_dir).resolve())}


def register(app: typer.Typer) -> None:
    """Add :func:`serve` to ``app`` as the top-level command ``serve``."""
    app.command("serve")(serve)
