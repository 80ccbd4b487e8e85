"""Integration tests against the team services: a MLflow tracking server and PostgreSQL.

Start them with ``make services`` (``scripts/services.sh start``) and export their settings
(``source .services/env``), then run ``make integration``. Without them every test here is
skipped; with ``POREML_REQUIRE_SERVICES=1`` (CI) unreachable services are an error instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

REPO = Path(__file__).resolve().parents[2]

HOW_TO_START = (
    "start them with `make services` and `source .services/env` (or run the unit tests only)"
)

COMMAND_TIMEOUT_S = 180
"""Longest a single ``poreml`` command may run before the test fails (no hung CI jobs)."""


@dataclass(frozen=True)
class Services:
    """Where the running team services are.

    Attributes:
        tracking_uri: the MLflow server (``http://127.0.0.1:PORT``).
        optuna_storage: SQLAlchemy URL of the Optuna database.
        campaign_storage: SQLAlchemy URL of the campaign database (may be empty).
    """

    tracking_uri: str
    optuna_storage: str
    campaign_storage: str

    def rest(self, endpoint: str, payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Call the MLflow REST API (``/api/2.0/mlflow/<endpoint>``): GET, or POST ``payload``."""
        url = f"{self.tracking_uri}/api/2.0/mlflow/{endpoint}"
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            url, data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def search_runs(self, experiment: str) -> list[dict[str, Any]]:
        """Every run of ``experiment`` over REST, each with its tags as a dict under ``tags``."""
        found = self.rest(f"experiments/get-by-name?experiment_name={experiment}")
        body = {"experiment_ids": [found["experiment"]["experiment_id"]], "max_results": 1000}
        runs = self.rest("runs/search", body).get("runs", [])
        for run in runs:
            run["tags"] = {t["key"]: t["value"] for t in run["data"].get("tags", [])}
        return runs


def _unavailable(tracking_uri: str, optuna_storage: str) -> str | None:
    """Why the services cannot be used, or None when both answer."""
    if not tracking_uri.startswith(("http://", "https://")):
        return f"POREML_TRACKING_URI is not an http URL ({tracking_uri or 'unset'})"
    try:
        with urllib.request.urlopen(f"{tracking_uri}/health", timeout=5) as response:
            response.read()
    except (urllib.error.URLError, OSError) as err:
        return f"MLflow server {tracking_uri} does not answer /health ({err})"
    if not optuna_storage.startswith("postgresql"):
        return f"POREML_OPTUNA_STORAGE is not a PostgreSQL URL ({optuna_storage or 'unset'})"
    try:
        engine = sqlalchemy.create_engine(optuna_storage, connect_args={"connect_timeout": 5})
        try:
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as err:  # driver missing, refused, bad password: all mean "not usable"
        return f"PostgreSQL at POREML_OPTUNA_STORAGE is not reachable ({type(err).__name__}: {err})"
    return None


@pytest.fixture(scope="session")
def services() -> Services:
    """The running services; skips (or fails with ``POREML_REQUIRE_SERVICES=1``) without them."""
    tracking_uri = os.environ.get("POREML_TRACKING_URI", "")
    optuna_storage = os.environ.get("POREML_OPTUNA_STORAGE", "")
    reason = _unavailable(tracking_uri, optuna_storage)
    if reason is not None:
        message = f"team services not available: {reason}; {HOW_TO_START}"
        if os.environ.get("POREML_REQUIRE_SERVICES") == "1":
            pytest.fail(f"POREML_REQUIRE_SERVICES=1 but {message}", pytrace=False)
        pytest.skip(message)
    return Services(
        tracking_uri=tracking_uri.rstrip("/"),
        optuna_storage=optuna_storage,
        campaign_storage=os.environ.get("POREML_CAMPAIGN_STORAGE", ""),
    )


@pytest.fixture(autouse=True)
def _require_services(services: Services) -> None:
    """Every test in this folder needs the services (skip / error decided once per session)."""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh working directory; no embedded store may appear in it (everything goes to the
    services)."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    local = tmp_path / ".poreml"
    stray = sorted(p.name for p in local.iterdir()) if local.is_dir() else []
    assert not [s for s in stray if s.startswith(("mlflow", "mlartifacts"))], stray


class PoremlCli:
    """Runs the public ``poreml`` command in subprocesses pointed at the services.

    The console script next to this interpreter is used (the project's ``.venv/bin/poreml``),
    with this checkout first on ``PYTHONPATH`` and one BLAS thread per process.
    """

    def __init__(self, services: Services) -> None:
        self.services = services
        script = Path(sys.executable).with_name("poreml")
        self.command = (
            [str(script)]
            if script.is_file()
            else [sys.executable, "-c", "from poreml.cli import main; main()"]
        )

    def env(self) -> dict[str, str]:
        """Environment of a ``poreml`` subprocess."""
        env = dict(os.environ)
        env.update(
            POREML_TRACKING_URI=self.services.tracking_uri,
            POREML_OPTUNA_STORAGE=self.services.optuna_storage,
            PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            OMP_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
            MPLBACKEND="Agg",
            MLFLOW_DISABLE_TELEMETRY="true",
        )
        return env

    def start(self, args: Sequence[str], cwd: Path) -> subprocess.Popen[str]:
        """Start ``poreml ARGS`` in ``cwd`` without waiting (stdout and stderr captured)."""
        return subprocess.Popen(
            [*self.command, *args],
            cwd=cwd,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, proc: subprocess.Popen[str], args: Sequence[str]) -> str:
        """Wait (bounded) for a started command; fail the test unless it exits 0.

        Returns:
            Its standard output.
        """
        try:
            out, err = proc.communicate(timeout=COMMAND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"poreml {' '.join(args)} ran past {COMMAND_TIMEOUT_S} s\n{err[-3000:]}")
        assert proc.returncode == 0, (
            f"poreml {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{out[-3000:]}\nstderr:\n{err[-3000:]}"
        )
        return out

    def run(self, args: Sequence[str], cwd: Path) -> str:
        """Run ``poreml ARGS`` in ``cwd`` to the end; fail the test unless it exits 0."""
        return self.finish(self.start(args, cwd), args)


@pytest.fixture(scope="session")
def poreml(services: Services) -> PoremlCli:
    """The ``poreml`` command line, pointed at the services."""
    return PoremlCli(services)
