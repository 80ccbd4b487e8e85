"""Calibration of the physics prior's uncertain constants to a lab's measurements.

The physics-informed GP (:mod:`poreml.surrogates.gp`) corrects the virtual lab's prediction of
each target by a learned offset and slope and models the rest as a GP residual. That fixes a
prior that is wrong by a scale or a shift, not one whose *shape* is wrong: a lab whose
top-down route packs denser, or traps less lithium, than the published route constants say
ranks designs differently from the prior, and an affine map of the prior's values cannot
reorder them. The field's answer is to calibrate the simulator itself (Kennedy & O'Hagan
2001, used modularly as in Bayarri et al. 2007): fit the constants the physics is least sure
of to the measurements, then let the GP model what the calibrated physics still misses.

Calibrated here are the constants the virtual-lab spec itself treats as uncertain:

* every per-route constant of the route table (spec section 3.3: packing ceiling, roughness,
  native oxide, fracture size, trapping, pore usage, stress factor, closed-pore share), each
  as ``value · exp(u)`` per route with ``u ~ N(0, ROUTE_LOG_SD²)``, capped where a constant
  has a physical limit (:data:`ROUTE_CAPS`);
* the model parameters that spec section 7 randomises (:data:`poreml.virtual_lab.params.
  RANDOMISATION`), each as ``published + half_range · v`` with ``v ~ N(0, 1)`` (a move of half
  the spec's range costs one prior standard deviation), kept inside :data:`GLOBAL_LIMITS`.

The fit is the maximum a posteriori estimate under a Gaussian misfit on every measured target
(standardised units; measurement noise plus what the physics cannot express) whose scale is
fitted with the constants (at least :data:`MISFIT_FLOOR`), by L-BFGS through the physics in
torch. The fitted constants replace the published ones only when the data show the published
ones wrong: a likelihood-ratio test of the fitted against the published constants at level
:data:`TEST_LEVEL` (χ² with as many degrees of freedom as constants). In a lab the physics
describes up to noise the prior stays the published one, rather than one bent by the noise
of a few dozen measurements. It is a point estimate: constants that the measured designs do
not inform stay at their published values, so the calibrated prior is no more confident than
the published one where nothing was measured.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from scipy.stats import chi2
from torch import Tensor

from poreml.data.schema import ROUTES
from poreml.exceptions import ConfigError
from poreml.virtual_lab.params import RANDOMISATION, LabParams, RouteTable

__all__ = [
    "GLOBAL_LIMITS",
    "MISFIT_FLOOR",
    "MISFIT_SD",
    "ROUTE_CAPS",
    "ROUTE_LOG_SD",
    "TEST_LEVEL",
    "Calibration",
    "calibrate",
]

ROUTE_LOG_SD = 0.5
"""Prior standard deviation of a route constant's log-factor (a factor of ~1.65 is 1 sd)."""

MISFIT_SD = 0.2
"""Starting value of the misfit scale (standardised target units); the fit estimates it."""

MISFIT_FLOOR = 0.02
"""Smallest misfit scale: data the published physics fits exactly keep a finite likelihood."""

ROUTE_CAPS: dict[str, float] = {"eta_max": 0.74, "kappa_max": 0.99, "s0": 0.99, "f_trap0": 0.9}
"""Physical upper limits of route constants (random close packing; fractions below 1)."""

GLOBAL_LIMITS: dict[str, tuple[float, float]] = {
    "u0": (0.05, 0.99),
    "chi": (0.01, 0.99),
    "lam_hc": (0.05, 0.95),
    "kappa_el": (0.05, 0.95),
    "lam_star": (0.05, 5.0),
}
"""Physical limits of calibrated model parameters (others: positive)."""

ROUTE_CONSTANTS: tuple[str, ...] = tuple(f.name for f in fields(RouteTable))
"""The route-table fields calibrated per route."""

GLOBAL_CONSTANTS: tuple[str, ...] = tuple(name for name, _, _ in RANDOMISATION.uniform)
"""The model parameters calibrated (spec section 7's randomised ones)."""

TEST_LEVEL = 0.001
"""Level of the likelihood-ratio test that decides whether the fitted constants replace the
published ones: strong evidence only, since with a few dozen noisy rows and 35 constants the
statistic runs above its asymptotic χ² even where the published constants are right (on the
published lab's campaign designs, 14-61 against a 5 % critical value of 49.8; 0.1 %: 66.6)."""

SHOWN_FACTOR = 1.15
"""Smallest change of a route constant (either way) that :meth:`Calibration.summary` lists."""

_FLOOR = 1e-6


@dataclass(frozen=True)
class Calibration:
    """A calibrated parameter set and how far it moved.

    Attributes:
        params: the calibrated constants (the base's scenario and instance kept).
        route_log_factors: per route constant, ``ln(calibrated / published)`` per route.
        global_shifts: per model parameter, ``(calibrated − published) / half_range`` of the
            spec's range.
        misfit_before, misfit_after: root-mean-square standardised residual of the measured
            targets under the published constants and under :attr:`params`.
        rows: training rows with at least one measured target.
        statistic: the likelihood-ratio statistic of the fitted against the published
            constants (each target's misfit scale at its estimate).
        threshold: its χ² critical value at :data:`TEST_LEVEL` (degrees of freedom: the
            calibrated constants).
        accepted: ``statistic > threshold``: the data show the published constants wrong and
            :attr:`params` holds the fitted ones; otherwise the published ones, and the
            factors and shifts are zero.
    """

    params: LabParams
    route_log_factors: dict[str, tuple[float, ...]]
    global_shifts: dict[str, float]
    misfit_before: float
    misfit_after: float
    rows: int
    statistic: float = 0.0
    threshold: float = 0.0
    accepted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict with a ``"type"`` field (saved with the model)."""
        return {
            "type": "Calibration",
            "params": self.params.to_dict(),
            "route_log_factors": {k: list(v) for k, v in self.route_log_factors.items()},
            "global_shifts": dict(self.global_shifts),
            "misfit_before": self.misfit_before,
            "misfit_after": self.misfit_after,
            "rows": self.rows,
            "statistic": self.statistic,
            "threshold": self.threshold,
            "accepted": self.accepted,
        }

    def summary(self, min_factor: float = SHOWN_FACTOR) -> dict[str, Any]:
        """What a chemist reads: per route the constants the lab moved by at least
        ``min_factor`` (as ``calibrated / published``), the model parameters moved by at least
        half their spec range, and the misfit before and after.

        Returns:
            ``rows``, ``misfit_before``, ``misfit_after``, ``routes`` (route → constant →
            factor) and ``globals`` (parameter → calibrated value).
        """
        routes: dict[str, dict[str, float]] = {route: {} for route in ROUTES}
        for name, logs in self.route_log_factors.items():
            for route, value in zip(ROUTES, logs, strict=True):
                factor = math.exp(value)
                if max(factor, 1.0 / factor) >= min_factor:
                    routes[route][name] = round(factor, 3)
        moved = {
            name: round(float(getattr(self.params.globals, name)), 6)
            for name, shift in self.global_shifts.items()
            if abs(shift) >= 1.0
        }
        return {
            "rows": self.rows,
            "accepted": self.accepted,
            "statistic": round(self.statistic, 2),
            "threshold": round(self.threshold, 2),
            "misfit_before": round(self.misfit_before, 4),
            "misfit_after": round(self.misfit_after, 4),
            "routes": routes,
            "globals": moved,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ConfigError: on a wrong ``"type"`` or a missing key.
        """
        if data.get("type") != "Calibration":
            raise ConfigError(f"expected a 'Calibration' record (got type {data.get('type')!r})")
        try:
            return cls(
                params=LabParams.from_dict(data["params"]),
                route_log_factors={
                    k: tuple(float(x) for x in v) for k, v in data["route_log_factors"].items()
                },
                global_shifts={k: float(x) for k, x in data["global_shifts"].items()},
                misfit_before=float(data["misfit_before"]),
                misfit_after=float(data["misfit_after"]),
                rows=int(data["rows"]),
                statistic=float(data["statistic"]),
                threshold=float(data["threshold"]),
                accepted=bool(data["accepted"]),
            )
        except KeyError as err:
            raise ConfigError(f"Calibration record: missing key {err}") from err


def _tensor_params(base: LabParams, u: Tensor, v: Tensor) -> Any:
    """``base`` with the calibrated constants as tensors (a stand-in the physics reads like a
    :class:`LabParams`; the dataclasses hold plain floats)."""
    g = {f.name: getattr(base.globals, f.name) for f in fields(base.globals)}
    for k, (name, lo, hi) in enumerate(RANDOMISATION.uniform):
        low, high = GLOBAL_LIMITS.get(name, (_FLOOR, math.inf))
        g[name] = (g[name] + 0.5 * (hi - lo) * v[k]).clamp(min=low, max=high)
    routes = {f.name: getattr(base.routes, f.name) for f in fields(base.routes)}
    for j, name in enumerate(ROUTE_CONSTANTS):
        values = torch.as_tensor(routes[name], dtype=u.dtype) * torch.exp(u[j])
        if name in ROUTE_CAPS:
            values = values.clamp(max=ROUTE_CAPS[name])
        routes[name] = tuple(values.unbind(0))
    return types.SimpleNamespace(
        materials=base.materials,
        globals=types.SimpleNamespace(**g),
        routes=types.SimpleNamespace(**routes),
        windows=base.windows,
    )


def _plain(base: LabParams, u: Tensor, v: Tensor) -> LabParams:
    """The calibrated constants as a :class:`LabParams` of floats."""
    ns = _tensor_params(base, u.detach(), v.detach())
    g = {name: float(getattr(ns.globals, name)) for name in GLOBAL_CONSTANTS}
    r = {name: tuple(float(x) for x in getattr(ns.routes, name)) for name in ROUTE_CONSTANTS}
    return replace(
        base,
        globals=replace(base.globals, **g),
        routes=replace(base.routes, **r),  # type: ignore[arg-type]
    )


def calibrate(
    predict: Callable[[Any], Tensor],
    y: Tensor,
    base: LabParams,
    *,
    max_iter: int = 200,
) -> Calibration:
    """Fit the uncertain constants of ``base`` to measurements (module doc).

    Args:
        predict: maps a parameter set (read like a :class:`LabParams`, constants possibly
            tensors) to the physics' prediction of the training rows in the space of ``y``,
            ``(n, T)``, differentiable in the constants.
        y: ``(n, T)`` measured targets, standardised (NaN where not measured).
        base: the published constants to start from and shrink toward.
        max_iter: most L-BFGS iterations.

    Returns:
        The :class:`Calibration`.

    Raises:
        ConfigError: when ``y`` holds no measured value.
    """
    measured = ~torch.isnan(y)
    count = int(measured.sum())
    if count == 0:
        raise ConfigError("calibration: expected measured targets (got none)")
    target = torch.where(measured, y, torch.zeros_like(y))
    u = torch.zeros(len(ROUTE_CONSTANTS), 3, dtype=y.dtype, requires_grad=True)
    v = torch.zeros(len(GLOBAL_CONSTANTS), dtype=y.dtype, requires_grad=True)
    log_sd = torch.full((y.shape[1],), math.log(MISFIT_SD), dtype=y.dtype, requires_grad=True)

    per_target = measured.sum(dim=0)  # (T,)

    def squares(u: Tensor, v: Tensor) -> Tensor:
        """Per target the sum of squared residuals ``(T,)``."""
        residual = torch.where(measured, target - predict(_tensor_params(base, u, v)), 0.0)
        return residual.pow(2).sum(dim=0)

    def loss() -> Tensor:
        # A Gaussian misfit per target with its scale fitted too: targets measured with more
        # noise weigh less, and no scale held below a target's noise has the constants chase
        # that noise.
        var = MISFIT_FLOOR**2 + torch.exp(2.0 * log_sd)
        value = (squares(u, v) / (2.0 * var) + 0.5 * per_target * torch.log(var)).sum()
        return value + 0.5 * (u / ROUTE_LOG_SD).pow(2).sum() + 0.5 * v.pow(2).sum()

    def profiled_loglik(sq: Tensor) -> float:
        """Gaussian log-likelihood with each target's misfit scale at its estimate."""
        var = MISFIT_FLOOR**2 + sq / per_target.clamp(min=1)
        return float(-0.5 * (per_target * torch.log(var)).sum())

    with torch.enable_grad():  # the physics' torch path (its numpy path takes no tensors)
        published = squares(u, v).detach()
    optimizer = torch.optim.LBFGS(
        [u, v, log_sd], max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_change=1e-9
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        value = loss()
        value.backward()
        return value

    with torch.enable_grad():
        optimizer.step(closure)
        fitted = squares(u, v).detach()
    statistic = 2.0 * (profiled_loglik(fitted) - profiled_loglik(published))
    threshold = float(chi2.ppf(1.0 - TEST_LEVEL, u.numel() + v.numel()))
    accepted = math.isfinite(statistic) and statistic > threshold
    if not accepted:  # the data do not show the published constants wrong: keep them
        u, v, fitted = torch.zeros_like(u), torch.zeros_like(v), published
    params = _plain(base, u, v)
    return Calibration(
        params=params,
        route_log_factors={  # of the constants in use, caps applied
            name: tuple(
                round(math.log(new / old), 6)
                for new, old in zip(
                    getattr(params.routes, name), getattr(base.routes, name), strict=True
                )
            )
            for name in ROUTE_CONSTANTS
        },
        global_shifts={  # of the values in use, limits applied
            name: (getattr(params.globals, name) - getattr(base.globals, name)) / (0.5 * (hi - lo))
            for name, lo, hi in RANDOMISATION.uniform
        },
        misfit_before=math.sqrt(float(published.sum()) / count),
        misfit_after=math.sqrt(float(fitted.sum()) / count),
        rows=int(measured.any(dim=1).sum()),
        statistic=statistic,
        threshold=threshold,
        accepted=accepted,
    )
