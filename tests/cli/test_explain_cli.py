"""`poreml explain` through a Typer app (CliRunner) and through ``poreml.cli.main``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from poreml.cli import explain as explain_cli
from poreml.cli import models as models_cli
from poreml.data.schema import DESIGN_COLUMNS
from poreml.surrogates.base import TARGETS
from poreml.surrogates.evaluation import virtual_lab_data
from poreml.surrogates.registry import make

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    models_cli.register(app)
    explain_cli.register(app)
    return app


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trees on 48 virtual-lab rows, saved as a model folder."""
    data = virtual_lab_data(48, seed=2)
    model = make("trees", n_estimators=10).fit(data[list(DESIGN_COLUMNS)], data[list(TARGETS)])
    return model.save(tmp_path_factory.mktemp("models") / "trees")


@pytest.fixture(scope="module")
def infile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("in") / "designs.csv"
    path.write_text(
        "candidate_id,route,porosity,pore_size_nm,tap_density_g_cm3\n"
        "x1,bottom_up,0.3,8,0.6\n"
        "x2,top_down,0.5,40,\n"
    )
    return path


def test_explain_writes_long_form_rows_that_add_up_to_predict_means(
    model_dir: Path, infile: Path, tmp_path: Path
) -> None:
    out, pred = tmp_path / "e.csv", tmp_path / "p.csv"
    result = runner.invoke(
        _app(), ["explain", str(infile), "--out", str(out), "--model-dir", str(model_dir)]
    )
    assert result.exit_code == 0, result.output
    assert "2 candidate(s) x 6 targets" in result.output
    done = runner.invoke(
        _app(), ["predict", str(infile), "--out", str(pred), "--model-dir", str(model_dir)]
    )
    assert done.exit_code == 0, done.output
    table = pd.read_csv(out)
    means = pd.read_csv(pred).set_index("candidate_id")
    assert list(table.columns) == ["candidate_id", "target", "column", "contribution"]
    assert len(table) == 2 * len(TARGETS) * (1 + len(DESIGN_COLUMNS))
    for (cid, target), block in table.groupby(["candidate_id", "target"]):
        assert list(block["column"]) == ["base_value", *DESIGN_COLUMNS]
        mean = means.loc[cid, f"{target}_mean"]
        assert abs(block["contribution"].sum() - mean) <= 1e-6 * abs(mean), (cid, target)


def test_bad_input_exits_2_naming_the_cell(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import poreml.cli as cli

    monkeypatch.setattr(cli, "app", _app())
    bad = tmp_path / "bad.csv"
    bad.write_text("candidate_id,route,porosity\nok,bottom_up,0.3\nbroken,bottom_up,1.7\n")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(
            ["explain", str(bad), "--out", str(tmp_path / "o.csv"), "--model-dir", str(model_dir)]
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "column 'porosity'" in err and "1.7" in err
    assert not (tmp_path / "o.csv").exists()


def test_explain_is_a_command_of_the_poreml_app() -> None:
    from poreml.cli import app

    result = runner.invoke(app, ["explain", "--help"])
    assert result.exit_code == 0 and "--model-uri" in result.output
