"""`poreml train` / `predict` against the MLflow tracking server (PostgreSQL backend)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.integration

MODEL_NAME = "poreml-surrogate"


@pytest.fixture(scope="module")
def trained(poreml, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One `poreml train` against the server: its folder and its printed report."""
    folder = tmp_path_factory.mktemp("train")
    out = poreml.run(
        [
            "train",
            "--model",
            "gp",
            "--data",
            "virtual-lab",
            "--n",
            "32",
            "--n-test",
            "10",
            "--out",
            "model",
        ],
        folder,
    )
    return folder, out


def test_train_logs_registers_and_promotes_on_the_server(
    services, trained: tuple[Path, str]
) -> None:
    _, out = trained
    match = re.search(rf"registered {MODEL_NAME} v(\d+)", out)
    assert match, out
    version = match.group(1)

    # the version and its run, read back over the server's REST API
    mv = services.rest(f"model-versions/get?name={MODEL_NAME}&version={version}")
    run_id = mv["model_version"]["run_id"]
    run = services.rest(f"runs/get?run_id={run_id}")["run"]
    assert run["info"]["status"] == "FINISHED"
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params["model"] == "gp"
    assert params["n"] == "32"
    experiment = services.rest(f"experiments/get?experiment_id={run['info']['experiment_id']}")
    assert experiment["experiment"]["name"] == "poreml-surrogates"
    # artifacts are served by the server, not written next to the client
    assert experiment["experiment"]["artifact_location"].startswith("mlflow-artifacts:")

    # the @champion alias exists (on a fresh server it is this first version)
    alias = services.rest(f"registered-models/alias?name={MODEL_NAME}&alias=champion")
    assert int(alias["model_version"]["version"]) <= int(version)


def test_predict_loads_the_champion_through_the_server(
    poreml, trained: tuple[Path, str], workdir: Path
) -> None:
    from poreml.design.search_space import SearchSpace

    SearchSpace.contract_box().sample(5, 1).to_csv(workdir / "designs.csv", index=False)
    out = poreml.run(
        [
            "predict",
            "designs.csv",
            "--model-uri",
            f"models:/{MODEL_NAME}@champion",
            "--out",
            "pred.csv",
        ],
        workdir,
    )
    assert f"models:/{MODEL_NAME}@champion" in out
    pred = pd.read_csv(workdir / "pred.csv")
    assert len(pred) == 5
    assert {"candidate_id", "in_domain"} <= set(pred.columns)
    means = [c for c in pred.columns if c.endswith("_mean")]
    assert means
    assert pred[means].notna().all().all()


def test_serve_answers_with_the_champion_from_the_server(
    poreml, trained: tuple[Path, str], workdir: Path
) -> None:
    """``poreml serve`` with ``POREML_MODEL_URI=models:/…@champion`` on the tracking server."""
    import json
    import urllib.request

    from poreml.api.local import local_server

    env = {**poreml.env(), "POREML_MODEL_URI": f"models:/{MODEL_NAME}@champion"}
    with local_server(command=poreml.command, env=env, cwd=workdir, start_timeout=120) as server:
        base = server.url
        with urllib.request.urlopen(f"{base}/v1/model", timeout=30) as answer:
            info = json.load(answer)
        assert info["source"].startswith(f"models:/{MODEL_NAME}/")  # the alias, pinned
        assert info["training_rows"] == 32
        assert len(info["training_data_sha256"]) == 64
        request = urllib.request.Request(
            f"{base}/v1/predict",
            data=json.dumps({"candidates": [{"candidate_id": "a", "route": "top_down"}]}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            body = json.load(answer)
        assert body["model_version"] == info["version"]
        assert body["predictions"][0]["candidate_id"] == "a"
