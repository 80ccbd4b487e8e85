"""`poreml lab`: measure (CSV round trip), demo, scenarios."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from poreml.cli.lab import app
from poreml.data.schema import DESIGN_COLUMNS, MEASURED_COLUMNS
from poreml.exceptions import ConfigError, DataValidationError, PoremlError

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]

DESIGNS_CSV = (
    ",".join(("candidate_id", *DESIGN_COLUMNS))
    + """
T0,bottom_up,30,0.4,0.3,40,60,5,8,0
T8,transcription,2,0.3,0.95,50,5,8,8,0
T13,transcription,20,0.3,0.5,40,20,5,10,0
"""
)
# spec section 8.1, noise-free baseline
GOLDEN = {
    "T0": {"tap_density_g_cm3": 0.7677, "ice_pct": 77.43, "retention_pct": 88.25},
    "T8": {"ssa_m2_g": 21.13, "expansion_pct": 53.01, "strain_buffering": 0.2998},
    "T13": {"specific_capacity_mah_g": 2033, "volumetric_capacity_mah_cm3": 1164},
}


@pytest.fixture
def designs_csv(tmp_path: Path) -> Path:
    path = tmp_path / "designs.csv"
    path.write_text(DESIGNS_CSV)
    return path


def _measure(*args: str) -> object:
    return runner.invoke(app, ["measure", *args])


def test_measure_round_trips_through_csv(designs_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "results.csv"
    result = _measure(str(designs_csv), "--out", str(out), "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "3 designs measured" in result.output and "noise seed 3" in result.output
    df = pd.read_csv(out)
    assert list(df.columns) == ["candidate_id", *DESIGN_COLUMNS, *MEASURED_COLUMNS, "feasible"]
    assert df["candidate_id"].tolist() == ["T0", "T8", "T13"]
    assert df["feasible"].tolist() == [True, True, True]
    assert df["porosity"].tolist() == [0.4, 0.3, 0.3]  # as requested


def test_no_noise_reproduces_the_golden_values(designs_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "clean.csv"
    result = _measure(str(designs_csv), "--out", str(out), "--no-noise")
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out).set_index("candidate_id")
    for cid, values in GOLDEN.items():
        for col, want in values.items():
            assert df.loc[cid, col] == pytest.approx(want, rel=1e-3), (cid, col)


def test_seed_makes_measurements_reproducible(designs_csv: Path, tmp_path: Path) -> None:
    paths = [tmp_path / f"{name}.csv" for name in ("a", "b", "c")]
    for path, seed in zip(paths, ("11", "11", "12"), strict=True):
        assert _measure(str(designs_csv), "--out", str(path), "--seed", seed).exit_code == 0
    a, b, c = (pd.read_csv(p) for p in paths)
    pd.testing.assert_frame_equal(a, b)
    assert not a["ice_pct"].equals(c["ice_pct"])


def test_without_seed_the_noise_seed_is_reported(designs_csv: Path, tmp_path: Path) -> None:
    result = _measure(str(designs_csv), "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 0
    seed = result.output.split("noise seed ")[1].split(")")[0]
    again = tmp_path / "again.csv"
    assert _measure(str(designs_csv), "--out", str(again), "--seed", seed).exit_code == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "r.csv"), pd.read_csv(again))


def test_scenario_instance_and_extra_options(designs_csv: Path, tmp_path: Path) -> None:
    base, other = tmp_path / "base.csv", tmp_path / "other.csv"
    assert _measure(str(designs_csv), "--out", str(base), "--no-noise").exit_code == 0
    result = _measure(
        str(designs_csv),
        "--out",
        str(other),
        "--no-noise",
        "--scenario",
        "no_FEC",
        "--instance-seed",
        "2",
        "--extra",
    )
    assert result.exit_code == 0, result.output
    assert "scenario no_FEC, instance 2" in result.output
    a, b = pd.read_csv(base), pd.read_csv(other)
    assert "fracture_probability" in b.columns and "fracture_probability" not in a.columns
    assert not a["retention_pct"].equals(b["retention_pct"])


def test_ids_are_generated_when_absent(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("porosity,route\n0.2,bottom_up\n0.3,top_down\n")
    out = tmp_path / "out.csv"
    assert _measure(str(path), "--out", str(out), "--no-noise").exit_code == 0
    df = pd.read_csv(out)
    assert df["candidate_id"].tolist() == ["VL-0001", "VL-0002"]
    assert df["shell_nm"].tolist() == [5.0, 5.0]  # contract default


def test_a_bad_file_fails_with_one_message_naming_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "route,pore_size_nm,porosity,si_domain_nm\n"
        "bottom_up,20,1.4,50\n"
        "top_down,-5,0.3,50\n"
        "sideways,20,0.3,50\n"
        "transcription,20,0.3,NaN\n"
    )
    out = tmp_path / "out.csv"
    result = _measure(str(bad), "--out", str(out))
    assert isinstance(result.exception, DataValidationError)
    message = str(result.exception)
    assert "bad.csv" in message and "4 problems" in message
    for needle in ("porosity", "1.4", "pore_size_nm", "-5", "sideways", "si_domain_nm", "NaN"):
        assert needle in message
    assert not out.exists()


def test_unknown_scenario_and_missing_file_are_poreml_errors(
    designs_csv: Path, tmp_path: Path
) -> None:
    result = _measure(str(designs_csv), "--out", str(tmp_path / "o.csv"), "--scenario", "x")
    assert isinstance(result.exception, ConfigError)
    assert "no_FEC" in str(result.exception)
    missing = _measure(str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o.csv"))
    assert isinstance(missing.exception, PoremlError)


def test_console_entry_point_exits_2_with_a_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("porosity\n1.4\n")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from poreml.cli import main; main()",
            "lab",
            "measure",
            str(bad),
            "--out",
            str(tmp_path / "o.csv"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "porosity" in result.stderr and "1.4" in result.stderr


def test_demo_prints_reference_materials_and_a_space_filling_batch() -> None:
    result = runner.invoke(app, ["demo", "--n", "6", "--seed", "1"])
    assert result.exit_code == 0, result.output
    for needle in ("T1", "T7", "VL-0006", "bottom_up", "top_down", "transcription", "feasible"):
        assert needle in result.output
    assert "VL-0007" not in result.output
    again = runner.invoke(app, ["demo", "--n", "6", "--seed", "1"])
    assert again.output == result.output


def test_scenarios_lists_every_scenario() -> None:
    result = runner.invoke(app, ["scenarios"])
    assert result.exit_code == 0
    for name in ("baseline", "no_FEC", "full_cell_b15", "fast_charge_2C", "high_loading"):
        assert name in result.output
