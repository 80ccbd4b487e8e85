"""``poreml serve`` as a child process on a loopback port, for benchmarks, suites and tests.

:func:`local_server` starts the real console command (so what is measured or tested is what a
lab runs), waits until ``GET /healthz`` answers 200, yields the running server, and always
stops it: SIGTERM (uvicorn shuts down, and with ``--workers`` stops its workers), then SIGKILL
after a grace period. A server that exits or does not become healthy in time raises
:class:`RuntimeError` with the end of its log.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "LOOPBACK",
    "SERVE_COMMAND",
    "LocalServer",
    "child_pids",
    "free_port",
    "healthy",
    "local_server",
]

LOOPBACK = "127.0.0.1"

SERVE_COMMAND: tuple[str, ...] = (sys.executable, "-c", "from poreml.cli import main; main()")
"""The ``poreml`` console command, run by this interpreter (works without the entry point)."""


@dataclass(frozen=True)
class LocalServer:
    """A running ``poreml serve``.

    Attributes:
        url: base URL, e.g. ``http://127.0.0.1:41234``.
        port: its TCP port.
        process: the ``poreml serve`` process (with ``--workers``, the workers' parent).
        log: file holding the server's stdout and stderr.
    """

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def healthy(port: int, timeout: float = 2.0) -> bool:
    """Whether ``GET /healthz`` on ``port`` answers 200."""
    try:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        finally:
            conn.close()
    except OSError:
        return False


@contextmanager
def local_server(
    args: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    cwd: Path | None = None,
    command: Sequence[str] = SERVE_COMMAND,
    start_timeout: float = 300.0,
    stop_timeout: float = 30.0,
) -> Iterator[LocalServer]:
    """Run ``poreml serve --host 127.0.0.1 --port FREE *args`` until the block ends.

    Args:
        args: further ``poreml serve`` options (``--model-dir``, ``--workers``, ...).
        env: the server's environment (default: this process's).
        log: file for the server's output (default: a temporary file, removed afterwards).
        cwd: the server's working directory.
        command: the ``poreml`` command to run (default: this interpreter's).
        start_timeout: seconds to wait for ``/healthz``.
        stop_timeout: seconds between SIGTERM and SIGKILL when stopping.

    Raises:
        RuntimeError: the server exited, or was not healthy within ``start_timeout``.
    """
    port = free_port()
    own_log = log is None
    path = Path(tempfile.mkstemp(prefix="poreml-serve-", suffix=".log")[1]) if own_log else log
    argv = [*command, "serve", "--host", LOOPBACK, "--port", str(port), *args]
    with path.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + start_timeout
        while not healthy(port):
            if proc.poll() is not None:
                raise RuntimeError(f"poreml serve exited with {proc.returncode}:\n{_tail(path)}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"poreml serve was not healthy within {start_timeout:g} s:\n{_tail(path)}"
                )
            time.sleep(0.2)
        yield LocalServer(f"http://{LOOPBACK}:{port}", port, proc, path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=stop_timeout)
        if own_log:
            path.unlink(missing_ok=True)


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-chars:]


def child_pids(pid: int) -> list[int]:
    """Direct children of process ``pid`` (Linux ``/proc``; empty elsewhere or when gone)."""
    found: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    if not task_dir.is_dir():
        return found
    for task in task_dir.iterdir():
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return sorted(set(found))
