"""Registry of surrogate models: adding a model is one new module plus its test.

A model module decorates its class with :func:`register`; :func:`make` builds a model by name::

    from poreml.surrogates import make

    model = make("gp", prior="physics").fit(X, y)

The built-in models live in the modules of :data:`BUILTIN_MODULES`, imported on the first
lookup (so importing the registry does not import BoTorch).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from poreml.exceptions import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from poreml.surrogates.base import Surrogate

__all__ = ["BUILTIN_MODULES", "available", "get", "load", "make", "register"]

BUILTIN_MODULES: tuple[str, ...] = (
    "poreml.surrogates.gp",
    "poreml.surrogates.ensemble",
    "poreml.surrogates.trees",
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
    """Load any saved surrogate (see :meth:`~poreml.surrogates.base.Surrogate.load`)."""
    from poreml.surrogates.base import Surrogate

    return Surrogate.load(path)
