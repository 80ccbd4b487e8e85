"""``poreml serve`` as a real process on a loopback port."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from poreml.api.local import SERVE_COMMAND, child_pids, free_port, local_server
from poreml.cli.serve import worker_environment
from poreml.exceptions import ConfigError

pytestmark = pytest.mark.slow

POREML = list(SERVE_COMMAND)
"""The ``poreml`` console script, run with this interpreter."""


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without POREML_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POREML_")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[str]:
    """``poreml serve`` on a free loopback port; yields its base URL, stops it afterwards."""
    with local_server(["--no-access-log"], env=clean_env(POREML_MODEL_DIR=str(model_dir))) as s:
        yield s.url


def test_served_process_answers_health_model_and_predict(server: str) -> None:
    assert httpx.get(f"{server}/healthz", timeout=10).json() == {"status": "ok"}
    assert httpx.get(f"{server}/v1/model", timeout=10).json()["version"] == "test-1"
    response = httpx.post(
        f"{server}/v1/predict",
        json={"candidates": [{"candidate_id": "a", "porosity": 0.4}]},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    (row,) = response.json()["predictions"]
    assert row["candidate_id"] == "a"
    assert row["ice_pct"]["lower"] <= row["ice_pct"]["upper"]
    bad = httpx.post(f"{server}/v1/predict", json={"candidates": [{"porosity": 9}]}, timeout=10)
    assert bad.status_code == 422


def test_serve_without_a_model_exits_2_with_a_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [*POREML, "serve", "--port", str(free_port()), "--model-dir", str(tmp_path)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "no saved surrogate here" in result.stderr
    assert "Traceback" not in result.stderr


def test_workers_each_serve_the_checked_model_and_stop_with_the_server(model_dir: Path) -> None:
    env = clean_env(POREML_MODEL_DIR=str(model_dir))
    with local_server(["--workers", "2", "--no-access-log"], env=env) as s:
        deadline = time.monotonic() + 60
        workers = _workers(s.process.pid)
        while len(workers) < 2 and time.monotonic() < deadline:  # both up, not just one
            time.sleep(0.2)
            workers = _workers(s.process.pid)
        assert len(workers) == 2, workers
        body = {"candidates": [{"candidate_id": "a", "porosity": 0.4}]}
        answers = [httpx.post(f"{s.url}/v1/predict", json=body, timeout=60) for _ in range(8)]
        assert {a.status_code for a in answers} == {200}
        # every worker loaded the same model: identical answers whichever process replied
        assert len({a.text for a in answers}) == 1
        assert httpx.get(f"{s.url}/v1/model", timeout=10).json()["version"] == "test-1"
    # the server's stop ended its workers (the supervisor waits for them)
    assert not [pid for pid in workers if _alive(pid)]


def _workers(pid: int) -> list[int]:
    """The worker processes of a ``poreml serve --workers`` (not multiprocessing's tracker)."""
    found = []
    for child in child_pids(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            found.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in state.lower()


def test_workers_get_the_folder_absolute_or_the_pinned_registry_version(tmp_path: Path) -> None:
    info = {"source": "models:/poreml-surrogate/7"}
    pinned = worker_environment("models:/poreml-surrogate@champion", info, Path("unused"))
    assert pinned == {"POREML_MODEL_URI": "models:/poreml-surrogate/7"}
    folder = worker_environment(None, {"source": "x"}, Path("models/champion"))
    assert folder == {"POREML_MODEL_DIR": str(Path("models/champion").resolve())}


def test_the_workers_socket_is_tcp_so_keep_alive_answers_skip_nagle() -> None:
    import socket

    from poreml.cli.serve import tcp_socket

    sock = tcp_socket("127.0.0.1", 0)
    try:
        # asyncio turns Nagle off (TCP_NODELAY) only on connections of an IPPROTO_TCP socket
        assert (sock.family, sock.type, sock.proto) == (
            socket.AF_INET,
            socket.SOCK_STREAM,
            socket.IPPROTO_TCP,
        )
        sock.listen()
        with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1"):
            tcp_socket("127.0.0.1", sock.getsockname()[1]).close()
    finally:
        sock.close()
