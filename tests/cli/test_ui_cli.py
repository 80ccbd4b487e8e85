"""`poreml ui`: the MLflow UI on the configured store, stopped together with poreml."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from poreml.cli import ui as ui_cli

runner = CliRunner()
START_TIMEOUT_S = 120.0
"""Bound on the MLflow server's start (schema migrations of a new SQLite store included)."""
STOP_TIMEOUT_S = 30.0
"""Bound on everything being gone after SIGTERM (the stop grace is 10 s)."""


def _app() -> typer.Typer:
    app = typer.Typer()
    ui_cli.register(app)
    app.command("noop", hidden=True)(lambda: None)  # keep `ui` a named sub-command
    return app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgrp) of a process from /proc, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2])


def _descendants(root: int) -> set[int]:
    """Every live process below ``root`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            parents[int(entry)] = stat[1]
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


@pytest.fixture
def no_links(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip reading the store for experiment links (creating a SQLite store takes seconds)."""
    monkeypatch.setattr(ui_cli, "_experiment_links", lambda uri, base_url: {})


def test_ui_runs_mlflow_on_the_configured_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_links: None
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setenv("POREML_TRACKING_URI", f"sqlite:///{tmp_path / 'm.db'}")
    monkeypatch.setattr(ui_cli, "run_server_group", lambda cmd, env: calls.append(cmd) or (0, None))
    port = _free_port()
    result = runner.invoke(_app(), ["ui", "--port", str(port)])
    assert result.exit_code == 0, result.output
    (cmd,) = calls
    assert cmd[1:4] == ["-m", "mlflow", "ui"]
    assert cmd[cmd.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path / 'm.db'}"
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--port") + 1] == str(port)
    assert cmd[cmd.index("--workers") + 1] == "1"


def test_ui_marks_existing_experiments_and_prints_their_runs_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from poreml.tracking.mlflow_tracker import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    monkeypatch.setenv("POREML_TRACKING_URI", uri)
    monkeypatch.setattr(ui_cli, "run_server_group", lambda cmd, env: (0, None))
    client = MlflowClient(tracking_uri=uri)
    old = client.create_experiment("poreml-campaigns")  # made before poreml set the kind
    port = _free_port()
    result = runner.invoke(_app(), ["ui", "--port", str(port)])
    assert result.exit_code == 0, result.output
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    link = f"http://127.0.0.1:{port}/#/experiments/{old}/runs?workflowType=machine_learning"
    assert f"poreml-campaigns: {link}" in result.output
    assert client.get_experiment_by_name("poreml-surrogates") is None  # not created


@pytest.mark.parametrize(
    ("outcome", "exit_code", "message"),
    [((0, signal.SIGINT), 0, ""), ((0, signal.SIGTERM), 143, ""), ((1, None), 1, "code 1")],
)
def test_ui_exit_codes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    outcome: tuple[int, int | None],
    exit_code: int,
    message: str,
    no_links: None,
) -> None:
    monkeypatch.setenv("POREML_TRACKING_URI", f"sqlite:///{tmp_path / 'm.db'}")
    monkeypatch.setattr(ui_cli, "run_server_group", lambda cmd, env: outcome)
    result = runner.invoke(_app(), ["ui", "--port", str(_free_port())])
    assert result.exit_code == exit_code
    if message:
        assert isinstance(result.exception, ui_cli.UiError)
        assert message in str(result.exception) and "--port" in str(result.exception)


def test_ui_refuses_a_busy_port_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_links: None
) -> None:
    monkeypatch.setenv("POREML_TRACKING_URI", f"sqlite:///{tmp_path / 'm.db'}")
    started: list[list[str]] = []
    monkeypatch.setattr(
        ui_cli, "run_server_group", lambda cmd, env: started.append(cmd) or (0, None)
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(_app(), ["ui", "--port", str(port)])
    assert isinstance(result.exception, ui_cli.UiError)
    assert f"127.0.0.1:{port}" in str(result.exception) and f"--port {port + 1}" in str(
        result.exception
    )
    assert started == []


def test_run_server_group_kills_children_that_ignore_sigterm() -> None:
    # a leader that exits on SIGTERM and a grandchild that ignores it
    script = (
        "import signal, subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(_descendants(proc.pid)) < 1:
        time.sleep(0.05)
    children = _descendants(proc.pid)
    assert children, "the grandchild did not start"
    ui_cli.stop_group(proc, grace_s=1.0)
    assert proc.returncode is not None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in children)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_kill_of_poreml_ui_stops_the_mlflow_server(tmp_path: Path) -> None:
    port = _free_port()
    env = dict(os.environ)
    env.pop("POREML_TRACKING_URI", None)
    env.update(
        POREML_HOME=str(tmp_path / "home"),
        MLFLOW_DISABLE_TELEMETRY="true",
        PYTHONPATH=os.pathsep.join([str(Path.cwd()), env.get("PYTHONPATH", "")]),
    )
    code = "from poreml.cli import main; main()"
    poreml = subprocess.Popen(
        [sys.executable, "-c", code, "ui", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + START_TIMEOUT_S
        status = None
        while time.monotonic() < deadline and poreml.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    status = response.status
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        assert status == 200, f"no HTTP 200 from {url} within {START_TIMEOUT_S:.0f} s"
        server = _descendants(poreml.pid)
        assert server, "poreml ui started no server process"
        assert all(_stat(pid)[2] != os.getpgid(poreml.pid) for pid in server if _stat(pid))

        poreml.send_signal(signal.SIGTERM)
        out, _ = poreml.communicate(timeout=STOP_TIMEOUT_S)
        assert poreml.returncode == 128 + signal.SIGTERM, out

        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline and (
            _listening(port) or any(_alive(pid) for pid in server)
        ):
            time.sleep(0.1)
        assert not _listening(port), f"port {port} still listens after the kill"
        left = sorted(pid for pid in server if _alive(pid))
        assert left == [], f"server processes left: {left}"
    finally:
        if poreml.poll() is None:
            poreml.kill()
            poreml.wait()
