"""The one base class of poreml surrogates: validation, feature encoding, target scaling, I/O.

Every surrogate follows the scikit-learn estimator API (``fit(X, y) -> self``,
``predict(X, return_std=False)``) and inherits from :class:`Surrogate`, which owns everything
that is not model specific:

* **Validation** of ``X`` and ``y`` against the data contract (:mod:`poreml.data.validation`,
  physical domain), with every bad cell reported at once.
* **Feature encoding**, in exactly one place (:class:`FeatureEncoder`): log10 of the log-scale
  columns (``pore_size_nm``, ``si_domain_nm`` and, as an input, ``ssa_m2_g``), a one-hot
  encoding of ``route`` (all three routes, in :data:`~poreml.data.schema.ROUTES` order), the
  missing-value indicators described below, then standardisation of every feature column with
  the training mean and standard deviation (constant columns keep scale 1).
* **Target transforms**, declared per target (:data:`DEFAULT_TARGET_TRANSFORMS`; ``ssa_m2_g``
  is modelled on a log scale, everything else as is) followed by standardisation with the mean
  and standard deviation of the observed training values (:class:`TargetScaler`). Models work in
  this standardised space; predictions come back in contract units. For a log-scale target the
  predictive distribution is log-normal: ``mean``/``std`` are its moments and interval bounds are
  its exact quantiles.
* **Persistence** (:meth:`Surrogate.save` / :meth:`Surrogate.load`).

Feature sets (``feature_set``):

* ``"design"``: the nine contract design columns (:data:`~poreml.data.schema.DESIGN_COLUMNS`).
* ``"descriptors"``: the design columns plus the measured ``tap_density_g_cm3`` and ``ssa_m2_g``
  as inputs; those two are then not targets.

Missing inputs. Real rows often lack design cells (blank in the CSV, NaN in the frame, or the
column left out). A missing design cell is imputed with its contract default
(:data:`~poreml.data.schema.DESIGN_DEFAULTS`; a missing descriptor input with the training
median), and with ``missing_indicators="auto"`` (the default) every input column that had at
least one missing - but not only missing - cell in the training data gets an extra 0/1 feature
``missing:<column>``, so the model can learn that "not reported" differs from "the default".
``"all"`` adds an indicator for every input column (a fixed feature layout, used by the
ensemble so that pre-training on complete virtual-lab data and fine-tuning on incomplete real
rows share one network), ``"none"`` imputes only. No row is ever dropped because of a missing
input. Targets are different: ``y`` may hold NaN (not measured), and each target is fitted on
its own rows with a measured value; a row without any measured target simply contributes to no
target.

Domain of applicability (:meth:`Surrogate.in_domain`): a row is in domain when every observed
continuous input lies inside the training range of that column widened by ``domain_margin``
times the range on each side (ranges in log10 for the log-scale columns), its route was seen in
training, and each of its missing cells is either a column that also had missing cells in
training or one whose imputed default lies inside that widened range.

Saved models are a folder with ``config.json`` (settings and fitted statistics),
``tensors.pt`` (loaded with ``torch.load(weights_only=True)``) and, for scikit-learn models,
``estimators.joblib``. joblib files are pickles: load only trusted, local artifacts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import NormalDist
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from torch import Tensor

from poreml.data.schema import (
    COLUMNS,
    CONTINUOUS_DESIGN_COLUMNS,
    DESIGN_COLUMNS,
    DESIGN_DEFAULTS,
    ROUTES,
)
from poreml.data.validation import validate_table
from poreml.exceptions import ConfigError, DataValidationError, ModelNotFittedError, Problem

if TYPE_CHECKING:
    from gpytorch.distributions import MultivariateNormal

__all__ = [
    "DEFAULT_TARGET_TRANSFORMS",
    "DESCRIPTOR_COLUMNS",
    "FEATURE_SETS",
    "LOG_FEATURES",
    "LOG_FLOOR",
    "TARGETS",
    "TARGET_TRANSFORMS",
    "DomainStats",
    "FeatureEncoder",
    "Features",
    "FittedState",
    "MissingIndicators",
    "Surrogate",
    "TargetScaler",
]

TARGETS: tuple[str, ...] = (
    "ice_pct",
    "retention_pct",
    "expansion_pct",
    "tap_density_g_cm3",
    "ssa_m2_g",
    "specific_capacity_mah_g",
)
"""Measured columns the surrogates predict, in this order."""

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
_MISSING_INDICATORS: tuple[str, ...] = ("auto", "all", "none")

LOG_FLOOR = 1e-2
"""Values of a log-transformed target below this are clipped to it before the log."""


@dataclass(frozen=True)
class _TargetTransform:
    """A monotone target transform with the moments of a Gaussian mapped back through it.

    Attributes:
        forward: original units → transformed (elementwise).
        inverse: transformed → original units (elementwise).
        moments: ``(mu, var)`` of a Gaussian in transformed space → ``(mean, var)`` of its
            image in original units.
    """

    forward: Callable[[Tensor], Tensor]
    inverse: Callable[[Tensor], Tensor]
    moments: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


def _log_moments(mu: Tensor, var: Tensor) -> tuple[Tensor, Tensor]:
    mean = torch.exp(mu + 0.5 * var)
    return mean, torch.expm1(var) * mean**2


TARGET_TRANSFORMS: Mapping[str, _TargetTransform] = MappingProxyType(
    {
        "none": _TargetTransform(lambda y: y, lambda z: z, lambda mu, var: (mu, var)),
        "log": _TargetTransform(
            lambda y: torch.log(torch.clamp(y, min=LOG_FLOOR)), torch.exp, _log_moments
        ),
    }
)
"""Available target transforms by name (``none``; ``log``: natural log, floor :data:`LOG_FLOOR`)."""

DEFAULT_TARGET_TRANSFORMS: Mapping[str, str] = MappingProxyType({"ssa_m2_g": "log"})
"""Transform of each target when ``target_transforms`` does not say otherwise (else ``none``)."""

_DTYPE = torch.float64


# --------------------------------------------------------------------------------------------
# Features


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
        dtype = ref.dtype if ref is not None else _DTYPE
        device = ref.device if ref is not None else (tensors[0].device if tensors else None)
        shape = torch.broadcast_shapes(*(torch.as_tensor(v).shape for v in raw.values()))
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


@dataclass(frozen=True)
class DomainStats:
    """Training ranges for :meth:`Surrogate.in_domain` (see the module doc).

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


# --------------------------------------------------------------------------------------------
# Targets


@dataclass(frozen=True)
class TargetScaler:
    """Per-target transform (:data:`TARGET_TRANSFORMS`) then standardisation.

    Attributes:
        targets: target columns, in model output order.
        transforms: transform name of each target.
        center, scale: mean and standard deviation (ddof 1) of the transformed observed values.
    """

    targets: tuple[str, ...]
    transforms: tuple[str, ...]
    center: tuple[float, ...]
    scale: tuple[float, ...]

    @classmethod
    def fit(cls, y: Tensor, targets: Sequence[str], transforms: Sequence[str]) -> TargetScaler:
        """Fit on ``y`` of shape ``(n, T)`` (NaN = not measured), columns ``targets``."""
        draft = cls(tuple(targets), tuple(transforms), (0.0,) * len(targets), (1.0,) * len(targets))
        z = draft.transform(y)
        center, scale = [], []
        for j in range(z.shape[-1]):
            obs = z[:, j][~torch.isnan(z[:, j])]
            center.append(float(obs.mean()) if obs.numel() else 0.0)
            sd = float(obs.std()) if obs.numel() > 1 else 1.0
            scale.append(sd if sd > 1e-12 else 1.0)
        return cls(draft.targets, draft.transforms, tuple(center), tuple(scale))

    def _params(self, idx: Sequence[int] | None, ref: Tensor) -> tuple[list[int], Tensor, Tensor]:
        index = list(range(len(self.targets))) if idx is None else list(idx)
        center = torch.tensor([self.center[i] for i in index], dtype=ref.dtype, device=ref.device)
        scale = torch.tensor([self.scale[i] for i in index], dtype=ref.dtype, device=ref.device)
        return index, center, scale

    def transform(self, y: Tensor, idx: Sequence[int] | None = None) -> Tensor:
        """Original units → standardised model space; ``y`` is ``(..., m)`` (targets ``idx``)."""
        index, center, scale = self._params(idx, y)
        cols = [
            TARGET_TRANSFORMS[self.transforms[i]].forward(y[..., k]) for k, i in enumerate(index)
        ]
        return (torch.stack(cols, dim=-1) - center) / scale

    def inverse(self, z: Tensor, idx: Sequence[int] | None = None) -> Tensor:
        """Standardised model space → original units, elementwise (samples, quantiles)."""
        index, center, scale = self._params(idx, z)
        t = z * scale + center
        cols = [
            TARGET_TRANSFORMS[self.transforms[i]].inverse(t[..., k]) for k, i in enumerate(index)
        ]
        return torch.stack(cols, dim=-1)

    def affine(self, idx: Sequence[int] | None, ref: Tensor) -> tuple[Tensor, Tensor]:
        """``(center, scale)`` tensors ``(m,)`` of the standardisation of targets ``idx``."""
        _, center, scale = self._params(idx, ref)
        return center, scale

    def moments(
        self, mu: Tensor, sd: Tensor, idx: Sequence[int] | None = None
    ) -> tuple[Tensor, Tensor]:
        """Mean and std in original units of Gaussians ``N(mu, sd²)`` in model space."""
        index, center, scale = self._params(idx, mu)
        t_mu, t_var = mu * scale + center, (sd * scale) ** 2
        means, stds = [], []
        for k, i in enumerate(index):
            m, v = TARGET_TRANSFORMS[self.transforms[i]].moments(t_mu[..., k], t_var[..., k])
            means.append(m)
            stds.append(torch.sqrt(torch.clamp(v, min=0.0)))
        return torch.stack(means, dim=-1), torch.stack(stds, dim=-1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TargetScaler:
        """Rebuild from :meth:`to_dict`."""
        return cls(
            tuple(data["targets"]),
            tuple(data["transforms"]),
            tuple(float(v) for v in data["center"]),
            tuple(float(v) for v in data["scale"]),
        )


# --------------------------------------------------------------------------------------------
# Base class


@dataclass
class FittedState:
    """What a subclass adds to a saved model.

    Attributes:
        meta: JSON-compatible settings and statistics.
        tensors: tensors saved with ``torch.save`` (loaded with ``weights_only=True``).
        artifact: a picklable object saved with joblib (scikit-learn estimators), or None.
    """

    meta: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, Tensor] = field(default_factory=dict)
    artifact: Any = None


class Surrogate(BaseEstimator):
    """Base class of all poreml surrogates (scikit-learn estimator API, see the module doc).

    Subclasses list their settings as keyword arguments of ``__init__`` (stored unchanged, as
    scikit-learn requires), and implement :meth:`_fit_features`, :meth:`_predict_moments`,
    :meth:`_fitted_state` and :meth:`_restore`. Optionally they override
    :meth:`_posterior_parts` to give BoTorch an exact (joint, differentiable) posterior.

    Common settings:
        feature_set: ``"design"`` or ``"descriptors"`` (:data:`FEATURE_SETS`).
        targets: target columns to model (default: :data:`TARGETS` that are not inputs).
        target_transforms: per-target transform names overriding
            :data:`DEFAULT_TARGET_TRANSFORMS` (keys: targets, values: :data:`TARGET_TRANSFORMS`).
        missing_indicators: ``"auto"``, ``"all"`` or ``"none"`` (module doc).
        domain_margin: relative widening of the training ranges in :meth:`in_domain`.
        random_state: seed of everything random in ``fit``.

    Fitted attributes (end in ``_``): ``targets_``, ``feature_columns_``, ``feature_names_out_``,
    ``n_train_``, ``n_observed_`` (rows with a measured value, per target), ``encoder_``,
    ``target_scaler_``, ``domain_``.
    """

    name: ClassVar[str] = "surrogate"
    """Registry name (set by :func:`poreml.surrogates.registry.register`)."""

    differentiable: ClassVar[bool] = False
    """Whether :meth:`_posterior_parts` is differentiable in the inputs (gradient-based
    acquisition optimisation is possible)."""

    _min_rows: ClassVar[int] = 2
    """Fewest measured rows a target needs."""

    def __init__(
        self,
        *,
        feature_set: str = "design",
        targets: Sequence[str] | None = None,
        target_transforms: Mapping[str, str] | None = None,
        missing_indicators: MissingIndicators = "auto",
        domain_margin: float = 0.05,
        random_state: int = 0,
    ) -> None:
        self.feature_set = feature_set
        self.targets = targets
        self.target_transforms = target_transforms
        self.missing_indicators = missing_indicators
        self.domain_margin = domain_margin
        self.random_state = random_state

    # ---- settings ---------------------------------------------------------------------------

    def _settings_problems(self) -> list[str]:
        """Problems with the settings, in words (subclasses extend the list)."""
        problems = []
        if self.feature_set not in FEATURE_SETS:
            problems.append(
                f"feature_set: expected one of {', '.join(FEATURE_SETS)} (got {self.feature_set!r})"
            )
            return problems
        allowed = self._default_targets()
        for t in list(self.targets or ()):
            if t not in allowed:
                problems.append(
                    f"targets: {t!r} is not a target of feature_set {self.feature_set!r}; "
                    f"allowed: {', '.join(allowed)}"
                )
        if self.targets is not None and len(list(self.targets)) == 0:
            problems.append("targets: expected at least one target (got an empty list)")
        for t, tr in dict(self.target_transforms or {}).items():
            if t not in TARGETS:
                problems.append(f"target_transforms: unknown target {t!r}")
            if tr not in TARGET_TRANSFORMS:
                problems.append(
                    f"target_transforms[{t!r}]: expected one of "
                    f"{', '.join(TARGET_TRANSFORMS)} (got {tr!r})"
                )
        if self.missing_indicators not in _MISSING_INDICATORS:
            problems.append(
                f"missing_indicators: expected one of {', '.join(_MISSING_INDICATORS)} "
                f"(got {self.missing_indicators!r})"
            )
        if not (isinstance(self.domain_margin, int | float) and self.domain_margin >= 0):
            problems.append(f"domain_margin: expected a number >= 0 (got {self.domain_margin!r})")
        if not isinstance(self.random_state, int | np.integer):
            problems.append(f"random_state: expected an integer (got {self.random_state!r})")
        return problems

    def _check_settings(self) -> None:
        problems = self._settings_problems()
        if problems:
            raise ConfigError(
                f"invalid settings for {type(self).__name__}:\n  - "
                + "\n  - ".join(problems)
                + "\nFix them with set_params(...) or the constructor."
            )

    def _default_targets(self) -> tuple[str, ...]:
        inputs = set(FEATURE_SETS[self.feature_set])
        return tuple(t for t in TARGETS if t not in inputs)

    # ---- fit / predict -----------------------------------------------------------------------

    def fit(self, X: pd.DataFrame, y: pd.DataFrame) -> Surrogate:
        """Fit the model.

        Args:
            X: one row per sample; any subset of the input columns of ``feature_set`` (missing
                cells allowed, see the module doc). Design cells are checked against the
                physical domain, descriptor inputs must be finite numbers; other contract
                columns (e.g. ``candidate_id``) are ignored and unknown column names are errors.
            y: same number of rows, aligned by position; the target columns (NaN or blank =
                not measured; other cells must be finite numbers). Other columns are ignored.

        Returns:
            self.

        Raises:
            ConfigError: invalid settings or a requested target missing from ``y``.
            DataValidationError: bad cells in ``X`` or ``y``, a row-count mismatch or a target
                with fewer than two measured rows.
        """
        self._check_settings()
        columns = FEATURE_SETS[self.feature_set]
        raw = self._raw_inputs(X, source="X")
        keep = self._warm_start_ready()
        targets = self.targets_ if keep else tuple(self.targets or self._default_targets())
        y_t = self._raw_targets(y, targets, n=len(X), allow_absent=keep)
        counts = (~torch.isnan(y_t)).sum(dim=0).tolist()
        if not keep:
            too_few = [
                Problem(None, t, f"{c} measured rows", f"at least {self._min_rows}")
                for t, c in zip(targets, counts, strict=True)
                if c < self._min_rows
            ]
            if too_few:
                raise DataValidationError(too_few, source="y")
            transforms = [
                dict(self.target_transforms or {}).get(t, DEFAULT_TARGET_TRANSFORMS.get(t, "none"))
                for t in targets
            ]
            self.encoder_ = FeatureEncoder.fit(raw, columns, self.missing_indicators)
            self.target_scaler_ = TargetScaler.fit(y_t, targets, transforms)
            self.targets_ = tuple(targets)
            self.feature_columns_ = tuple(columns)
            self.feature_names_out_ = self.encoder_.names
        self.domain_ = DomainStats.fit(raw, columns, float(self.domain_margin))
        self.n_train_ = len(X)
        self.n_observed_ = dict(zip(targets, (int(c) for c in counts), strict=True))
        features = self.encoder_.transform(raw)
        self._fit_features(features, self.target_scaler_.transform(y_t))
        return self

    def predict(
        self, X: pd.DataFrame, return_std: bool = False, *, observation_noise: bool = True
    ) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
        """Predict every target.

        Args:
            X: rows to predict, columns as in :meth:`fit`.
            return_std: also return the predictive standard deviations.
            observation_noise: True (default): the distribution of a new *measurement* (model
                uncertainty plus measurement noise; what intervals should cover). False: the
                latent (noise-free) mean's uncertainty, for acquisition functions.

        Returns:
            ``mean`` with columns :attr:`targets_` and the index of ``X``, or ``(mean, std)``.
        """
        mean, std = self._predict_frames(X, observation_noise)
        return (mean, std) if return_std else mean

    def predict_interval(
        self, X: pd.DataFrame, level: float = 0.9, *, observation_noise: bool = True
    ) -> dict[str, pd.DataFrame]:
        """Central predictive intervals.

        The predictive distribution is Gaussian in each target's model space (for the
        ensemble: the moment-matched Gaussian of its mixture); bounds are its quantiles mapped
        back to contract units (exact log-normal quantiles for log-scale targets).

        Args:
            X: rows to predict.
            level: coverage of the central interval, in (0, 1).
            observation_noise: as in :meth:`predict`.

        Returns:
            Per target a frame with columns ``mean``, ``std``, ``lower``, ``upper`` and the
            index of ``X``.
        """
        self._check_fitted()
        raw = self._raw_inputs(X, source="X")
        return self._intervals(raw, X.index, level, observation_noise)

    def predict_table(
        self,
        X: pd.DataFrame,
        level: float = 0.9,
        *,
        observation_noise: bool = True,
        check_input: bool = True,
    ) -> pd.DataFrame:
        """Every target's mean, std and central interval plus the domain flag, in one pass.

        The serving path (CLI ``predict``, the API, the MLflow pyfunc): inputs are checked and
        encoded once for both the predictions and :meth:`in_domain`.

        Args:
            X: rows to predict, optional ``candidate_id``.
            level: coverage of the central interval, in (0, 1).
            observation_noise: as in :meth:`predict`.
            check_input: validate ``X`` against the data contract. Pass False only for frames
                already validated upstream (e.g. by the API's request models) that hold every
                design column — like scikit-learn's ``check_input``, it skips the checks, not
                the conversion.

        Returns:
            ``candidate_id`` (when given), then per target ``<target>_mean``, ``_std``,
            ``_lower``, ``_upper``, then ``in_domain`` (bool); the index of ``X``.
        """
        self._check_fitted()
        raw = self._raw_inputs(X, source="X") if check_input else self._tensors_from_valid(X)
        intervals = self._intervals(raw, X.index, level, observation_noise)
        columns: dict[str, Any] = {}
        if "candidate_id" in X.columns:
            columns["candidate_id"] = X["candidate_id"].astype(str).to_numpy()
        for target, frame in intervals.items():
            for stat in ("mean", "std", "lower", "upper"):
                columns[f"{target}_{stat}"] = frame[stat].to_numpy(dtype=float)
        columns["in_domain"] = self.domain_.contains(raw, self.encoder_)
        return pd.DataFrame(columns, index=X.index)

    def _intervals(
        self,
        raw: Mapping[str, Tensor],
        index: pd.Index,
        level: float,
        observation_noise: bool,
    ) -> dict[str, pd.DataFrame]:
        if not 0.0 < level < 1.0:
            raise ConfigError(f"level: expected a number in (0, 1) (got {level!r})")
        features = self.encoder_.transform(raw)
        with torch.no_grad():
            mu, sd = self._predict_moments(features, observation_noise)
            mean, std = self.target_scaler_.moments(mu, sd)
            z = NormalDist().inv_cdf(0.5 + level / 2.0)
            lower = self.target_scaler_.inverse(mu - z * sd)
            upper = self.target_scaler_.inverse(mu + z * sd)
        out = {}
        for j, t in enumerate(self.targets_):
            frame = pd.DataFrame(
                {
                    "mean": mean[:, j].numpy(),
                    "std": std[:, j].numpy(),
                    "lower": lower[:, j].numpy(),
                    "upper": upper[:, j].numpy(),
                },
                index=index,
            )
            out[t] = frame
        return out

    def in_domain(self, X: pd.DataFrame) -> np.ndarray:
        """Whether each row of ``X`` lies in the training domain (module doc).

        Returns:
            Boolean array of shape ``(len(X),)``.
        """
        self._check_fitted()
        return self.domain_.contains(self._raw_inputs(X, source="X"), self.encoder_)

    def encode(self, X: pd.DataFrame) -> pd.DataFrame:
        """The standardised feature matrix of ``X`` (columns :attr:`feature_names_out_`)."""
        self._check_fitted()
        z = self.encoder_.transform(self._raw_inputs(X, source="X")).z
        return pd.DataFrame(z.numpy(), index=X.index, columns=list(self.feature_names_out_))

    def features_from_tensors(self, inputs: Mapping[str, Tensor]) -> Features:
        """Encode tensors (the BoTorch path; differentiable in the continuous inputs).

        Args:
            inputs: input columns in physical units as tensors of a common broadcast shape
                ``(*batch)``; ``route`` as integer (or float) codes. Columns left out are
                missing (imputed as in :meth:`fit`).
        """
        self._check_fitted()
        return self.encoder_.transform(inputs)

    def _predict_frames(
        self, X: pd.DataFrame, observation_noise: bool
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        self._check_fitted()
        features = self.encoder_.transform(self._raw_inputs(X, source="X"))
        with torch.no_grad():
            mu, sd = self._predict_moments(features, observation_noise)
            mean, std = self.target_scaler_.moments(mu, sd)
        cols = list(self.targets_)
        return (
            pd.DataFrame(mean.numpy(), index=X.index, columns=cols),
            pd.DataFrame(std.numpy(), index=X.index, columns=cols),
        )

    # ---- hooks ------------------------------------------------------------------------------

    def _warm_start_ready(self) -> bool:
        """True when ``fit`` should keep the fitted encoding and target scaling (warm start)."""
        return False

    def _fit_features(self, features: Features, y: Tensor) -> None:
        """Fit on encoded inputs ``features`` (``z``: ``(n, d)``) and standardised targets ``y``
        of shape ``(n, T)`` (NaN = not measured, each target uses its own rows)."""
        raise NotImplementedError

    def _predict_moments(
        self, features: Features, observation_noise: bool
    ) -> tuple[Tensor, Tensor]:
        """Gaussian predictive mean and std in standardised model space.

        Args:
            features: ``z`` of shape ``(N, d)``.
            observation_noise: include measurement noise.

        Returns:
            ``(mu, sd)``, each ``(N, T)`` float64 on the CPU.
        """
        raise NotImplementedError

    def _posterior_parts(
        self, features: Features, idx: Sequence[int], observation_noise: bool
    ) -> list[MultivariateNormal] | Tensor:
        """The model's posterior at a batch of points in standardised model space.

        Used by :class:`poreml.surrogates.botorch_adapter.SurrogateModel`. The default is a
        Gaussian without correlations between points, built from :meth:`_predict_moments`
        (not differentiable).

        Args:
            features: ``z`` of shape ``(*batch, q, d)``.
            idx: indices into :attr:`targets_` of the outputs wanted.
            observation_noise: include measurement noise.

        Returns:
            Either one ``MultivariateNormal`` per output over the ``q`` points (batch shape
            ``batch``), or a tensor of ensemble values of shape ``(*batch, s, q, m)``.
        """
        from gpytorch.distributions import MultivariateNormal
        from linear_operator.operators import DiagLinearOperator

        with torch.no_grad():
            mu, sd = self._predict_moments(features.flatten(), observation_noise)
        shape = features.batch_shape
        ref = features.z
        out = []
        for i in idx:
            mean = mu[:, i].reshape(shape).to(ref)
            var = (sd[:, i] ** 2).clamp(min=1e-12).reshape(shape).to(ref)
            out.append(MultivariateNormal(mean, DiagLinearOperator(var)))
        return out

    def _fitted_state(self) -> FittedState:
        """The subclass's fitted state, for :meth:`save`."""
        raise NotImplementedError

    def _restore(self, state: FittedState) -> None:
        """Set the subclass's fitted attributes from :meth:`_fitted_state` output."""
        raise NotImplementedError

    # ---- checks -----------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "encoder_"):
            raise ModelNotFittedError(
                f"this {type(self).__name__} is not fitted yet: call fit(X, y) (or load a "
                "saved model) before predicting"
            )

    def _raw_inputs(self, X: pd.DataFrame, *, source: str) -> dict[str, Tensor]:
        """Validate ``X`` and return its input columns as float64 tensors (NaN = missing)."""
        if not isinstance(X, pd.DataFrame):
            raise DataValidationError(
                [Problem(None, None, type(X).__name__, "a pandas DataFrame with named columns")],
                source,
            )
        if len(X) == 0:
            raise DataValidationError([Problem(None, None, "0 rows", "at least one row")], source)
        design = [c for c in X.columns if c in DESIGN_COLUMNS or c not in COLUMNS]
        frame = validate_table(X[design], source=source, physical=True)
        columns = FEATURE_SETS[self.feature_set]
        descriptors = [c for c in columns if c not in DESIGN_COLUMNS and c in X.columns]
        measured = _numeric(X[descriptors], source) if descriptors else {}
        n = len(frame)
        raw: dict[str, Tensor] = {}
        for name in columns:
            if name in measured:
                raw[name] = torch.tensor(measured[name], dtype=_DTYPE)
            elif name not in frame.columns:
                raw[name] = torch.full((n,), math.nan, dtype=_DTYPE)
            elif name == "route":
                codes = frame[name].map({r: float(i) for i, r in enumerate(ROUTES)})
                raw[name] = torch.tensor(codes.to_numpy(dtype="float64", na_value=np.nan))
            else:
                values = frame[name].to_numpy(dtype="float64", na_value=np.nan)
                raw[name] = torch.tensor(values, dtype=_DTYPE)
        return raw

    def _tensors_from_valid(self, X: pd.DataFrame) -> dict[str, Tensor]:
        """Input tensors of a frame already validated upstream (no contract checks)."""
        n = len(X)
        raw: dict[str, Tensor] = {}
        for name in FEATURE_SETS[self.feature_set]:
            if name not in X.columns:
                raw[name] = torch.full((n,), math.nan, dtype=_DTYPE)
            elif name == "route":
                codes = X[name].map({r: float(i) for i, r in enumerate(ROUTES)})
                raw[name] = torch.tensor(codes.to_numpy(dtype="float64", na_value=np.nan))
            else:
                values = X[name].to_numpy(dtype="float64", na_value=np.nan)
                raw[name] = torch.tensor(values, dtype=_DTYPE)
        return raw

    def _raw_targets(
        self, y: pd.DataFrame, targets: Sequence[str], *, n: int, allow_absent: bool
    ) -> Tensor:
        """Validate ``y`` and return the target columns as a float64 ``(n, T)`` tensor."""
        if isinstance(y, pd.Series):
            y = y.to_frame()
        if not isinstance(y, pd.DataFrame):
            raise DataValidationError(
                [Problem(None, None, type(y).__name__, "a pandas DataFrame of target columns")],
                "y",
            )
        if len(y) != n:
            raise DataValidationError(
                [Problem(None, None, f"{len(y)} rows", f"{n} rows, one per row of X")], "y"
            )
        absent = [t for t in targets if t not in y.columns]
        if absent and not allow_absent:
            raise ConfigError(
                f"y has no column {', '.join(map(repr, absent))}; expected the target columns "
                f"{', '.join(targets)} (NaN where not measured), or pass targets=[...] to fit "
                "fewer targets"
            )
        measured = _numeric(y[[t for t in targets if t in y.columns]], "y")
        values = np.full((n, len(targets)), np.nan)
        for j, t in enumerate(targets):
            if t in measured:
                values[:, j] = measured[t]
        return torch.tensor(values, dtype=_DTYPE)

    # ---- persistence ------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Save the fitted model to the folder ``path`` (created; files inside are replaced).

        Returns:
            The folder.
        """
        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        state = self._fitted_state()
        config = {
            "format": "poreml-surrogate",
            "format_version": 1,
            "model": self.name,
            "params": _jsonable(self.get_params(deep=False)),
            "fitted": {
                "targets": list(self.targets_),
                "feature_columns": list(self.feature_columns_),
                "n_train": int(self.n_train_),
                "n_observed": self.n_observed_,
                "encoder": self.encoder_.to_dict(),
                "target_scaler": self.target_scaler_.to_dict(),
                "domain": self.domain_.to_dict(),
                "model": state.meta,
            },
        }
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        tensors = {k: v.detach().cpu().contiguous() for k, v in state.tensors.items()}
        torch.save(tensors, folder / "tensors.pt")
        joblib_path = folder / "estimators.joblib"
        if state.artifact is not None:
            import joblib

            joblib.dump(state.artifact, joblib_path)
        elif joblib_path.exists():
            joblib_path.unlink()
        return folder

    @classmethod
    def load(cls, path: str | Path) -> Surrogate:
        """Load a model saved with :meth:`save` (any registered model when called on the base).

        Only load trusted, local artifacts: ``estimators.joblib`` is a pickle.

        Raises:
            ConfigError: the folder holds no poreml surrogate, or one of another model when
                called on a subclass.
        """
        from poreml.surrogates.registry import get

        folder = Path(path)
        config_path = folder / "config.json"
        if not config_path.is_file():
            raise ConfigError(f"{folder}: no config.json; expected a folder written by save()")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if config.get("format") != "poreml-surrogate":
            raise ConfigError(
                f"{config_path}: not a poreml surrogate (format {config.get('format')!r})"
            )
        model_cls = get(config["model"])
        if not issubclass(model_cls, cls):
            raise ConfigError(
                f"{folder} holds a {config['model']!r} model, not a {cls.__name__}; "
                "load it with Surrogate.load or poreml.surrogates.load"
            )
        params = {k: _from_json(v) for k, v in config["params"].items()}
        model = model_cls(**params)
        fitted = config["fitted"]
        model.targets_ = tuple(fitted["targets"])
        model.feature_columns_ = tuple(fitted["feature_columns"])
        model.n_train_ = int(fitted["n_train"])
        model.n_observed_ = {k: int(v) for k, v in fitted["n_observed"].items()}
        model.encoder_ = FeatureEncoder.from_dict(fitted["encoder"])
        model.feature_names_out_ = model.encoder_.names
        model.target_scaler_ = TargetScaler.from_dict(fitted["target_scaler"])
        model.domain_ = DomainStats.from_dict(fitted["domain"])
        tensors = torch.load(folder / "tensors.pt", map_location="cpu", weights_only=True)
        artifact = None
        if (folder / "estimators.joblib").is_file():
            import joblib

            artifact = joblib.load(folder / "estimators.joblib")
        model._restore(FittedState(fitted["model"], tensors, artifact))
        return model


def _numeric(frame: pd.DataFrame, source: str) -> dict[str, np.ndarray]:
    """Measured columns as float arrays (blank = NaN); every non-numeric or infinite cell is
    reported. Values are not checked against the contract's sanity ranges: the virtual lab
    itself reports e.g. BET areas above 3500 m²/g for very open designs."""
    out: dict[str, np.ndarray] = {}
    problems: list[Problem] = []
    for name in frame.columns:
        column = frame[name]
        blank = column.isna() | column.astype(str).str.strip().eq("")
        values = pd.to_numeric(column.where(~blank), errors="coerce").to_numpy(dtype="float64")
        bad = (~blank.to_numpy() & np.isnan(values)) | np.isinf(values)
        for i in np.flatnonzero(bad):
            problems.append(Problem(int(i) + 1, str(name), column.iloc[i], "a finite number"))
        out[str(name)] = values
    if problems:
        raise DataValidationError(problems, source)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_json(value: Any) -> Any:
    """Lists in saved settings come back as tuples (settings are immutable sequences)."""
    if isinstance(value, list):
        return tuple(_from_json(v) for v in value)
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    return value
