"""The domain of applicability of a fitted surrogate: where its training data lay.

A row is in domain when every observed continuous input lies inside the training range of that
column widened by ``margin`` times the range on each side (ranges in log10 for
:data:`~poreml.surrogates.features.LOG_FEATURES`), its route was seen in training, and each of
its missing cells is either a column that also had missing cells in training or one whose
imputed value lies inside that widened range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from poreml.surrogates.features import LOG_FEATURES, FeatureEncoder

__all__ = ["DomainStats"]


@dataclass(frozen=True)
class DomainStats:
    """Training ranges for :meth:`Surrogate.in_domain` (module doc).

    Attributes:
        low, high: per continuous input column, the observed training range (log10 for
            :data:`LOG_FEATURES`); NaN when the column was never observed.
        routes: route codes seen in training.
        missing_seen: input columns with at least one missing training cell.
        margin: relative widening of each range on both sides.
    """

    low: dict[str, float]
    high: dict[str, float]
    routes: tuple[int, ...]
    missing_seen: tuple[str, ...]
    margin: float

    @classmethod
    def fit(cls, raw: Mapping[str, Tensor], columns: Sequence[str], margin: float) -> DomainStats:
        """Collect the ranges from training inputs (``raw`` as in :meth:`FeatureEncoder.fit`)."""
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
        return cls(low, high, routes, tuple(missing_seen), margin)

    def contains(self, raw: Mapping[str, Tensor], encoder: FeatureEncoder) -> np.ndarray:
        """Boolean array ``(n,)``: whether each row lies in the domain of applicability."""
        n = len(next(iter(raw.values())))
        ok = np.ones(n, dtype=bool)
        for name in encoder.continuous:
            value = raw[name].numpy()
            miss = np.isnan(value)
            filled = np.where(miss, encoder.fill[name], value)
            filled = np.log10(filled) if name in LOG_FEATURES else filled
            lo, hi = self.low[name], self.high[name]
            pad = self.margin * (hi - lo) + 1e-9 * max(1.0, abs(lo), abs(hi))
            inside = (filled >= lo - pad) & (filled <= hi + pad)  # False when never observed
            ok &= np.where(miss, inside | (name in self.missing_seen), inside)
        route = raw["route"].numpy()
        miss = np.isnan(route)
        code = np.where(miss, encoder.route_fill, np.nan_to_num(route)).astype(int)
        seen = np.isin(code, self.routes)
        ok &= np.where(miss, seen | ("route" in self.missing_seen), seen)
        return ok

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict (NaN ranges as null)."""
        out = asdict(self)
        for key in ("low", "high"):
            out[key] = {k: None if math.isnan(v) else v for k, v in out[key].items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DomainStats:
        """Rebuild from :meth:`to_dict`."""

        def ranges(d: Mapping[str, Any]) -> dict[str, float]:
            return {k: math.nan if v is None else float(v) for k, v in d.items()}

        return cls(
            ranges(data["low"]),
            ranges(data["high"]),
            tuple(int(r) for r in data["routes"]),
            tuple(data["missing_seen"]),
            float(data["margin"]),
        )
