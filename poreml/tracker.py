"""The tracker protocol, a no-op tracker and the dataset digest: the side channel's interface.

Tracking is a side channel (STYLE.md principle 11): library functions compute and return their
results; when a caller passes a :class:`Tracker`, they also log them through it. Library code
defaults to :class:`NullTracker`, so it runs without MLflow installed or configured. This is a
foundation module any stage may import; it imports neither mlflow nor any poreml stage (the
MLflow implementation is :class:`poreml.tracking.mlflow_tracker.MlflowTracker`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["NullTracker", "Tracker", "canonical_csv", "dataset_digest"]


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
