"""Target transforms and the per-target scaling between contract units and model space.

Each target is warped (:data:`TARGET_TRANSFORMS`, chosen per target with
:data:`DEFAULT_TARGET_TRANSFORMS` as default) then standardised with the mean and standard
deviation of its observed training values. The model is Gaussian in that standardised space; the
predictive distribution in contract units is its image through the inverse warp, not a clipped
Gaussian: :meth:`TargetScaler.inverse` maps Gaussian quantiles to its exact quantiles (the warps
are monotone) and :meth:`TargetScaler.moments` gives its mean and standard deviation —
log-normal in closed form, the others by Gauss–Hermite quadrature. So an interval of a
percentage bounded by 0 and 100 (``ice_pct``, ``retention_pct``: ``logit_pct``) stays inside
(0, 100) and one of a positive quantity (``log``, ``softplus``) stays above 0, however far the
design lies from the data.

``softplus`` (``y = log(1 + exp(t))``, contract units) is for a non-negative target with values
at or near 0: volume expansion is 0 when the pores take up the silicon's swelling, and a log
warp would stretch those values (and their absolute measurement noise) over decades. It is the
identity above a few units and a log below one.

Training values on or beyond a warp's boundary follow a stated rule, never a silent drop:

* ``log`` and ``softplus``: values below :data:`LOG_FLOOR` are raised to it before the warp.
  That includes negative readings, which additive measurement noise gives for a positive
  quantity near 0 (the virtual lab reports a few negative capacities of designs with almost
  no silicon); they stay in the fit, at the floor.
* ``logit_pct``: values in ``[0, LOGIT_EPS_PCT)`` or ``(100 - LOGIT_EPS_PCT, 100]`` are moved to
  :data:`LOGIT_EPS_PCT` / ``100 - LOGIT_EPS_PCT`` before the logit of ``value / 100`` (the
  virtual lab clips ICE and retention into [0, 100], so 100 occurs); values outside [0, 100] are
  an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import Tensor

from poreml.exceptions import DataValidationError, Problem

__all__ = [
    "DEFAULT_TARGET_TRANSFORMS",
    "LOGIT_EPS_PCT",
    "LOG_FLOOR",
    "PLAIN_TARGET_TRANSFORMS",
    "QUADRATURE_NODES",
    "TARGET_TRANSFORMS",
    "TargetScaler",
    "TargetTransform",
]

LOG_FLOOR = 1e-2
"""Values of a ``log`` or ``softplus`` target below this are raised to it before the warp."""

LOGIT_EPS_PCT = 0.1
"""Percentage points kept between a ``logit_pct`` value and 0 or 100 before the logit: the
precision ICE and retention are reported with, so a measured 100 % becomes 99.9 %."""

QUADRATURE_NODES = 128
"""Gauss–Hermite nodes for the moments of the ``logit_pct`` and ``softplus`` warps. Relative
error against adaptive quadrature: below 1e-5 for warped-space standard deviations up to 5
(tested), about 1e-3 at 10 (far extrapolation, where the interval matters more than the
digits of the mean)."""

_QUADRATURE_CHUNK = 512
"""Distributions per block of the numpy quadrature (``512 × 128`` nodes: 0.5 MB)."""

_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(QUADRATURE_NODES)
_GH_W = _GH_W / math.sqrt(2.0 * math.pi)  # weights of E[f(Z)], Z ~ N(0, 1)


@dataclass(frozen=True)
class TargetTransform:
    """A monotone target warp with the moments of a Gaussian mapped back through it.

    Each function comes twice, on tensors and on numpy arrays: the tensor versions are
    differentiable (fit, BoTorch's posterior); the ``*_array`` versions are the same equations
    for serving, which needs no gradients and would otherwise pay torch's per-operation
    overhead on the few rows of a request. Tests pin each pair to each other.

    Attributes:
        forward: original units → warped (elementwise; boundary values squeezed as the module
            doc says).
        inverse: warped → original units (elementwise); maps the real line into the
            physical range ((0, ∞) or (0, 100)).
        moments: ``(mu, var)`` of a Gaussian in warped space → ``(mean, var)`` of its image in
            original units.
        forward_array, inverse_array, moments_array: the same on float64 numpy arrays.
        support: ``(low, high)`` of the original values ``fit`` accepts (module doc); values
            between it and the physical range are squeezed by the module doc's rule.
    """

    forward: Callable[[Tensor], Tensor]
    inverse: Callable[[Tensor], Tensor]
    moments: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
    forward_array: Callable[[np.ndarray], np.ndarray]
    inverse_array: Callable[[np.ndarray], np.ndarray]
    moments_array: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
    support: tuple[float, float] = (-math.inf, math.inf)


def _identity_moments(mu: Any, var: Any) -> tuple[Any, Any]:
    return mu, var


def _log_moments(mu: Tensor, var: Tensor) -> tuple[Tensor, Tensor]:
    """Log-normal mean and variance (closed form)."""
    mean = torch.exp(mu + 0.5 * var)
    return mean, torch.expm1(var) * mean**2


def _log_moments_array(mu: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(over="ignore", invalid="ignore"):  # inf / NaN where torch gives them
        mean = np.exp(mu + 0.5 * var)
        return mean, np.expm1(var) * mean**2


def _log_inverse_array(t: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # inf, as torch.exp gives it
        return np.exp(t)


def _log_forward_array(y: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(y, LOG_FLOOR))


def _logit_pct_forward(y: Tensor) -> Tensor:
    return torch.logit(torch.clamp(y, LOGIT_EPS_PCT, 100.0 - LOGIT_EPS_PCT) / 100.0)


def _logit_pct_forward_array(y: np.ndarray) -> np.ndarray:
    p = np.minimum(np.maximum(y, LOGIT_EPS_PCT), 100.0 - LOGIT_EPS_PCT) / 100.0
    return np.log(p / (1.0 - p))  # torch.logit's formula


def _logit_pct_inverse(t: Tensor) -> Tensor:
    return 100.0 * torch.sigmoid(t)


def _logit_pct_inverse_array(t: np.ndarray) -> np.ndarray:
    # 100 · 1 / (1 + e^(-t)), torch.sigmoid's formula step for step, in place (scipy's expit
    # is not vectorised: several times slower on the quadrature's blocks)
    out = np.negative(t)
    with np.errstate(over="ignore"):  # e^(-t) = inf for t < -709: the value is then 0
        np.exp(out, out=out)
    out += 1.0
    np.reciprocal(out, out=out)
    out *= 100.0
    return out


def _softplus_forward(y: Tensor) -> Tensor:
    # inverse of softplus, log(expm1(y)), written to stay finite for large y
    y = torch.clamp(y, min=LOG_FLOOR)
    return y + torch.log(-torch.expm1(-y))


def _softplus_forward_array(y: np.ndarray) -> np.ndarray:
    y = np.maximum(y, LOG_FLOOR)
    return y + np.log(-np.expm1(-y))


def _softplus_inverse(t: Tensor) -> Tensor:
    return torch.nn.functional.softplus(t)


_SOFTPLUS_THRESHOLD = 20.0
"""Above this ``torch.nn.functional.softplus`` returns its input (its default threshold);
the numpy twin does the same, so both give the same numbers."""


def _softplus_inverse_array(t: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp overflows only where the threshold takes over
        out = np.log1p(np.exp(t))
    np.copyto(out, t, where=t > _SOFTPLUS_THRESHOLD)
    return out


def _quadrature_moments(
    inverse: Callable[[Tensor], Tensor],
) -> Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """Mean and variance of ``inverse(T)``, ``T ~ N(mu, var)``, by Gauss–Hermite quadrature
    (:data:`QUADRATURE_NODES` nodes, vectorised over the batch; the variance is summed around
    the mean, so there is no cancellation for narrow distributions)."""

    def moments(mu: Tensor, var: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.as_tensor(_GH_X, dtype=mu.dtype, device=mu.device)
        w = torch.as_tensor(_GH_W, dtype=mu.dtype, device=mu.device)
        sd = torch.sqrt(torch.clamp(var, min=0.0))
        values = inverse(mu.unsqueeze(-1) + sd.unsqueeze(-1) * x)
        mean = (values * w).sum(dim=-1)
        variance = (((values - mean.unsqueeze(-1)) ** 2) * w).sum(dim=-1)
        return mean, variance

    return moments


def _quadrature_moments_array(
    inverse: Callable[[np.ndarray], np.ndarray],
) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """:func:`_quadrature_moments` on numpy arrays (same nodes, weights and sums; the weighted
    sums are products with the weight vector), :data:`_QUADRATURE_CHUNK` distributions at a
    time so the ``(chunk, nodes)`` blocks stay in the CPU cache."""

    def moments(mu: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu_flat, var_flat = np.ravel(mu), np.ravel(var)
        mean, variance = np.empty(mu_flat.shape), np.empty(mu_flat.shape)
        for start in range(0, mu_flat.size, _QUADRATURE_CHUNK):
            part = slice(start, start + _QUADRATURE_CHUNK)
            sd = np.sqrt(np.maximum(var_flat[part], 0.0))
            values = inverse(mu_flat[part, None] + sd[:, None] * _GH_X)
            mean[part] = values @ _GH_W
            values -= mean[part, None]
            values *= values
            variance[part] = values @ _GH_W
        return mean.reshape(np.shape(mu)), variance.reshape(np.shape(mu))

    return moments


TARGET_TRANSFORMS: Mapping[str, TargetTransform] = MappingProxyType(
    {
        "none": TargetTransform(
            lambda y: y,
            lambda z: z,
            _identity_moments,
            lambda y: y,
            lambda z: z,
            _identity_moments,
        ),
        "log": TargetTransform(
            lambda y: torch.log(torch.clamp(y, min=LOG_FLOOR)),
            torch.exp,
            _log_moments,
            _log_forward_array,
            _log_inverse_array,
            _log_moments_array,
        ),
        "softplus": TargetTransform(
            _softplus_forward,
            _softplus_inverse,
            _quadrature_moments(_softplus_inverse),
            _softplus_forward_array,
            _softplus_inverse_array,
            _quadrature_moments_array(_softplus_inverse_array),
        ),
        "logit_pct": TargetTransform(
            _logit_pct_forward,
            _logit_pct_inverse,
            _quadrature_moments(_logit_pct_inverse),
            _logit_pct_forward_array,
            _logit_pct_inverse_array,
            _quadrature_moments_array(_logit_pct_inverse_array),
            (0.0, 100.0),
        ),
    }
)
"""Available target warps by name: ``none``; ``log`` (natural log, floor :data:`LOG_FLOOR`;
log-normal predictive distribution); ``softplus`` (inverse of ``log(1 + exp(t))``, floor
:data:`LOG_FLOOR`; positive predictive distribution, identity-like above a few units);
``logit_pct`` (logit of ``value / 100``, squeezed by
:data:`LOGIT_EPS_PCT`; logit-normal predictive distribution in (0, 100))."""

DEFAULT_TARGET_TRANSFORMS: Mapping[str, str] = MappingProxyType(
    {
        "ice_pct": "logit_pct",
        "retention_pct": "logit_pct",
        "expansion_pct": "softplus",
        "tap_density_g_cm3": "log",
        "ssa_m2_g": "log",
        "specific_capacity_mah_g": "softplus",
    }
)
"""Warp of each target when ``target_transforms`` does not say otherwise (else ``none``): the
percentages bounded by 0 and 100 get ``logit_pct``; the positive quantities that span a
decade or more ``log``; those measured down to 0 with additive noise ``softplus``: volume
expansion (0 when the pores take up the swelling) and specific capacity (near 0 for almost no
silicon)."""

PLAIN_TARGET_TRANSFORMS: Mapping[str, str] = MappingProxyType(
    {
        "ice_pct": "none",
        "retention_pct": "none",
        "expansion_pct": "none",
        "tap_density_g_cm3": "none",
        "ssa_m2_g": "log",
        "specific_capacity_mah_g": "none",
    }
)
"""Gaussian in contract units for every target but BET area (spans decades: ``log``). The
``mean`` baseline's default (it reports the training mean and standard deviation as they are)
and the campaign's explicit choice (its pinned proposals were fixed with it)."""


def _by_transform(names: Sequence[str]) -> tuple[tuple[TargetTransform, list[int]], ...]:
    """Positions in ``names`` grouped by transform, in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for k, name in enumerate(names):
        groups.setdefault(name, []).append(k)
    return tuple((TARGET_TRANSFORMS[name], cols) for name, cols in groups.items())


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
        """Fit on ``y`` of shape ``(n, T)`` (NaN = not measured), columns ``targets``.

        Raises:
            DataValidationError: a measured value outside its transform's ``support`` (every
                such cell, by 1-based row).
        """
        problems = []
        for j, (target, name) in enumerate(zip(targets, transforms, strict=True)):
            low, high = TARGET_TRANSFORMS[name].support
            column = y[:, j]
            outside = ~torch.isnan(column) & ((column < low) | (column > high))
            problems += [
                Problem(
                    int(i) + 1,
                    target,
                    float(column[i]),
                    f"a value in [{low}, {high}] for the {name!r} target transform",
                )
                for i in torch.nonzero(outside).flatten().tolist()
            ]
        if problems:
            raise DataValidationError(problems, "y")
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

    @cached_property
    def _standardisation(self) -> tuple[np.ndarray, np.ndarray]:
        """``center`` and ``scale`` as float64 arrays, built once for the numpy methods."""
        return np.asarray(self.center, dtype=np.float64), np.asarray(self.scale, dtype=np.float64)

    @cached_property
    def _all_by_transform(self) -> tuple[tuple[TargetTransform, list[int]], ...]:
        return _by_transform([self.transforms[i] for i in range(len(self.targets))])

    def _array_params(
        self, idx: Sequence[int] | None
    ) -> tuple[tuple[tuple[TargetTransform, list[int]], ...], np.ndarray, np.ndarray]:
        """The targets ``idx`` grouped by transform (each group: positions in ``idx``) and
        their standardisation, for the numpy methods: one call per transform, not per
        target."""
        center, scale = self._standardisation
        if idx is None:
            return self._all_by_transform, center, scale
        index = list(idx)
        groups = _by_transform([self.transforms[i] for i in index])
        return groups, center[index], scale[index]

    def transform(self, y: Tensor, idx: Sequence[int] | None = None) -> Tensor:
        """Original units → standardised model space; ``y`` is ``(..., m)`` (targets ``idx``)."""
        index, center, scale = self._params(idx, y)
        cols = [
            TARGET_TRANSFORMS[self.transforms[i]].forward(y[..., k]) for k, i in enumerate(index)
        ]
        return (torch.stack(cols, dim=-1) - center) / scale

    def transform_array(self, y: np.ndarray, idx: Sequence[int] | None = None) -> np.ndarray:
        """:meth:`transform` on a float64 numpy array (serving: no torch overhead per
        operation on a request's few rows)."""
        groups, center, scale = self._array_params(idx)
        out = np.empty(np.shape(y), dtype=np.float64)
        for transform, cols in groups:
            out[..., cols] = transform.forward_array(y[..., cols])
        out -= center
        out /= scale
        return out

    def inverse(self, z: Tensor, idx: Sequence[int] | None = None) -> Tensor:
        """Standardised model space → original units, elementwise (samples, quantiles)."""
        index, center, scale = self._params(idx, z)
        t = z * scale + center
        cols = [
            TARGET_TRANSFORMS[self.transforms[i]].inverse(t[..., k]) for k, i in enumerate(index)
        ]
        return torch.stack(cols, dim=-1)

    def inverse_array(self, z: np.ndarray, idx: Sequence[int] | None = None) -> np.ndarray:
        """:meth:`inverse` on a float64 numpy array (serving, as :meth:`transform_array`)."""
        groups, center, scale = self._array_params(idx)
        t = z * scale + center
        for transform, cols in groups:
            t[..., cols] = transform.inverse_array(t[..., cols])
        return t

    def affine(self, idx: Sequence[int] | None, ref: Tensor) -> tuple[Tensor, Tensor]:
        """``(center, scale)`` tensors ``(m,)`` of the standardisation of targets ``idx``."""
        _, center, scale = self._params(idx, ref)
        return center, scale

    def affine_array(self, idx: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(center, scale)`` float64 arrays ``(m,)`` of the standardisation of targets ``idx``."""
        _, center, scale = self._array_params(idx)
        return center, scale

    def moments(
        self, mu: np.ndarray, sd: np.ndarray, idx: Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std in original units of Gaussians ``N(mu, sd²)`` in model space.

        On float64 numpy arrays ``(..., m)``: the serving path, which needs no gradients
        (BoTorch's posterior maps its moments with :attr:`TargetTransform.moments` on tensors).
        """
        groups, center, scale = self._array_params(idx)
        t_mu, t_var = mu * scale + center, (sd * scale) ** 2
        mean, std = np.empty_like(t_mu), np.empty_like(t_mu)
        for transform, cols in groups:
            m, v = transform.moments_array(t_mu[..., cols], t_var[..., cols])
            mean[..., cols] = m
            std[..., cols] = np.sqrt(np.maximum(v, 0.0))
        return mean, std

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
