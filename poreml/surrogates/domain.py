"""The domain of applicability of a fitted surrogate: how far a row lies from the training data.

A row's **domain distance** is the larger of two ratios, each ``<= 1`` inside its limit:

* the **neighbour ratio**: the mean Euclidean distance from the row's encoded features (the
  :class:`~poreml.surrogates.features.FeatureEncoder`'s standardised matrix ``z``: log10 of the
  log-scale columns, one-hot route, missing indicators, each standardised) to its
  :data:`NEIGHBORS` nearest training rows, divided by a threshold calibrated at fit time:
  ``(1 + margin)`` times the :data:`QUANTILE` quantile of the leave-one-out distances of the
  training rows (each row's mean distance to its nearest *other* training rows). A new row
  drawn like the training data lies within it with probability about :data:`QUANTILE` or more.
  This is what flags a design in an empty corner of the training box (several columns near
  their extremes at once) although each column alone is in range.
* the **range ratio**: the largest excursion of a continuous column from the centre of its
  training range (log10 for :data:`~poreml.surrogates.features.LOG_FEATURES`) widened by
  ``margin`` of the range on each side (1 = on the widened edge), so a single column beyond
  what was trained is never hidden by the others. A missing cell counts with its imputed value,
  except in a column that had missing training cells too (the model learnt what "missing"
  means there).

A row is **in domain** when its domain distance is ``<= 1``, its (imputed) route was seen in
training and it gives no value for a column never observed in training (nothing was learnt
about it). Cost: one k-nearest-neighbour query against the ``n`` training rows (scikit-learn
``NearestNeighbors``) and a pass over the columns, vectorised over the batch.

Models saved before the neighbour ratio existed carry only the training ranges: their domain
distance is the range ratio alone, which reproduces the bounding-box rule they were saved with.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors
from torch import Tensor

from poreml.data.schema import ROUTES
from poreml.surrogates.features import LOG_FEATURES, FeatureEncoder

__all__ = ["NEIGHBORS", "QUANTILE", "DomainStats"]

NEIGHBORS = 5
"""Neighbours averaged in the domain distance (fewer when there are fewer training rows)."""

QUANTILE = 0.95
"""Quantile of the leave-one-out training distances that sets the threshold (before
``margin``): at least this share of rows drawn like the training data is in domain."""


BRUTE_FORCE_ROWS = 256
"""Batches up to this size find their neighbours by brute force, larger ones with the index."""


@dataclass(frozen=True)
class _Limits:
    """Per-column constants of the range ratio and the route check, as arrays."""

    columns: tuple[str, ...]  # continuous columns with a training range
    fill: np.ndarray  # their imputation values
    log: np.ndarray  # bool: log10 column
    mid: np.ndarray  # centre of the training range
    half: np.ndarray  # half the widened range
    missing_seen: np.ndarray  # bool: missing training cells (a missing cell is in range)
    seen_route: np.ndarray  # bool per route code: seen in training
    never_observed: tuple[str, ...]  # continuous columns without an observed training cell


@dataclass(frozen=True)
class DomainStats:
    """The fitted domain of applicability (module doc).

    Attributes:
        low, high: per continuous input column, the observed training range (log10 for
            :data:`LOG_FEATURES`); NaN when the column was never observed. Reported by the API
            and used by the box rule of old saved models.
        routes: route codes seen in training.
        missing_seen: input columns with at least one missing training cell.
        margin: relative widening of the distance threshold (of each range for the box rule).
        neighbors: neighbours averaged in the distance.
        quantile: quantile of the leave-one-out distances that sets the threshold.
        threshold: distance (in standardised feature units) that maps to domain distance 1;
            None for a model saved before the distance existed (box rule).
        reference: the encoded training rows ``(n, d)``, the neighbours searched; None with
            ``threshold``.
    """

    low: dict[str, float]
    high: dict[str, float]
    routes: tuple[int, ...]
    missing_seen: tuple[str, ...]
    margin: float
    neighbors: int = NEIGHBORS
    quantile: float = QUANTILE
    threshold: float | None = None
    reference: np.ndarray | None = field(default=None, repr=False, compare=False)
    _index: NearestNeighbors | None = field(default=None, init=False, repr=False, compare=False)
    _limits_cache: list[Any] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.reference is not None:
            index = NearestNeighbors().fit(np.asarray(self.reference, dtype=np.float64))
            object.__setattr__(self, "_index", index)

    @classmethod
    def fit(
        cls,
        raw: Mapping[str, Tensor],
        columns: Sequence[str],
        margin: float,
        encoder: FeatureEncoder,
        *,
        neighbors: int = NEIGHBORS,
        quantile: float = QUANTILE,
    ) -> DomainStats:
        """Calibrate on the training inputs (``raw`` as in :meth:`FeatureEncoder.fit`).

        Args:
            raw: the training inputs.
            columns: the feature set's input columns.
            margin: relative widening of the threshold.
            encoder: the fitted encoder whose standardised features the distance is taken in.
            neighbors: neighbours averaged.
            quantile: quantile of the leave-one-out distances that sets the threshold.
        """
        low: dict[str, float] = {}
        high: dict[str, float] = {}
        missing_seen = []
        for name in columns:
            value = raw[name]
            observed = value[~torch.isnan(value)]
            if observed.numel() < value.numel():
                missing_seen.append(name)
            if name == "route":
                continue
            observed = torch.log10(observed) if name in LOG_FEATURES else observed
            low[name] = float(observed.min()) if observed.numel() else math.nan
            high[name] = float(observed.max()) if observed.numel() else math.nan
        route = raw["route"]
        routes = tuple(sorted({int(r) for r in route[~torch.isnan(route)].tolist()}))
        reference = encoder.transform(raw).z.detach().cpu().numpy().astype(np.float64)
        n = reference.shape[0]
        k = max(1, min(neighbors, n - 1))
        # k + 1 neighbours of each training row among all of them: the first is the row itself
        # (or an exact duplicate, also at distance 0), so the rest are its leave-one-out ones.
        dist, _ = NearestNeighbors(n_neighbors=min(k + 1, n)).fit(reference).kneighbors(reference)
        held_out = dist[:, 1:].mean(axis=1) if n > 1 else np.zeros(1)
        threshold = float(np.quantile(held_out, quantile)) * (1.0 + margin)
        # All rows identical: any other point is out of domain, the same point is not.
        threshold = threshold if threshold > 0.0 else 1e-12
        return cls(
            low,
            high,
            routes,
            tuple(missing_seen),
            margin,
            int(k),
            float(quantile),
            threshold,
            reference,
        )

    def distance(
        self,
        raw: Mapping[str, np.ndarray],
        encoder: FeatureEncoder,
        z: np.ndarray | None = None,
    ) -> np.ndarray:
        """Domain distance of each row, float array ``(n,)`` (module doc): ``<= 1`` within both
        the calibrated neighbour threshold and the widened training ranges.

        Args:
            raw: per input column a float64 array ``(n,)`` in physical units (NaN = missing;
                ``route`` as float codes), as :meth:`FeatureEncoder.transform_arrays` takes.
            encoder: the model's encoder.
            z: ``encoder.transform_arrays(raw).z`` when already computed.
        """
        box = self._range_ratio(raw, encoder)
        if self._index is None or self.threshold is None:
            return box
        if z is None:
            z = encoder.transform_arrays(raw).z
        reference: np.ndarray = self.reference  # type: ignore[assignment]
        k = min(self.neighbors, reference.shape[0])
        if len(z) <= BRUTE_FORCE_ROWS:
            # a few rows: exact differences to every training row beat the tree's overhead
            diff = z[:, None, :] - reference[None, :, :]
            dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
            nearest = np.partition(dist, k - 1, axis=1)[:, :k] if k < dist.shape[1] else dist
        else:
            nearest, _ = self._index.kneighbors(z, n_neighbors=k)
        return np.maximum(nearest.mean(axis=1) / self.threshold, box)

    def contains(
        self,
        raw: Mapping[str, np.ndarray],
        encoder: FeatureEncoder,
        distance: np.ndarray | None = None,
    ) -> np.ndarray:
        """Boolean array ``(n,)``: whether each row lies in the domain of applicability.

        Args:
            raw: the rows' inputs, as :meth:`distance` takes them.
            encoder: the model's encoder.
            distance: :meth:`distance` of the same rows when already computed.
        """
        d = self.distance(raw, encoder) if distance is None else distance
        ok = d <= 1.0
        limits = self._limits(encoder)
        route = raw["route"]
        miss = np.isnan(route)
        code = np.where(miss, encoder.route_fill, route).astype(int)
        seen = np.take(limits.seen_route, code, mode="clip")
        seen &= (code >= 0) & (code < len(limits.seen_route))
        ok &= np.where(miss, seen | ("route" in self.missing_seen), seen)
        for name in limits.never_observed:  # only missing is known of these
            ok &= np.isnan(raw[name])
        return ok

    def _range_ratio(self, raw: Mapping[str, np.ndarray], encoder: FeatureEncoder) -> np.ndarray:
        """Largest excursion from the widened training ranges' centres (1 = on an edge)."""
        n = len(next(iter(raw.values())))
        limits = self._limits(encoder)
        if not limits.columns:
            return np.zeros(n)
        values = np.column_stack([raw[name] for name in limits.columns])
        miss = np.isnan(values)
        filled = np.where(miss, limits.fill, values)
        np.log10(filled, out=filled, where=limits.log)
        excursion = np.abs(filled - limits.mid) / limits.half
        excursion[miss & limits.missing_seen] = 0.0
        return np.maximum(excursion.max(axis=1), 0.0)

    def _limits(self, encoder: FeatureEncoder) -> _Limits:
        """The per-column constants of :meth:`_range_ratio` and :meth:`contains` for
        ``encoder``, as arrays (built on the first call, kept for the same encoder)."""
        cached = self._limits_cache
        if cached and cached[0] is encoder:
            return cached[1]
        columns = [
            name
            for name in encoder.continuous
            if not (math.isnan(self.low[name]) or math.isnan(self.high[name]))
        ]
        lo = np.array([self.low[name] for name in columns])
        hi = np.array([self.high[name] for name in columns])
        half = [
            (0.5 + self.margin) * (high - low) + 1e-9 * max(1.0, abs(low), abs(high))
            for low, high in zip(lo.tolist(), hi.tolist(), strict=True)
        ]
        seen_route = np.zeros(max(len(ROUTES), *(r + 1 for r in self.routes)), dtype=bool)
        seen_route[list(self.routes)] = True
        limits = _Limits(
            columns=tuple(columns),
            fill=np.array([encoder.fill[name] for name in columns]),
            log=np.array([name in LOG_FEATURES for name in columns], dtype=bool),
            mid=0.5 * (lo + hi),
            half=np.array(half),
            missing_seen=np.array([name in self.missing_seen for name in columns], dtype=bool),
            seen_route=seen_route,
            never_observed=tuple(n for n in encoder.continuous if math.isnan(self.low[n])),
        )
        self._limits_cache[:] = [encoder, limits]
        return limits

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict (NaN ranges as null); ``reference`` is saved as a tensor."""
        return {
            "low": {k: None if math.isnan(v) else v for k, v in self.low.items()},
            "high": {k: None if math.isnan(v) else v for k, v in self.high.items()},
            "routes": list(self.routes),
            "missing_seen": list(self.missing_seen),
            "margin": self.margin,
            "neighbors": self.neighbors,
            "quantile": self.quantile,
            "threshold": self.threshold,
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], reference: np.ndarray | Tensor | None = None
    ) -> DomainStats:
        """Rebuild from :meth:`to_dict` and the saved ``reference`` rows. A dict without a
        ``threshold`` (a model saved before the distance existed) gives the box rule."""

        def ranges(d: Mapping[str, Any]) -> dict[str, float]:
            return {k: math.nan if v is None else float(v) for k, v in d.items()}

        threshold = data.get("threshold")
        if isinstance(reference, Tensor):
            reference = reference.detach().cpu().numpy()
        if threshold is None or reference is None:
            threshold, reference = None, None
        return cls(
            ranges(data["low"]),
            ranges(data["high"]),
            tuple(int(r) for r in data["routes"]),
            tuple(data["missing_seen"]),
            float(data["margin"]),
            int(data.get("neighbors", NEIGHBORS)),
            float(data.get("quantile", QUANTILE)),
            None if threshold is None else float(threshold),
            None if reference is None else np.asarray(reference, dtype=np.float64),
        )
