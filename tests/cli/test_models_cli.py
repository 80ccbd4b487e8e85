"""`poreml train | evaluate | predict` through a Typer app (CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from poreml.cli.models import register
from poreml.data.schema import DESIGN_COLUMNS
from poreml.exceptions import DataValidationError
from poreml.surrogates.base import TARGETS

runner = CliRunner()
INTERVAL_COLUMNS = [f"{t}_{s}" for t in TARGETS for s in ("mean", "std", "lower", "upper")]


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _invoke(*args: str):
    return runner.invoke(_app(), list(args))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ridge surrogate trained by `poreml train` on 64 virtual-lab rows (no tracking)."""
    out = tmp_path_factory.mktemp("models") / "ridge"
    result = _invoke(
        "train",
        "--model",
        "ridge",
        "--n",
        "64",
        "--n-test",
        "64",
        "--no-track",
        "--no-register",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    return out


def test_train_writes_model_metadata_and_card(model_dir: Path) -> None:
    assert {"config.json", "tensors.pt", "metadata.json", "MODEL_CARD.md"} <= {
        p.name for p in model_dir.iterdir()
    }
    meta = json.loads((model_dir / "metadata.json").read_text())
    assert meta["model"] == "ridge" and meta["model_name"] == "poreml-surrogate"
    assert meta["targets"] == list(TARGETS)
    assert list(meta["design_columns"]) == list(DESIGN_COLUMNS)
    assert meta["design_columns"]["route"]["values"] == ["bottom_up", "top_down", "transcription"]
    pore = meta["design_columns"]["pore_size_nm"]
    assert 0.5 <= pore["min"] < pore["max"] <= 1000
    assert meta["training"]["rows"] == 64 and len(meta["training"]["sha256"]) == 64
    assert set(meta["metrics"]["per_target"]) == set(TARGETS)
    assert meta["rebuild_command"].startswith(
        "poreml train --model ridge --data virtual-lab --n 64"
    )
    card = (model_dir / "MODEL_CARD.md").read_text()
    assert "## Training data" in card and "## Limits" in card and meta["training"]["sha256"] in card


def test_predict_writes_every_target_with_intervals(model_dir: Path, tmp_path: Path) -> None:
    designs = pd.DataFrame(
        {
            "route": ["bottom_up", "transcription", "top_down"],
            "porosity": [0.3, 0.2, 0.5],
            "pore_size_nm": [50.0, 5.0, 5000.0],  # the last is far outside the trained range
        }
    )
    infile = tmp_path / "designs.csv"
    designs.to_csv(infile, index=False)
    out = tmp_path / "pred.csv"
    result = _invoke("predict", str(infile), "--out", str(out), "--model-dir", str(model_dir))
    assert result.exit_code == 0, result.output
    pred = pd.read_csv(out)
    assert list(pred.columns) == [
        "candidate_id",
        *DESIGN_COLUMNS,
        *INTERVAL_COLUMNS,
        "conditioned_on",
        "domain_distance",
        "in_domain",
    ]
    assert pred["candidate_id"].tolist() == ["P-0001", "P-0002", "P-0003"]
    assert pred["d50_um"].eq(10.0).all()  # left-out design columns at their defaults
    assert np.isfinite(pred[INTERVAL_COLUMNS].to_numpy()).all()
    for t in TARGETS:
        assert (pred[f"{t}_lower"] < pred[f"{t}_mean"]).all()
        assert (pred[f"{t}_mean"] < pred[f"{t}_upper"]).all()
    assert pred["in_domain"].tolist() == [True, True, False]
    assert pred["domain_distance"].iloc[2] > 1.0
    assert "1 outside the training domain" in result.output


def test_predict_rejects_bad_values_naming_them(model_dir: Path, tmp_path: Path) -> None:
    infile = tmp_path / "bad.csv"
    infile.write_text(
        "candidate_id,route,porosity,carbon_wt_pct\na,bottom_up,1.5,40\nb,foo,0.3,abc\n"
    )
    result = _invoke(
        "predict", str(infile), "--out", str(tmp_path / "o.csv"), "--model-dir", str(model_dir)
    )
    assert isinstance(result.exception, DataValidationError)
    message = str(result.exception)
    for part in (
        "bad.csv",
        "row 1, column 'porosity'",
        "1.5",
        "row 2, column 'route'",
        "'foo'",
        "'abc'",
    ):
        assert part in message
    assert not (tmp_path / "o.csv").exists()


def test_errors_reach_the_user_as_exit_code_2(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import poreml.cli as cli

    monkeypatch.setattr(cli, "app", _app())
    infile = tmp_path / "bad.csv"
    infile.write_text("route,porosity\nbottom_up,-0.1\n")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(
            [
                "predict",
                str(infile),
                "--out",
                str(tmp_path / "o.csv"),
                "--model-dir",
                str(model_dir),
            ]
        )
    assert exit_info.value.code == 2
    assert "column 'porosity'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["predict", str(infile), "--out", "o.csv", "--model-dir", str(tmp_path / "none")])
    assert exit_info.value.code == 2


def test_missing_model_folder_says_how_to_build_one(tmp_path: Path) -> None:
    infile = tmp_path / "d.csv"
    infile.write_text("route\nbottom_up\n")
    result = _invoke(
        "predict", str(infile), "--out", str(tmp_path / "o.csv"), "--model-dir", str(tmp_path)
    )
    assert "poreml train --model cascade --data virtual-lab" in str(result.exception)


def test_train_registers_and_promotes_only_a_better_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POREML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("POREML_TRACKING_URI", raising=False)
    monkeypatch.delenv("POREML_MODEL_URI", raising=False)
    common = ["--n", "48", "--n-test", "64", "--seed", "1"]
    good = _invoke("train", "--model", "ridge", *common, "--out", str(tmp_path / "ridge"))
    assert good.exit_code == 0, good.output
    assert "promoted to @champion (first registered version)" in good.output
    worse = _invoke("train", "--model", "mean", *common, "--out", str(tmp_path / "mean"))
    assert worse.exit_code == 0, worse.output
    assert "v2: not promoted" in worse.output
    meta = json.loads((tmp_path / "mean" / "metadata.json").read_text())
    assert meta["registered_version"] == "2"
    infile = tmp_path / "d.csv"
    infile.write_text("candidate_id,route\nx,bottom_up\n")
    out = tmp_path / "p.csv"
    result = _invoke(
        "predict",
        str(infile),
        "--out",
        str(out),
        "--model-uri",
        "models:/poreml-surrogate@champion",
    )
    assert result.exit_code == 0, result.output
    by_uri = pd.read_csv(out)
    local = _invoke(
        "predict",
        str(infile),
        "--out",
        str(tmp_path / "l.csv"),
        "--model-dir",
        str(tmp_path / "ridge"),
    )
    assert local.exit_code == 0
    pd.testing.assert_frame_equal(by_uri, pd.read_csv(tmp_path / "l.csv"))  # champion = ridge


def test_evaluate_writes_tables_and_plots(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    routes = ["bottom_up", "top_down", "transcription"]
    rows = [
        {
            "id": f"S{i}",
            "reference": f"Paper {i // 2}",
            "route": routes[i % 3],
            "ice_pct": 75 + 5 * (i % 3) + rng.normal(0, 1),
        }
        for i in range(30)
    ]
    real = tmp_path / "real.csv"
    pd.DataFrame(rows).to_csv(real, index=False)
    out = tmp_path / "results"
    result = _invoke(
        "evaluate",
        "--model",
        "ridge",
        "--real",
        str(real),
        "--sizes",
        "16,32",
        "--instance-seeds",
        "",
        "--n-test",
        "40",
        "--no-track",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {
        "surrogate_real_metrics.csv",
        "surrogate_real_metrics.md",
        "surrogate_real_calibration.csv",
        "surrogate_learning_curves.csv",
        "surrogate_parity.png",
        "surrogate_calibration.png",
        "surrogate_learning_curves.png",
    } <= names
    metrics = pd.read_csv(out / "surrogate_real_metrics.csv")
    assert set(metrics["model"]) == {"ridge", "mean"}
    assert "skipped" in result.output  # targets with < 15 rows are listed


def test_a_tracked_training_run_logs_global_explanations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from poreml.surrogates.base import TARGETS

    monkeypatch.setenv("POREML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("POREML_TRACKING_URI", raising=False)
    args = ["--model", "ridge", "--n", "32", "--n-test", "32", "--no-register"]
    result = _invoke("train", *args, "--out", str(tmp_path / "m"))
    assert result.exit_code == 0, result.output
    from poreml.settings import get_settings

    client = MlflowClient(get_settings().resolved_tracking_uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == "poreml-surrogates"]
    (run,) = client.search_runs([experiment.experiment_id])
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"explanation_importance.csv", "partial_dependence.csv"} <= names
    assert {f"partial_dependence_{t}.png" for t in TARGETS} <= names
    table = pd.read_csv(client.download_artifacts(run.info.run_id, "explanation_importance.csv"))
    assert set(table["target"]) == set(TARGETS)


# ---- characterised candidates (CONTRACT.md §4.1) ------------------------------------------


@pytest.fixture(scope="module")
def cascade_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cascade trained by `poreml train --model cascade` on 48 virtual-lab rows."""
    out = tmp_path_factory.mktemp("models") / "cascade"
    result = _invoke(
        "train",
        "--model",
        "cascade",
        "--n",
        "48",
        "--n-test",
        "40",
        "--param",
        'stage1_params={"fit_maxiter": 30}',
        "--param",
        'stage2_params={"fit_maxiter": 30}',
        "--no-track",
        "--no-register",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    return out


def test_predict_conditions_on_measured_columns_in_the_csv(
    cascade_dir: Path, tmp_path: Path
) -> None:
    infile = tmp_path / "made.csv"
    infile.write_text(
        "candidate_id,route,porosity,ssa_m2_g,tap_density_g_cm3,ice_pct\n"
        "a,transcription,0.3,20,0.8,\n"
        "b,transcription,0.3,80,,\n"
        "c,transcription,0.3,,,\n"
    )
    out = tmp_path / "pred.csv"
    result = _invoke("predict", str(infile), "--out", str(out), "--model-dir", str(cascade_dir))
    assert result.exit_code == 0, result.output
    pred = pd.read_csv(out, keep_default_na=False)
    assert pred["conditioned_on"].tolist() == ["tap_density_g_cm3;ssa_m2_g", "ssa_m2_g", ""]
    assert pred.loc[1, "ice_pct_mean"] < pred.loc[0, "ice_pct_mean"]  # more surface, less ICE
    assert pred["ssa_m2_g"].tolist() == ["20.0", "80.0", ""]  # measured inputs echoed


def test_predict_rejects_out_of_range_measured_values_naming_them(
    cascade_dir: Path, tmp_path: Path
) -> None:
    infile = tmp_path / "bad.csv"
    infile.write_text("candidate_id,route,ssa_m2_g,tap_density_g_cm3\na,bottom_up,50,4.5\n")
    result = _invoke(
        "predict", str(infile), "--out", str(tmp_path / "o.csv"), "--model-dir", str(cascade_dir)
    )
    assert result.exit_code != 0
    err = result.exception
    assert isinstance(err, DataValidationError)
    assert "tap_density_g_cm3" in str(err) and "4.5" in str(err) and "bad.csv" in str(err)


def test_predict_with_a_model_that_cannot_condition_lists_nothing(
    model_dir: Path, tmp_path: Path
) -> None:
    infile = tmp_path / "made.csv"
    infile.write_text("route,porosity,ssa_m2_g\ntranscription,0.3,20\n")
    out = tmp_path / "pred.csv"
    result = _invoke("predict", str(infile), "--out", str(out), "--model-dir", str(model_dir))
    assert result.exit_code == 0, result.output
    pred = pd.read_csv(out, keep_default_na=False)
    assert pred["conditioned_on"].tolist() == [""]


def test_an_unreachable_optuna_storage_is_named_with_its_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POREML_OPTUNA_STORAGE", "postgresql+psycopg://u:secret@127.0.0.1:1/x")
    args = ["--model", "ridge", "--n", "24", "--n-test", "16", "--tune", "--n-trials", "1"]
    result = _invoke("train", *args, "--no-track", "--no-register", "--out", str(tmp_path / "m"))
    assert result.exit_code != 0
    msg = str(result.exception)
    assert "Optuna storage postgresql+psycopg://u:***@127.0.0.1:1/x" in msg
    assert "POREML_OPTUNA_STORAGE" in msg and "secret" not in msg
