"""Shared fixtures of the surrogate tests: virtual-lab data and small, fast model settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from poreml.design.search_space import SearchSpace
from poreml.surrogates import TARGETS
from poreml.virtual_lab.lab import VirtualLab

Frames = tuple[pd.DataFrame, pd.DataFrame]

_FAST: dict[str, dict[str, object]] = {
    "gp": {"fit_maxiter": 40},
    "ensemble": {"n_members": 3, "hidden_sizes": (16, 16), "epochs": 40, "patience": 10},
    "trees": {"n_estimators": 25},
    "ridge": {},
    "mean": {},
    "cascade": {
        "stage1_params": {"fit_maxiter": 40},
        "stage2_params": {"fit_maxiter": 40},
    },
}


_CONTRACT_BOX = SearchSpace.contract_box()
"""The one design sampler's space: every design column at its contract bounds."""


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """pytest-xdist runs one worker per core: one torch thread each avoids oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _lab_data(n: int, seed: int, instance_seed: int | None = None) -> Frames:
    designs = _CONTRACT_BOX.sample(n, seed=seed)
    measured = VirtualLab(instance_seed=instance_seed).measure(designs, seed=seed + 1000)
    return designs, measured[list(TARGETS)].reset_index(drop=True)


def _lab_truth(n: int, seed: int, instance_seed: int | None = None) -> Frames:
    designs = _CONTRACT_BOX.sample(n, seed=seed)
    truth = VirtualLab(instance_seed=instance_seed).evaluate(designs)
    return designs, truth[list(TARGETS)].reset_index(drop=True)


@pytest.fixture(scope="session")
def fast() -> dict[str, dict[str, object]]:
    """Per registered model, settings that keep it quick in tests."""
    return _FAST


@pytest.fixture(scope="session")
def lab_data() -> Callable[..., Frames]:
    """Factory ``(n, seed, instance_seed=None) -> (designs, noisy targets)`` (virtual lab)."""
    return _lab_data


@pytest.fixture(scope="session")
def lab_truth() -> Callable[..., Frames]:
    """Factory ``(n, seed, instance_seed=None) -> (designs, noise-free targets)``."""
    return _lab_truth


@pytest.fixture(scope="session")
def train_data() -> Frames:
    """24 noisy virtual-lab rows (baseline scenario)."""
    return _lab_data(24, seed=0)


@pytest.fixture(scope="session")
def test_designs() -> pd.DataFrame:
    """12 other designs, with a non-default index (predictions must keep it)."""
    designs = _CONTRACT_BOX.sample(12, seed=77)
    designs.index = pd.RangeIndex(100, 112)
    return designs


def _unit_cube_decode(X: torch.Tensor) -> dict[str, torch.Tensor]:
    codes = (X[..., 8:9] * 2.999).floor()  # [0, 1] -> route code 0, 1 or 2
    return _CONTRACT_BOX.decode(torch.cat([X[..., :8], codes], dim=-1))


@pytest.fixture(scope="session")
def decode() -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    """Test ``decode``: ``X`` in [0, 1]^9 (``b × q × 9``) → designs inside the contract bounds.

    Columns 0-7 are the continuous design columns (log scale where declared), column 8 picks
    the route.
    """
    return _unit_cube_decode


def _same_predictions(got: Any, want: Any, rtol: float = 1e-9) -> None:
    assert got.targets == want.targets
    for stat in ("mean", "std", "lower", "upper", "domain_distance"):
        np.testing.assert_allclose(getattr(got, stat), getattr(want, stat), rtol=rtol, atol=0)
    np.testing.assert_array_equal(got.in_domain, want.in_domain)
    np.testing.assert_array_equal(got.conditioned_on, want.conditioned_on)


@pytest.fixture(scope="session")
def same_predictions() -> Callable[..., None]:
    """``(got, want, rtol=1e-9)``: asserts two ``predict_arrays`` results agree: moments and
    bounds to ``rtol`` (relative), domain distance too, the flags and ``conditioned_on``
    equal."""
    return _same_predictions


@pytest.fixture
def real_like() -> pd.DataFrame:
    """A literature-like table: 12 references x 3 rows, sparse design cells, ICE by route."""
    n_refs, per_ref, seed = 12, 3, 0
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(n_refs):
        route = ["bottom_up", "top_down", "transcription"][r % 3]
        for k in range(per_ref):
            rows.append(
                {
                    "id": f"S{r}-{k}",
                    "reference": f"Author {r}; J. {2000 + r}",
                    "route": route if rng.random() > 0.2 else None,
                    "porosity": rng.uniform(0.1, 0.7) if rng.random() > 0.7 else np.nan,
                    "ice_pct": {"bottom_up": 75, "top_down": 82, "transcription": 88}[route]
                    + rng.normal(0, 2),
                    "retention_pct": rng.uniform(60, 95) if k == 0 else np.nan,
                }
            )
    return pd.DataFrame(rows)
