"""``poreml serve`` as a real process on a loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

POREML = [sys.executable, "-c", "from poreml.cli import main; main()"]
"""The ``poreml`` console script, run with this interpreter."""

START_TIMEOUT_S = 120.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without POREML_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POREML_")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``poreml serve`` on a free loopback port; yields its base URL, stops it afterwards."""
    port = free_port()
    log = (tmp_path_factory.mktemp("serve") / "server.log").open("w+")
    proc = subprocess.Popen(
        [*POREML, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        env=clean_env(POREML_MODEL_DIR=str(model_dir)),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"poreml serve exited with {proc.returncode}:\n{log.read()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"poreml serve did not answer /healthz within {START_TIMEOUT_S} s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
        log.close()


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
