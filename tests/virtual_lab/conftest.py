"""Shared fixtures of the virtual-lab tests: random designs over the spec's search box."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest


def _uniform_designs(n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` designs drawn as in spec section 9: route uniform, d and t_Si log-uniform."""
    rng = np.random.default_rng(seed)
    return {
        "route": rng.integers(0, 3, n),
        "pore_size_nm": 10 ** rng.uniform(np.log10(0.5), 3.0, n),
        "porosity": rng.uniform(0.0, 0.8, n),
        "closed_pore_fraction": rng.uniform(0.0, 1.0, n),
        "carbon_wt_pct": rng.uniform(2.0, 90.0, n),
        "si_domain_nm": 10 ** rng.uniform(0.0, np.log10(3000.0), n),
        "shell_nm": rng.uniform(0.0, 50.0, n),
        "d50_um": rng.uniform(2.0, 25.0, n),
        "graphitic_fraction": rng.uniform(0.0, 1.0, n),
    }


@pytest.fixture(scope="session")
def uniform_designs() -> Callable[[int, int], dict[str, np.ndarray]]:
    """Factory ``(n, seed) -> dict of arrays`` of uniform random designs (integer routes)."""
    return _uniform_designs
