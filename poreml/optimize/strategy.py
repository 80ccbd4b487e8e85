"""Which acquisition strategy a campaign uses and how hard it works: settings stored with it.

Torch-free on purpose: a campaign is loaded (``observe``, ``status``, ``export``, ``cancel``)
without importing torch or BoTorch; only proposing loads :mod:`poreml.optimize.acquisition`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from poreml.design.checks import as_int, check_keys, check_type_field, config_error
from poreml.exceptions import ConfigError

__all__ = [
    "FEASIBILITY_PRIORS",
    "MAX_NEHVI_OBJECTIVES",
    "STRATEGIES",
    "AcquisitionSettings",
    "resolve_strategy",
]

MAX_NEHVI_OBJECTIVES = 4
"""Most objectives for which ``"auto"`` picks qLogNEHVI; above, qLogNParEGO."""

STRATEGIES: tuple[str, ...] = ("auto", "qlognehvi", "qlognparego")
"""Acquisition strategy names a campaign config may use."""

FEASIBILITY_PRIORS: tuple[str, ...] = ("physics", "none")
"""Allowed values of :attr:`AcquisitionSettings.feasibility_prior`."""


@dataclass(frozen=True)
class AcquisitionSettings:
    """How hard the campaign works on each proposal (stored with the campaign).

    Attributes:
        num_restarts: starting points refined by the gradient optimiser per candidate.
        raw_samples: Sobol points scored to choose the starting points, per candidate.
        mc_samples: quasi-Monte-Carlo posterior samples of the acquisition function.
        maxiter: iterations of each scipy refinement.
        spray_points: perturbed copies of each current front design added to the raw
            samples (local refinement of the front).
        spray_std: standard deviation of those perturbations on the unit cube.
        prune_baseline: drop observed points that cannot be Pareto-optimal from qLogNEHVI's
            baseline (faster).
        predicted_front_points: Sobol designs scored for the model-predicted front.
        torch_threads: torch intra-op threads while proposing (0 = leave torch's setting);
            the matrices are small, so one thread is usually fastest.
        use_failed_measurements: train the outcome surrogates on measurements of failed
            syntheses too (see :mod:`poreml.optimize.models`).
        feasibility_prior: ``"physics"`` (the virtual lab's route windows as prior of the
            synthesis-success model, corrected by the data) or ``"none"`` (learned from the
            success labels alone); see :mod:`poreml.optimize.models`.
        route_floor: share of the campaign's designs each synthesis route keeps while the
            prior check has not confirmed the physics there (one point of a batch goes to the
            most under-sampled such route; :func:`poreml.optimize.prior_check.
            routes_to_explore`); 0 (default) turns route exploration off.
        prior_by_route: the physics-informed GP learns its prior weights per route
            (:class:`poreml.surrogates.gp.PhysicsMean`), so a route where the physics is wrong
            is fitted on its own (off by default: on the benchmark's labs its extra weights
            cost more accuracy at 24 observations than they gained).
        calibrate_prior: the physics-informed GP first fits the physics' uncertain constants
            (route table, the model parameters the spec randomises) to the campaign's
            measurements and keeps them when a likelihood-ratio test shows the published ones
            wrong (:mod:`poreml.surrogates.calibration`), so a lab whose routes behave
            differently from the published constants gets a prior of the right shape (on by
            default: on the benchmark's labs that depart from the prior it is what reaches
            their fronts; where the prior is right the test keeps the published constants).
        widen_uncertainty: the acquisition widens each outcome's posterior by the factor the
            campaign's own out-of-sample record calls for
            (:func:`poreml.optimize.proposals.widening`), so a model over-confident where the
            lab departs from its physics prior explores there.
    """

    num_restarts: int = 6
    raw_samples: int = 256
    mc_samples: int = 64
    maxiter: int = 25
    spray_points: int = 16
    spray_std: float = 0.05
    prune_baseline: bool = True
    predicted_front_points: int = 4096
    torch_threads: int = 1
    use_failed_measurements: bool = True
    feasibility_prior: str = "physics"
    route_floor: float = 0.0
    prior_by_route: bool = False
    calibrate_prior: bool = True
    widen_uncertainty: bool = True

    def __post_init__(self) -> None:
        as_int(self.num_restarts, "settings.num_restarts", minimum=1, maximum=256)
        as_int(self.raw_samples, "settings.raw_samples", minimum=2, maximum=1_000_000)
        as_int(self.mc_samples, "settings.mc_samples", minimum=1, maximum=8192)
        as_int(self.maxiter, "settings.maxiter", minimum=1, maximum=100_000)
        as_int(self.spray_points, "settings.spray_points", minimum=0, maximum=10_000)
        as_int(
            self.predicted_front_points,
            "settings.predicted_front_points",
            minimum=1,
            maximum=10_000_000,
        )
        as_int(self.torch_threads, "settings.torch_threads", minimum=0, maximum=1024)
        if self.num_restarts > self.raw_samples:
            raise config_error(
                "settings.num_restarts",
                f"at most raw_samples ({self.raw_samples})",
                self.num_restarts,
                "lower num_restarts or raise raw_samples",
            )
        if (
            isinstance(self.spray_std, bool)
            or not isinstance(self.spray_std, int | float)
            or not 0.0 < float(self.spray_std) <= 1.0
        ):
            raise config_error(
                "settings.spray_std", "a number in (0, 1]", self.spray_std, "use e.g. 0.05"
            )
        if self.feasibility_prior not in FEASIBILITY_PRIORS:
            raise config_error(
                "settings.feasibility_prior",
                f"one of {', '.join(map(repr, FEASIBILITY_PRIORS))}",
                self.feasibility_prior,
                "use 'physics' or 'none'",
            )
        if not isinstance(self.use_failed_measurements, bool):
            raise config_error(
                "settings.use_failed_measurements",
                "true or false",
                self.use_failed_measurements,
                "use a bool",
            )
        if (
            isinstance(self.route_floor, bool)
            or not isinstance(self.route_floor, int | float)
            or not 0.0 <= float(self.route_floor) <= 0.5
        ):
            raise config_error(
                "settings.route_floor",
                "a number in [0, 0.5]",
                self.route_floor,
                "use e.g. 0.15, or 0 to turn route exploration off",
            )
        if not isinstance(self.calibrate_prior, bool):
            raise config_error(
                "settings.calibrate_prior", "true or false", self.calibrate_prior, "use a bool"
            )
        if not isinstance(self.widen_uncertainty, bool):
            raise config_error(
                "settings.widen_uncertainty", "true or false", self.widen_uncertainty, "use a bool"
            )
        if not isinstance(self.prior_by_route, bool):
            raise config_error(
                "settings.prior_by_route", "true or false", self.prior_by_route, "use a bool"
            )
        if not isinstance(self.prune_baseline, bool):
            raise config_error(
                "settings.prune_baseline", "true or false", self.prune_baseline, "use a bool"
            )

    @classmethod
    def fast(cls) -> AcquisitionSettings:
        """Small settings for tests and quick looks (seconds per proposal)."""
        return cls(
            num_restarts=2,
            raw_samples=64,
            mc_samples=64,
            maxiter=30,
            spray_points=4,
            predicted_front_points=512,
        )

    def replace(self, **changes: Any) -> AcquisitionSettings:
        """A copy with ``changes`` applied (validated)."""
        return AcquisitionSettings(**{**asdict(self), **changes})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with a ``"type"`` field."""
        return {"type": type(self).__name__, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AcquisitionSettings:
        """Inverse of :meth:`to_dict` (missing fields take their defaults)."""
        names = [f.name for f in fields(cls)]
        check_keys(data, "settings", allowed=("type", *names), required=("type",))
        check_type_field(data, cls.__name__, "settings")
        return cls(**{k: v for k, v in data.items() if k != "type"})


def resolve_strategy(name: str, n_objectives: int) -> str:
    """The concrete strategy for the config name ``name``.

    Raises:
        ConfigError: an unknown name.
    """
    if name not in STRATEGIES:
        raise ConfigError(
            f"campaign.acquisition: expected one of {', '.join(map(repr, STRATEGIES))}, got "
            f"{name!r}. Fix: use 'auto' unless you need a specific acquisition function."
        )
    if name == "auto":
        return "qlognehvi" if n_objectives <= MAX_NEHVI_OBJECTIVES else "qlognparego"
    return name
