"""Feature encoding: the numpy encoding of the serving path is the tensor encoding's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from poreml.data.schema import DESIGN_COLUMNS, ROUTES
from poreml.surrogates.features import FEATURE_SETS, FeatureArrays, FeatureEncoder


def _raw(n: int, seed: int, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    """``n`` rows of every column in physical units, a quarter of the cells missing."""
    rng = np.random.default_rng(seed)
    raw = {name: rng.uniform(0.05, 0.9, n) * 100.0 for name in columns if name != "route"}
    raw["porosity"] = rng.uniform(0.05, 0.85, n)
    raw["route"] = rng.integers(0, len(ROUTES), n).astype(float)
    for values in raw.values():
        values[rng.random(n) < 0.25] = np.nan
    return raw


@pytest.mark.parametrize("feature_set", ["design", "descriptors"])
@pytest.mark.parametrize("indicators", ["auto", "all", "none"])
def test_array_encoding_gives_the_tensor_encodings_numbers(feature_set, indicators) -> None:
    columns = FEATURE_SETS[feature_set]
    train = {k: torch.from_numpy(v) for k, v in _raw(40, 0, columns).items()}
    encoder = FeatureEncoder.fit(train, columns, indicators)
    rows = _raw(25, 1, columns)
    rows.pop("shell_nm")  # a column left out counts as missing
    arrays = encoder.transform_arrays(rows)
    tensors = encoder.transform({k: torch.from_numpy(v) for k, v in rows.items()})
    np.testing.assert_allclose(arrays.z, tensors.z.numpy(), rtol=1e-13, atol=1e-13)
    assert arrays.design.keys() == tensors.design.keys()
    for name, value in tensors.design.items():
        assert arrays.design[name].dtype == value.numpy().dtype
        np.testing.assert_array_equal(arrays.design[name], value.numpy())
    assert arrays.missing.keys() == tensors.missing.keys()
    for name, value in tensors.missing.items():
        np.testing.assert_array_equal(arrays.missing[name], value.numpy())


def test_array_features_convert_to_tensor_features_and_back_without_copies() -> None:
    columns = FEATURE_SETS["design"]
    encoder = FeatureEncoder.fit(
        {k: torch.from_numpy(v) for k, v in _raw(30, 2, columns).items()}, columns, "auto"
    )
    arrays = encoder.transform_arrays(_raw(5, 3, DESIGN_COLUMNS))
    tensors = arrays.tensors()
    assert np.shares_memory(tensors.z.numpy(), arrays.z)
    back = FeatureArrays.of(tensors)
    assert np.shares_memory(back.z, arrays.z)
    assert back.design["route"].dtype == np.int64


def test_a_shared_value_is_computed_once_per_batch_and_key() -> None:
    arrays = FeatureArrays(np.zeros((2, 1)), {}, {})
    calls: list[str] = []

    def compute(key: str) -> str:
        calls.append(key)
        return key.upper()

    assert arrays.shared("a", lambda: compute("a")) == "A"
    assert arrays.shared("a", lambda: compute("a")) == "A"
    assert arrays.shared("b", lambda: compute("b")) == "B"
    assert calls == ["a", "b"]
    # another batch computes its own
    assert FeatureArrays(np.zeros((2, 1)), {}, {}).shared("a", lambda: compute("a")) == "A"
    assert calls == ["a", "b", "a"]
