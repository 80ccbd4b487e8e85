"""``poreml ui``: the MLflow UI on poreml's tracking store, stopped together with poreml.

``mlflow ui`` is a launcher: it starts a uvicorn server, which may start workers of its own.
:func:`ui` runs it in a process group of its own, forwards SIGTERM, SIGINT and SIGHUP to the
whole group, waits for it, and on every way out (a signal, an error, the server exiting by
itself) terminates whatever is left of the group, with SIGKILL after :data:`STOP_GRACE_S`. On
Linux the launcher also gets SIGTERM when poreml dies without a chance to clean up (SIGKILL).

Before starting, poreml's experiments already in the store are marked as model-development
experiments (:func:`~poreml.tracking.mlflow_tracker.ensure_experiment`) and their links are
printed with the query that opens the UI's "Machine learning" view on their runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from types import FrameType

import typer

from poreml.exceptions import PoremlError

__all__ = ["STOP_GRACE_S", "UiError", "register", "run_server_group", "stop_group", "ui"]

STOP_GRACE_S = 10.0
"""Seconds the server group gets to exit after SIGTERM before it is killed."""

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
"""Signals that stop ``poreml ui`` and are passed on to the MLflow server's process group."""


class UiError(PoremlError, RuntimeError):
    """``poreml ui`` cannot start or its MLflow server failed."""


def ui(
    port: int = typer.Option(5000, "--port", min=1, max=65535, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface (keep it local)."),
    workers: int = typer.Option(
        1, "--workers", min=1, max=64, help="Server worker processes (one is plenty for a person)."
    ),
) -> None:
    """Run the MLflow UI on the configured tracking store (POREML_TRACKING_URI).

    MLflow's background job runner (GenAI judges and scorers) is off unless
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION says otherwise: poreml logs no traces, and the runner's
    consumer processes make the UI slow to start.

    Stops the MLflow server it started when stopped itself (Ctrl-C, ``kill``, a closed
    terminal). Exits 0 after Ctrl-C and 128 + signal number after SIGTERM or SIGHUP.
    """
    from poreml.settings import get_settings
    from poreml.tracking.mlflow_tracker import ensure_local_store

    uri = get_settings().resolved_tracking_uri
    ensure_local_store(uri)
    _check_port_free(host, port)
    links = _experiment_links(uri, f"http://{host}:{port}")
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    env = dict(os.environ)
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    typer.echo(f"MLflow UI on http://{host}:{port} (store {uri}); Ctrl-C to stop")
    for name, link in links.items():
        typer.echo(f"  {name}: {link}")
    code, stopped_by = run_server_group(cmd, env=env)
    if stopped_by is not None:
        raise typer.Exit(0 if stopped_by == signal.SIGINT else 128 + stopped_by)
    if code != 0:
        raise UiError(
            f"`mlflow ui` exited with code {code}; is port {port} free? Try --port {port + 1}."
        )


def run_server_group(
    cmd: list[str], *, env: dict[str, str] | None = None
) -> tuple[int, int | None]:
    """Run ``cmd`` in a new process group until it exits or a forwarded signal stops it.

    Args:
        cmd: the command line.
        env: its environment (default: this process's).

    Returns:
        ``(exit code of cmd, the signal that stopped poreml or None)``. Whatever happens, no
        process of the group is left when this returns.
    """
    received: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signum)

    proc = subprocess.Popen(cmd, env=env, start_new_session=True, preexec_fn=_die_with_parent)
    previous: dict[int, Callable[..., object] | int | None] = {}
    try:
        for sig in FORWARDED_SIGNALS:
            previous[sig] = signal.signal(sig, forward)
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop_group(proc)
    return code, (received[0] if received else None)


def stop_group(proc: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """Terminate every process of ``proc``'s process group; SIGKILL what outlives ``grace_s``.

    Args:
        proc: the group leader, started with ``start_new_session=True``.
        grace_s: seconds between SIGTERM and SIGKILL.
    """
    pgid = proc.pid
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, grace_s)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and _group_alive(proc):
            time.sleep(0.05)
        if not _group_alive(proc):
            break
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)


def _group_alive(proc: subprocess.Popen[bytes]) -> bool:
    """Whether any process of ``proc``'s group is still there (the leader is reaped here)."""
    proc.poll()
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _group_has_live_members(proc.pid)


def _group_has_live_members(pgid: int) -> bool:
    """False when every process of group ``pgid`` is a zombie (exited, waiting to be reaped).

    Orphaned members are reaped by init, not by poreml; until then ``killpg(pgid, 0)`` still
    finds them although they run nothing. Without ``/proc`` every member counts as live.
    """
    proc_root = "/proc"
    if not os.path.isdir(proc_root):
        return True
    for entry in os.listdir(proc_root):
        if not entry.isdigit():
            continue
        try:
            with open(f"{proc_root}/{entry}/stat", encoding="utf-8", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        # fields after the command name (in parentheses): state ppid pgrp ...
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _die_with_parent() -> None:
    """In the child: get SIGTERM when poreml dies (Linux ``PR_SET_PDEATHSIG``; else nothing)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _check_port_free(host: str, port: int) -> None:
    """Fail with a clear message when ``host:port`` cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            raise UiError(
                f"cannot listen on {host}:{port} ({err.strerror or err}); another server may "
                f"be using the port. Try --port {port + 1}."
            ) from err


def _experiment_links(uri: str, base_url: str) -> dict[str, str]:
    """Mark poreml's experiments in the store as model development; their UI links.

    Experiments not in the store yet are not created (they are, marked, on first use).

    Returns:
        experiment name -> URL of its runs table in the "Machine learning" view.
    """
    from poreml.tracking.mlflow_tracker import (
        CAMPAIGN_EXPERIMENT,
        ML_WORKFLOW_QUERY,
        SURROGATE_EXPERIMENT,
        MlflowTracker,
        ensure_experiment,
    )

    client = MlflowTracker(tracking_uri=uri).client
    links: dict[str, str] = {}
    for name in (SURROGATE_EXPERIMENT, CAMPAIGN_EXPERIMENT):
        try:
            if client.get_experiment_by_name(name) is None:
                continue
            experiment_id = ensure_experiment(client, name)
        except Exception as err:  # the UI is still useful on a store poreml cannot tag
            typer.echo(f"poreml: warning: cannot mark experiment {name!r}: {err}", err=True)
            continue
        links[name] = f"{base_url}/#/experiments/{experiment_id}/runs?{ML_WORKFLOW_QUERY}"
    return links


def register(app: typer.Typer) -> None:
    """Add ``ui`` to ``app`` as a top-level command."""
    app.command("ui")(ui)
