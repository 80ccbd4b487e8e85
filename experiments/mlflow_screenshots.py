"""Screenshots of the MLflow UI as a user sees it, on a fresh store, in headless Chromium.

Creates a temporary ``POREML_HOME``, runs two short virtual-lab campaigns (``poreml campaign
init --fast`` + ``run --rounds 2``) and ``poreml train --model gp --data virtual-lab --n 32``,
starts ``poreml ui`` on a free loopback port and saves PNGs of

* ``experiments.png``: the experiments list,
* ``campaign_runs.png``: the campaign experiment's runs table (two parent runs, distinct names),
* ``parent_hypervolume.png``: a campaign parent run's metric charts (one point per round),
* ``parent_hypervolume_plot.png``: ``hypervolume`` against round of both parent runs,
* ``campaign_compare.png``: the two parent runs side by side (full names, params, metrics),
* ``registered_model.png``: the ``poreml-surrogate`` registered model page,

to ``experiments/results/mlflow_ui/`` (plus ``urls.json``: what each PNG shows). Everything it
started is stopped on the way out. Needs ``chromium`` (Debian: ``apt-get install chromium``).

Run::

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python experiments/mlflow_screenshots.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "experiments" / "results" / "mlflow_ui"
CONFIG = ROOT / "experiments" / "campaign_td_vs_buffering.toml"
WORKFLOW = "workflowType=machine_learning"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _poreml(env: dict[str, str], *args: str) -> None:
    cmd = [sys.executable, "-c", "from poreml.cli import main; main()", *args]
    print("$ poreml", " ".join(args), flush=True)
    subprocess.run(cmd, env=env, check=True, cwd=ROOT)


def _wait_http(url: str, timeout_s: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"poreml ui exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"no HTTP 200 from {url} within {timeout_s:.0f} s")


def _q(values: list[str] | str) -> str:
    """A value as the URL-quoted JSON the MLflow UI's routes take."""
    return urllib.parse.quote(json.dumps(values, separators=(",", ":")))


def _screenshot(chromium: str, url: str, path: Path, profile: Path, budget_ms: int) -> None:
    cmd = [
        chromium,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--run-all-compositor-stages-before-draw",
        f"--user-data-dir={profile}",
        "--window-size=1400,900",
        f"--virtual-time-budget={budget_ms}",
        f"--screenshot={path}",
        url,
    ]
    subprocess.run(cmd, check=True, timeout=180, capture_output=True)
    print(f"{path.name}: {url}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Build the store, start the UI, take the screenshots, stop everything."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--budget-ms", type=int, default=30000, help="virtual time per page")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="poreml-mlflow-ui-") as tmp:
        work = Path(tmp)
        env = dict(os.environ)
        env.pop("POREML_TRACKING_URI", None)
        env.pop("POREML_ARTIFACT_LOCATION", None)
        env.update(
            POREML_HOME=str(work / "home"),
            MLFLOW_DISABLE_TELEMETRY="true",
            OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
            MPLBACKEND="Agg",
            PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
        )
        for lab in ("lab-a", "lab-b"):
            folder = work / "campaigns" / lab
            _poreml(env, "campaign", "init", str(folder), "--config", str(CONFIG), "--fast")
            _poreml(env, "campaign", "run", str(folder), "--oracle", "virtual-lab", "--rounds", "2")
        _poreml(
            env, "train", "--model", "gp", "--data", "virtual-lab", "--n", "32",
            "--out", str(work / "models" / "gp"),
        )  # fmt: skip

        os.environ["POREML_HOME"] = env["POREML_HOME"]
        os.environ.pop("POREML_TRACKING_URI", None)
        from mlflow import MlflowClient

        from poreml.settings import get_settings
        from poreml.tracking.mlflow_tracker import CAMPAIGN_EXPERIMENT

        uri = get_settings().resolved_tracking_uri
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        campaigns = client.get_experiment_by_name(CAMPAIGN_EXPERIMENT)
        parents = client.search_runs(
            [campaigns.experiment_id], "tags.`poreml.kind` = 'campaign'", order_by=["start_time"]
        )
        models = client.search_registered_models()
        print("parent runs:", [r.info.run_name for r in parents], flush=True)

        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        ui = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from poreml.cli import main; main()",
                "ui",
                "--port",
                str(port),
            ],
            env=env,
            cwd=ROOT,
        )
        try:
            _wait_http(f"{base}/", 300, ui)
            exp = campaigns.experiment_id
            parent = parents[-1].info.run_id
            ids = [r.info.run_id for r in parents]
            pages = {
                "experiments.png": f"{base}/#/experiments?{WORKFLOW}",
                "campaign_runs.png": f"{base}/#/experiments/{exp}/runs?{WORKFLOW}",
                "parent_hypervolume.png": (
                    f"{base}/#/experiments/{exp}/runs/{parent}/model-metrics?{WORKFLOW}"
                ),
                "parent_hypervolume_plot.png": (
                    f"{base}/#/metric/?runs={_q(ids)}&metric={_q('hypervolume')}"
                    f"&experiments={_q([exp])}&plot_metric_keys={_q(['hypervolume'])}"
                    "&plot_layout=%7B%7D&x_axis=step&y_axis_scale=linear&line_smoothness=1"
                    f"&show_point=true&deselected_curves=%5B%5D&last_linear_y_axis_range=%5B%5D"
                    f"&{WORKFLOW}"
                ),
                "campaign_compare.png": (
                    f"{base}/#/compare-runs?runs={_q(ids)}&experiments={_q([exp])}&{WORKFLOW}"
                ),
                "registered_model.png": f"{base}/#/models/{models[0].name}?{WORKFLOW}",
            }
            profile = work / "chromium"
            for name, url in pages.items():
                _screenshot(args.chromium, url, args.out / name, profile, args.budget_ms)
            (args.out / "urls.json").write_text(
                json.dumps(
                    {
                        "pages": {
                            k: v.replace(base, "http://127.0.0.1:<port>") for k, v in pages.items()
                        },
                        "parent_runs": [r.info.run_name for r in parents],
                        "registered_models": [m.name for m in models],
                    },
                    indent=2,
                )
                + "\n",
                encoding="utf-8",
            )
        finally:
            if ui.poll() is None:
                ui.send_signal(signal.SIGTERM)
                try:
                    ui.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    ui.kill()
                    ui.wait()


if __name__ == "__main__":
    main()
