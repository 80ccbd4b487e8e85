"""Importing poreml is cheap and side-effect free: heavy stacks load only where used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "botorch", "mlflow", "fastapi", "optuna", "sklearn")


@pytest.mark.parametrize(
    "module",
    [
        "poreml",
        "poreml.data.schema",
        "poreml.data.validation",
        "poreml.design.config",
        "poreml.cli",
    ],
)
def test_light_modules_do_not_import_heavy_dependencies(module: str, tmp_path: Path) -> None:
    code = (
        f"import sys, {module}\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    assert list(tmp_path.iterdir()) == [], "importing created files"
