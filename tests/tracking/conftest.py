"""Fixtures of the tracking tests: a temporary MLflow store and a small fitted surrogate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from poreml.data.schema import DESIGN_COLUMNS


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """POREML_HOME in a temporary folder (default SQLite MLflow store inside).

    One store for the whole session: creating an MLflow database (schema migrations) is the
    slowest step of these tests. Tests that need a fresh registry use their own model name.
    """
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("POREML_HOME", str(home))
        mp.delenv("POREML_TRACKING_URI", raising=False)
        mp.delenv("POREML_ARTIFACT_LOCATION", raising=False)
        yield home


@pytest.fixture(scope="session")
def vl_data() -> pd.DataFrame:
    """48 noisy virtual-lab rows (seed 0)."""
    from poreml.surrogates.evaluation import virtual_lab_data

    return virtual_lab_data(48, seed=0)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, vl_data: pd.DataFrame) -> Path:
    """A saved ridge surrogate on every target."""
    from poreml.surrogates.base import TARGETS
    from poreml.surrogates.registry import make

    model = make("ridge").fit(vl_data[list(DESIGN_COLUMNS)], vl_data[list(TARGETS)])
    return model.save(tmp_path_factory.mktemp("model") / "ridge")
