"""The tracker protocol, a no-op tracker and the dataset digest.

Tracking is a side channel (STYLE.md principle 11): library functions compute and return their
results; when a caller passes a :class:`Tracker`, they also log them through it. Library code
defaults to :class:`NullTracker`, so it runs without MLflow installed or configured. Nothing in
this module imports mlflow.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DIGEST_TAG = "poreml.dataset_sha256"
"""Tag (and param) under which a run records the sha256 of its training frame."""


@runtime_checkable
class Tracker(Protocol):
    """What poreml logs to: runs with params, metrics, figures, tables and files.

    Every method is safe to call outside :meth:`start_run` on :class:`NullTracker`; on a real
    tracker, logging needs an open run.
    """

    def start_run(
        self, name: str, nested: bool = False, *, tags: Mapping[str, str] | None = None
    ) -> Any:
        """Open a run (a context manager); ``nested=True`` opens it under the active run."""
        ...

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record settings of the run (values are stringified)."""
        ...

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record numeric results; ``step`` orders repeated values (e.g. trial or epoch)."""
        ...

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Attach free-text tags to the run."""
        ...

    def log_figure(self, figure: Figure, filename: str) -> None:
        """Store a matplotlib figure as an image artifact named ``filename`` (e.g. ``x.png``)."""
        ...

    def log_table(self, table: pd.DataFrame, filename: str) -> None:
        """Store a DataFrame as an artifact; ``.csv``, ``.md`` or ``.json`` by file suffix."""
        ...

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Store a local file or folder under ``artifact_path``."""
        ...

    def log_dataset(self, frame: pd.DataFrame, name: str, context: str = "training") -> str:
        """Record the dataset a run used; returns its :func:`dataset_digest`."""
        ...


class NullTracker:
    """A tracker that records nothing: the default of every library function."""

    @contextmanager
    def start_run(
        self, name: str, nested: bool = False, *, tags: Mapping[str, str] | None = None
    ) -> Iterator[None]:
        """Open nothing; yields None."""
        yield None

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Do nothing."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Do nothing."""

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Do nothing."""

    def log_figure(self, figure: Figure, filename: str) -> None:
        """Do nothing."""

    def log_table(self, table: pd.DataFrame, filename: str) -> None:
        """Do nothing."""

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Do nothing."""

    def log_dataset(self, frame: pd.DataFrame, name: str, context: str = "training") -> str:
        """Return the digest of ``frame`` without recording it."""
        return dataset_digest(frame)


def canonical_csv(frame: pd.DataFrame) -> str:
    """The canonical CSV text of a frame, the input of :func:`dataset_digest`.

    Canonical form: columns in the frame's order (names are part of the content), no index,
    ``\\n`` line endings, floats written with 17 significant digits (round-trip exact), blank
    cells for missing values, booleans as ``True``/``False``.

    Args:
        frame: any table.

    Returns:
        The CSV text.
    """
    return frame.to_csv(index=False, lineterminator="\n", float_format="%.17g", na_rep="")


def dataset_digest(frame: pd.DataFrame) -> str:
    """sha256 (hex) of the canonical CSV form of ``frame``.

    Two frames with the same columns, order and values give the same digest regardless of their
    index or in-memory dtypes of equal values; reordering rows or columns changes it.

    Args:
        frame: the training table (design and measured columns as used for fitting).

    Returns:
        64 hexadecimal characters.
    """
    return hashlib.sha256(canonical_csv(frame.reset_index(drop=True)).encode("utf-8")).hexdigest()


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
