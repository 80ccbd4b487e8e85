"""Registry of surrogate models: adding a model is one new module plus its test.

A model module decorates its class with :func:`register`; :func:`make` builds a model by name::

    from poreml.surrogates import make

    model = make("gp", prior="physics").fit(X, y)

The built-in models live in the modules of :data:`BUILTIN_MODULES`, imported on the first
lookup (so importing the registry does not import BoTorch). :func:`load` rebuilds a saved model
of any registered class from the name its folder records.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from poreml.exceptions import ConfigError
from poreml.surrogates.base import Surrogate
from poreml.surrogates.persistence import read_model

__all__ = ["BUILTIN_MODULES", "available", "get", "load", "make", "register"]

BUILTIN_MODULES: tuple[str, ...] = (
    "poreml.surrogates.gp",
    "poreml.surrogates.ensemble",
    "poreml.surrogates.trees",
    "poreml.surrogates.cascade",
)
"""Modules whose models register themselves on import."""

_REGISTRY: dict[str, type[Surrogate]] = {}
_S = TypeVar("_S", bound="type[Surrogate]")


def register(name: str) -> Callable[[_S], _S]:
    """Class decorator: register a :class:`~poreml.surrogates.base.Surrogate` under ``name``.

    Raises:
        ConfigError: when ``name`` is already taken by another class.
    """

    def decorator(cls: _S) -> _S:
        existing = _REGISTRY.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ConfigError(f"surrogate name {name!r} is already registered by {existing}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def _load_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def available() -> list[str]:
    """Names of the registered models, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def get(name: str) -> type[Surrogate]:
    """The model class registered as ``name``.

    Raises:
        ConfigError: for an unknown name (the message lists the registered names).
    """
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown surrogate {name!r}; expected one of {', '.join(sorted(_REGISTRY))}"
        ) from None


def make(name: str, **params: Any) -> Surrogate:
    """Build the model ``name`` with settings ``params`` (unfitted).

    Raises:
        ConfigError: unknown name, or a setting the model does not have.
    """
    cls = get(name)
    allowed = cls._get_param_names()
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(
            f"surrogate {name!r} has no setting {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(allowed)}"
        )
    return cls(**params)


def load(path: str | Path) -> Surrogate:
    """Load a saved surrogate of any registered model (folder written by ``Surrogate.save``).

    Only load trusted, local artifacts: ``estimators.joblib`` is a pickle.

    Raises:
        ConfigError: the folder holds no poreml surrogate, or one of an unknown model.
    """
    saved = read_model(path)
    return get(saved.model).from_saved(saved)
