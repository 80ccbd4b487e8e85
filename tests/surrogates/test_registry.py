"""Registry: names, construction by name, errors, and adding a model in one module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from poreml.exceptions import ConfigError
from poreml.surrogates import Surrogate, available, get, load, make, register
from poreml.surrogates.base import FittedState
from poreml.surrogates.ensemble import EnsembleSurrogate
from poreml.surrogates.features import Features
from poreml.surrogates.gp import GPSurrogate
from poreml.surrogates.registry import _REGISTRY
from poreml.surrogates.trees import MeanSurrogate, RidgeSurrogate, TreesSurrogate


def test_available_lists_the_built_in_models() -> None:
    assert available() == ["cascade", "ensemble", "gp", "mean", "ridge", "trees"]


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("gp", GPSurrogate),
        ("ensemble", EnsembleSurrogate),
        ("trees", TreesSurrogate),
        ("ridge", RidgeSurrogate),
        ("mean", MeanSurrogate),
    ],
)
def test_make_builds_an_unfitted_model_with_its_settings(name, cls) -> None:
    model = make(name, random_state=4)
    assert type(model) is cls
    assert model.name == name
    assert get(name) is cls
    assert model.get_params()["random_state"] == 4
    assert not hasattr(model, "targets_")


def test_unknown_name_lists_the_registered_names() -> None:
    with pytest.raises(ConfigError, match="ensemble, gp, mean, ridge, trees"):
        make("svm")


def test_unknown_setting_lists_the_allowed_settings() -> None:
    with pytest.raises(ConfigError, match="n_members"):
        make("ensemble", n_memberz=3)


@pytest.fixture
def _scratch_registry() -> Iterator[None]:
    before = dict(_REGISTRY)
    yield
    _REGISTRY.clear()
    _REGISTRY.update(before)


@pytest.mark.usefixtures("_scratch_registry")
def test_a_new_model_is_one_decorated_class(train_data, tmp_path) -> None:
    @register("median")
    class MedianSurrogate(Surrogate):
        def _fit_features(self, features: Features, y: torch.Tensor) -> None:
            self.median_ = torch.nanmedian(y, dim=0).values

        def _predict_moments(
            self, features: Features, observation_noise: bool
        ) -> tuple[torch.Tensor, torch.Tensor]:
            n = features.z.shape[0]
            return self.median_.expand(n, -1).clone(), torch.ones(n, self.median_.numel())

        def _fitted_state(self) -> FittedState:
            return FittedState(tensors={"median": self.median_})

        def _restore(self, state: FittedState) -> None:
            self.median_ = state.tensors["median"]

    X, y = train_data
    assert "median" in available()
    model = make("median").fit(X, y)
    restored = load(model.save(tmp_path / "median"))
    assert restored.predict(X).equals(model.predict(X))


@pytest.mark.usefixtures("_scratch_registry")
def test_a_name_cannot_be_taken_twice() -> None:
    with pytest.raises(ConfigError, match="already registered"):

        @register("gp")
        class Other(Surrogate):
            pass
