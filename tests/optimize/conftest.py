"""Shared settings of the optimize tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    """GP fits on a handful of points are fastest single-threaded, above all when test
    workers share the cores (several threads per worker oversubscribe them)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
