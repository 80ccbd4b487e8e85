"""MLflow-side helpers: the dataset-digest tag and the conversion of params and metrics.

The tracker protocol, :class:`~poreml.tracker.NullTracker` and the dataset digest itself live
in the foundation module :mod:`poreml.tracker`. Nothing in this module imports mlflow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["DIGEST_TAG", "finite_metrics", "flatten_params"]

DIGEST_TAG = "poreml.dataset_sha256"
"""Tag (and param) under which a run records the sha256 of its training frame."""


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten nested mappings into ``a.b`` keys with string values (MLflow param form).

    Args:
        params: possibly nested settings.
        prefix: prepended to every key (``"<prefix>."``) when not empty.

    Returns:
        Flat ``{key: str(value)}``; long values are cut to 500 characters (MLflow's limit is 6000,
        but params are for reading, not for storage).
    """
    out: dict[str, str] = {}
    for key, value in params.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten_params(value, full))
        else:
            text = str(value)
            out[full] = text if len(text) <= 500 else text[:497] + "..."
    return out


def finite_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Keep the entries of ``metrics`` that are finite numbers, as floats.

    MLflow rejects NaN in some stores and NaN metrics carry no information; None and
    non-numeric values are dropped as well.
    """
    out: dict[str, float] = {}
    for key, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[str(key)] = number
    return out
