"""Tracking: MLflow runs, dataset digests and the surrogate model registry (a side channel).

Library functions return their results and log them only through a
:class:`~poreml.tracker.Tracker` passed in (the protocol, :class:`~poreml.tracker.NullTracker` and
the dataset digest live in the foundation module :mod:`poreml.tracker`). This package holds the
MLflow side. mlflow is imported only by the MLflow parts, on first use of one of their names, so
``import poreml.tracking`` is cheap and has no side effects.

* :data:`DIGEST_TAG` (:mod:`.base`);
* :class:`MlflowTracker`, :data:`SURROGATE_EXPERIMENT`, :data:`CAMPAIGN_EXPERIMENT`
  (:mod:`.mlflow_tracker`);
* :func:`register_surrogate`, :func:`log_surrogate`, :class:`RegistrationResult`,
  :data:`CHAMPION_ALIAS` (:mod:`.registry`);
* :class:`ModelArtifact`, :class:`ModelMetadata`, :func:`load_pyfunc`,
  :data:`REGISTERED_MODEL` (:mod:`.artifacts`: the model folder / model URI).
"""

from __future__ import annotations

import importlib
from typing import Any

from poreml.tracking.base import DIGEST_TAG

_LAZY = {
    "MlflowTracker": "poreml.tracking.mlflow_tracker",
    "SURROGATE_EXPERIMENT": "poreml.tracking.mlflow_tracker",
    "CAMPAIGN_EXPERIMENT": "poreml.tracking.mlflow_tracker",
    "CHAMPION_ALIAS": "poreml.tracking.registry",
    "REGISTERED_MODEL": "poreml.tracking.artifacts",
    "ModelArtifact": "poreml.tracking.artifacts",
    "ModelMetadata": "poreml.tracking.artifacts",
    "load_pyfunc": "poreml.tracking.artifacts",
    "RegistrationResult": "poreml.tracking.registry",
    "log_surrogate": "poreml.tracking.registry",
    "register_surrogate": "poreml.tracking.registry",
}

__all__ = [
    "CAMPAIGN_EXPERIMENT",
    "CHAMPION_ALIAS",
    "DIGEST_TAG",
    "REGISTERED_MODEL",
    "SURROGATE_EXPERIMENT",
    "MlflowTracker",
    "ModelArtifact",
    "ModelMetadata",
    "RegistrationResult",
    "load_pyfunc",
    "log_surrogate",
    "register_surrogate",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'poreml.tracking' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
