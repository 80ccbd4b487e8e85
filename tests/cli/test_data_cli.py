"""`poreml data validate` through the real console entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _poreml(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from poreml.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def test_validate_reports_every_bad_cell_and_exits_non_zero(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "candidate_id,route,pore_size_nm,porosity\na,bottom_up,-3,1.4\nb,sideways,NaN,0.2\n"
    )
    result = _poreml("data", "validate", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    for needle in ("bad.csv", "4 problems", "porosity", "1.4", "pore_size_nm", "-3", "sideways"):
        assert needle in result.stderr
    assert "NaN" in result.stderr


def test_validate_accepts_the_curated_dataset() -> None:
    result = _poreml("data", "validate", str(REPO / "datasets" / "porous_sic.csv"))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = _poreml("data", "validate", str(tmp_path / "nope.csv"))
    assert result.returncode == 2
    assert "no such file" in result.stderr
