"""Input columns of each feature set and their encoding into a standardised feature matrix.

:class:`FeatureEncoder` encodes in exactly one place: log10 of :data:`LOG_FEATURES`, a one-hot
``route`` (all of :data:`~poreml.data.schema.ROUTES`, in order), ``missing:<column>`` indicators,
then standardisation with the training mean and standard deviation (constant columns keep
scale 1). A missing design cell is imputed with its contract default, a missing descriptor with
the training median. Indicator modes (:data:`MISSING_INDICATORS`): ``"auto"`` adds one for every
input column with some (not only) missing training cells, ``"all"`` for every input column (a
fixed layout), ``"none"`` imputes only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal, TypeVar

import numpy as np
import torch
from torch import Tensor

from poreml.data.schema import (
    COLUMNS,
    CONTINUOUS_DESIGN_COLUMNS,
    DESIGN_COLUMNS,
    DESIGN_DEFAULTS,
    ROUTES,
)

__all__ = [
    "DESCRIPTOR_COLUMNS",
    "FEATURE_DTYPE",
    "FEATURE_SETS",
    "LOG_FEATURES",
    "MISSING_INDICATORS",
    "FeatureArrays",
    "FeatureEncoder",
    "Features",
    "MissingIndicators",
]

DESCRIPTOR_COLUMNS: tuple[str, ...] = ("tap_density_g_cm3", "ssa_m2_g")
"""Measured columns used as inputs by the ``descriptors`` feature set."""

FEATURE_SETS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"design": DESIGN_COLUMNS, "descriptors": DESIGN_COLUMNS + DESCRIPTOR_COLUMNS}
)
"""Input columns of each feature set."""

LOG_FEATURES: frozenset[str] = frozenset(
    {name for name in DESIGN_COLUMNS if COLUMNS[name].log_scale} | {"ssa_m2_g"}
)
"""Input columns encoded as log10: the log-scale design columns and BET area (spans decades)."""

MissingIndicators = Literal["auto", "all", "none"]
MISSING_INDICATORS: tuple[str, ...] = ("auto", "all", "none")
"""Allowed values of the ``missing_indicators`` setting (module doc)."""

FEATURE_DTYPE = torch.float64
"""dtype of encoded features when no floating input tensor sets another."""

_T = TypeVar("_T")


@dataclass
class Features:
    """Encoded inputs of a batch of rows.

    Attributes:
        z: standardised feature matrix, shape ``(*batch, d)`` (float64 unless built from
            tensors of another dtype).
        design: the design in physical units after imputation: the eight continuous design
            columns as float tensors of shape ``(*batch)`` and ``route`` as a long tensor of
            codes (index into :data:`~poreml.data.schema.ROUTES`). Used by physics-informed
            models.
        missing: per input column, a bool tensor ``(*batch)`` that is True where the value was
            missing and imputed.
    """

    z: Tensor
    design: dict[str, Tensor]
    missing: dict[str, Tensor]

    @property
    def batch_shape(self) -> torch.Size:
        """Shape of the batch (``z.shape[:-1]``)."""
        return self.z.shape[:-1]

    def flatten(self) -> Features:
        """The same rows with the batch dimensions flattened to one: ``z`` is ``(N, d)``."""
        return Features(
            self.z.reshape(-1, self.z.shape[-1]),
            {k: v.reshape(-1) for k, v in self.design.items()},
            {k: v.reshape(-1) for k, v in self.missing.items()},
        )


@dataclass(frozen=True)
class FeatureArrays:
    """:class:`Features` of ``N`` rows as numpy arrays: what serving computes with.

    A prediction needs no gradients, and on the few rows of a request torch's overhead per
    operation (several microseconds) would cost more than the arithmetic; numpy's is a
    fraction of it. :meth:`FeatureEncoder.transform_arrays` builds them.

    Attributes:
        z: float64 ``(N, d)``, as :attr:`Features.z`.
        design: as :attr:`Features.design`: float64 ``(N,)`` per continuous design column,
            ``route`` int64 codes.
        missing: as :attr:`Features.missing`, bool ``(N,)``.
    """

    z: np.ndarray
    design: dict[str, np.ndarray]
    missing: dict[str, np.ndarray]
    _shared: dict[Hashable, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def of(cls, features: Features) -> FeatureArrays:
        """The arrays of tensor :class:`Features` of shape ``(N, d)`` (views on the CPU)."""
        return cls(
            features.z.detach().cpu().numpy(),
            {k: v.detach().cpu().numpy() for k, v in features.design.items()},
            {k: v.detach().cpu().numpy() for k, v in features.missing.items()},
        )

    def tensors(self) -> Features:
        """The same rows as tensor :class:`Features` (views, no copy)."""
        return Features(
            torch.from_numpy(self.z),
            {k: torch.from_numpy(v) for k, v in self.design.items()},
            {k: torch.from_numpy(v) for k, v in self.missing.items()},
        )

    def shared(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """``compute()``, computed once for these rows and ``key``.

        What several models read of the same rows is computed once per batch: the two stages
        of a cascade with the same physics prior share one evaluation of the virtual lab
        (:class:`~poreml.surrogates.gp.GPSurrogate`), and a stage asked for the latent and the
        measurement moments evaluates its posterior once.
        """
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]


@dataclass(frozen=True)
class FeatureEncoder:
    """Fitted encoding of input columns into the standardised feature matrix (see module doc).

    Attributes:
        columns: input columns in order (``route`` first, then continuous columns).
        fill: imputation value of each continuous column, physical units.
        route_fill: route code imputed for a missing route.
        indicators: columns that get a ``missing:<column>`` indicator feature.
        center: training mean of each feature column (after log and imputation).
        scale: training standard deviation of each feature column (1 where constant).
        names: feature names, e.g. ``log10:pore_size_nm``, ``route=top_down``, ``missing:porosity``.
    """

    columns: tuple[str, ...]
    fill: dict[str, float]
    route_fill: int
    indicators: tuple[str, ...]
    center: tuple[float, ...]
    scale: tuple[float, ...]
    names: tuple[str, ...]

    @property
    def continuous(self) -> tuple[str, ...]:
        """The continuous input columns, in order."""
        return tuple(c for c in self.columns if c != "route")

    @classmethod
    def fit(
        cls, raw: Mapping[str, Tensor], columns: Sequence[str], missing_indicators: str
    ) -> FeatureEncoder:
        """Fit the encoding on training inputs.

        Args:
            raw: per column a float tensor of shape ``(n,)`` in physical units, NaN where
                missing; ``route`` as float codes (NaN where missing).
            columns: the feature set's input columns.
            missing_indicators: ``"auto"``, ``"all"`` or ``"none"`` (module doc).
        """
        fill: dict[str, float] = {}
        for name in columns:
            if name == "route":
                continue
            if name in DESIGN_DEFAULTS:
                fill[name] = float(DESIGN_DEFAULTS[name])
            else:
                observed = raw[name][~torch.isnan(raw[name])]
                fill[name] = float(observed.median()) if observed.numel() else 1.0
        indicators: list[str] = []
        for name in columns:
            miss = torch.isnan(raw[name])
            if missing_indicators == "all" or (
                missing_indicators == "auto" and bool(miss.any()) and not bool(miss.all())
            ):
                indicators.append(name)
        route_fill = ROUTES.index(str(DESIGN_DEFAULTS["route"]))
        names = [f"log10:{c}" if c in LOG_FEATURES else c for c in columns if c != "route"]
        names += [f"route={r}" for r in ROUTES] + [f"missing:{c}" for c in indicators]
        draft = cls(
            tuple(columns),
            fill,
            route_fill,
            tuple(indicators),
            (0.0,) * len(names),
            (1.0,) * len(names),
            tuple(names),
        )
        z = draft.transform(raw).z
        center = z.mean(dim=0)
        scale = z.std(dim=0) if z.shape[0] > 1 else torch.ones_like(center)
        scale = torch.where(scale > 1e-12, scale, torch.ones_like(scale))
        return cls(
            draft.columns,
            fill,
            route_fill,
            draft.indicators,
            tuple(center.tolist()),
            tuple(scale.tolist()),
            draft.names,
        )

    def transform(self, raw: Mapping[str, Tensor]) -> Features:
        """Encode inputs (differentiable in the continuous inputs).

        Args:
            raw: per input column a tensor broadcastable to a common shape ``(*batch)``:
                continuous columns in physical units (NaN = missing), ``route`` as long or
                float codes (NaN = missing). Columns left out count as missing.

        Returns:
            The :class:`Features`; ``z`` has shape ``(*batch, d)`` and the dtype and device of
            the first floating input (float64 if there is none).
        """
        tensors = [v for v in raw.values() if isinstance(v, Tensor)]
        floating = [v for v in tensors if v.is_floating_point()]
        ref = floating[0] if floating else None
        dtype = ref.dtype if ref is not None else FEATURE_DTYPE
        device = ref.device if ref is not None else (tensors[0].device if tensors else None)
        shape = _common_shape([torch.as_tensor(v).shape for v in raw.values()])
        nan = torch.full(shape, math.nan, dtype=dtype, device=device)

        cols: list[Tensor] = []
        design: dict[str, Tensor] = {}
        missing: dict[str, Tensor] = {}
        for name in self.continuous:
            value = torch.as_tensor(raw[name], device=device).to(dtype) if name in raw else nan
            value = value.expand(shape)
            miss = torch.isnan(value)
            value = torch.where(miss, torch.full_like(value, self.fill[name]), value)
            missing[name] = miss
            if name in CONTINUOUS_DESIGN_COLUMNS:
                design[name] = value
            cols.append(torch.log10(value) if name in LOG_FEATURES else value)

        route = raw.get("route")
        if route is None:
            code = torch.full(shape, self.route_fill, dtype=torch.long, device=device)
            miss = torch.ones(shape, dtype=torch.bool, device=device)
        else:
            route = torch.as_tensor(route, device=device).expand(shape)
            miss = (
                torch.isnan(route) if route.is_floating_point() else torch.zeros_like(route).bool()
            )
            code = torch.where(miss, torch.full_like(route, self.route_fill), route)
            code = torch.round(code).long() if code.is_floating_point() else code.long()
        missing["route"] = miss
        design["route"] = code
        onehot = torch.nn.functional.one_hot(code.clamp(0, len(ROUTES) - 1), len(ROUTES))
        cols.extend(onehot.to(dtype).unbind(-1))
        cols.extend(missing[name].to(dtype) for name in self.indicators)

        z = torch.stack(cols, dim=-1)
        center = torch.tensor(self.center, dtype=dtype, device=device)
        scale = torch.tensor(self.scale, dtype=dtype, device=device)
        return Features((z - center) / scale, design, missing)

    def transform_arrays(self, raw: Mapping[str, np.ndarray]) -> FeatureArrays:
        """:meth:`transform` on numpy arrays, for serving (:class:`FeatureArrays`).

        The same encoding step for step (tested against :meth:`transform`), without torch's
        overhead per operation, which on a request's few rows costs more than the arithmetic.

        Args:
            raw: per input column a float64 array ``(N,)``: continuous columns in physical
                units (NaN = missing), ``route`` as float codes (NaN = missing). Columns left
                out count as missing; at least one column is given.
        """
        n = len(next(iter(raw.values())))
        fill, log_rows, center, scale = self._array_constants
        continuous = self.continuous
        absent = np.full(n, np.nan)
        values = np.stack([raw.get(name, absent) for name in continuous])  # (C, N)
        miss = np.isnan(values)
        filled = np.where(miss, fill, values)
        # built transposed, (d, N): one row per feature, so the columns' views are contiguous
        zt = np.empty((len(self.names), n))
        zt[: len(continuous)] = filled
        zt[log_rows] = np.log10(filled[log_rows])
        missing = dict(zip(continuous, miss, strict=True))
        design = {
            name: filled[j]
            for j, name in enumerate(continuous)
            if name in CONTINUOUS_DESIGN_COLUMNS
        }
        route = raw.get("route")
        if route is None:
            missing["route"] = np.ones(n, dtype=bool)
            code = np.full(n, self.route_fill, dtype=np.int64)
        else:
            missing["route"] = np.isnan(route)
            code = np.rint(np.where(missing["route"], self.route_fill, route)).astype(np.int64)
        design["route"] = code
        first = len(continuous)
        clipped = np.minimum(np.maximum(code, 0), len(ROUTES) - 1)  # as transform's clamp
        zt[first : first + len(ROUTES)] = np.arange(len(ROUTES))[:, None] == clipped
        for j, name in enumerate(self.indicators, start=first + len(ROUTES)):
            zt[j] = missing[name]
        zt -= center
        zt /= scale
        return FeatureArrays(np.ascontiguousarray(zt.T), design, missing)

    @cached_property
    def _array_constants(self) -> tuple[np.ndarray, list[int], np.ndarray, np.ndarray]:
        """For :meth:`transform_arrays`, built once: the imputation values ``(C, 1)``, the
        rows of the log10 features, the centre and scale ``(d, 1)``."""
        continuous = self.continuous
        return (
            np.array([[self.fill[name]] for name in continuous]),
            [j for j, name in enumerate(continuous) if name in LOG_FEATURES],
            np.asarray(self.center, dtype=np.float64)[:, None],
            np.asarray(self.scale, dtype=np.float64)[:, None],
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureEncoder:
        """Rebuild from :meth:`to_dict`."""
        return cls(
            tuple(data["columns"]),
            {k: float(v) for k, v in data["fill"].items()},
            int(data["route_fill"]),
            tuple(data["indicators"]),
            tuple(float(v) for v in data["center"]),
            tuple(float(v) for v in data["scale"]),
            tuple(data["names"]),
        )


def _common_shape(shapes: list[torch.Size]) -> torch.Size:
    """The broadcast shape of ``shapes``: the shape itself when they all agree (every call on
    the prediction and acquisition paths), else ``torch.broadcast_shapes``, which costs
    ~0.1 ms for nine shapes in torch 2.13, a noticeable share of a one-row prediction."""
    first = shapes[0] if shapes else torch.Size()
    if all(shape == first for shape in shapes):
        return torch.Size(first)
    return torch.broadcast_shapes(*shapes)
