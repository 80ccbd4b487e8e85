"""How a campaign proposes a batch: space-filling Sobol points or the model-based acquisition.

Proposal strategy. Until ``initial_points`` observations exist, proposals are space-filling:
the search space's constraint-respecting scrambled Sobol sequence (continued across rounds),
with the allowed routes cycled evenly. Then the configured surrogate (default: the
physics-informed GP, one per outcome) is fitted and the acquisition function (qLogNEHVI; over
:data:`~poreml.optimize.acquisition.MAX_NEHVI_OBJECTIVES` objectives qLogNParEGO) is maximised
with outcome constraints inside the acquisition, pending candidates as ``X_pending``, the
categorical ``route`` held exactly (one refinement per route), and parameter constraints as
BoTorch linear / nonlinear inequality constraints
(:mod:`poreml.optimize.acquisition`). Every proposal is checked against the search space (bounds
and parameter constraints) before it is returned.

Failed syntheses. A result with ``feasible = false`` is a failed synthesis. It never enters the
observed Pareto front, it does not train the outcome surrogates (its measurements describe what
the route could make, not the design asked for), and it trains a feasibility model whose
predicted success probability is one more constraint inside the acquisition
(:mod:`poreml.optimize.models`), so designs near failures stop being proposed. A blank or absent
``feasible`` counts as made.

Model checking. Every model-based proposal stores its predicted mean and standard deviation;
once the lab's results come back they form an out-of-sample record of how well calibrated the
model is (:mod:`poreml.optimize.model_check`). When the record shows the model over-confident
for an outcome (a physics prior wrong for this lab is the usual cause), the acquisition widens
that outcome's posterior by the factor the record calls for
(:func:`~poreml.optimize.model_check.widening`, setting ``widen_uncertainty``), so it explores
where the model has been wrong instead of trusting it; the predictions written to the proposal
stay the model's own, so the record keeps measuring the model. Optionally
(settings ``route_floor`` and ``prior_by_route``, off by default) a route the prior check
(:mod:`poreml.optimize.prior_check`) has not confirmed keeps a share of the designs, and the
physics-informed GP learns its prior weights per route.

Every proposal is rounded to :data:`SIGNIFICANT_DIGITS` for readability where that keeps it
inside the search space.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from gpytorch.utils.warnings import NumericalWarning
from torch import Tensor

from poreml.data.schema import CONTINUOUS_DESIGN_COLUMNS, DESIGN_COLUMNS
from poreml.design.config import CampaignConfig
from poreml.design.search_space import SearchSpace
from poreml.exceptions import OptimizationError
from poreml.optimize.acquisition import (
    AcquisitionSettings,
    ProblemSpec,
    build_acquisition,
    optimize_acquisition,
    resolve_strategy,
    torch_threads,
)
from poreml.optimize.model_check import calibration, widening
from poreml.optimize.models import CampaignModel, InsufficientDataError, fit_campaign_model
from poreml.optimize.pareto import (
    observed_front,
    pareto_mask,
    predicted_front,
    signed_objectives,
)
from poreml.optimize.prior_check import route_report, routes_to_explore
from poreml.optimize.state import CampaignState, round_seed

__all__ = [
    "SIGNIFICANT_DIGITS",
    "Proposal",
    "fit_model",
    "model_front",
    "propose",
]

SIGNIFICANT_DIGITS = 6
"""Proposed continuous design values are rounded to this many significant digits (when the
rounded design still satisfies every constraint), so the CSV a lab receives is readable."""


@dataclass
class Proposal:
    """A proposed batch and how it was made.

    Attributes:
        frame: design columns (and ``predicted_*`` columns for model-based proposals).
        strategy: ``"sobol"`` or the acquisition strategy.
        reason: why that strategy.
        acquisition_values: acquisition value per candidate (empty for Sobol points).
        model_info: sources, diagnostics, calibration and timings of the model (empty for
            Sobol points).
        model: the fitted model (None for Sobol points).
    """

    frame: pd.DataFrame
    strategy: str
    reason: str
    acquisition_values: list[float] = field(default_factory=list)
    model_info: dict[str, Any] = field(default_factory=dict)
    model: CampaignModel | None = None


def propose(
    state: CampaignState,
    config: CampaignConfig,
    space: SearchSpace,
    settings: AcquisitionSettings,
    n: int,
    seed: int,
) -> Proposal:
    """Propose ``n`` designs for the campaign in ``state`` (Sobol position advanced in place).

    Args:
        state: the campaign state (a transaction's working copy).
        config: the campaign config.
        space: its search space.
        settings: acquisition-optimisation effort.
        n: designs to propose.
        seed: the round's seed.

    Returns:
        The proposal (design columns in contract order, no ids yet).

    Raises:
        OptimizationError: a proposal broke the search space (an internal error).
    """
    obs = state.observations_frame()
    if len(obs) < config.initial_points:
        reason = f"{len(obs)} of {config.initial_points} initial observations"
        return _sobol(state, space, n, reason)
    try:
        with warnings.catch_warnings():
            # Expected, harmless, and not actionable for a campaign user: variances rounded
            # up from -1e-12, and BoTorch's hint for ParEGO before any feasible observation.
            warnings.simplefilter("ignore", NumericalWarning)
            warnings.filterwarnings("ignore", message="When all training points are infeas")
            return _model_based(state, config, space, settings, obs, n, seed)
    except InsufficientDataError as err:
        return _sobol(state, space, n, f"space-filling fallback: {err}")


def _sobol(state: CampaignState, space: SearchSpace, n: int, reason: str) -> Proposal:
    drawn = int(state.sobol_drawn)
    X = space.sample_tensor(drawn + n, seed=int(state.seed))[drawn:].clone()
    combos = space.fixed_features_list()
    if combos:
        gen = torch.Generator().manual_seed(round_seed(int(state.seed), drawn))
        picks = [(drawn + j) % len(combos) for j in range(n)]
        order = torch.randperm(n, generator=gen).tolist()
        for j, k in enumerate(order):
            for dim, code in combos[picks[k]].items():
                X[j, dim] = code
    state.sobol_drawn = drawn + n
    return Proposal(_finish(space, X), "sobol", reason)


def _model_based(
    state: CampaignState,
    cfg: CampaignConfig,
    space: SearchSpace,
    settings: AcquisitionSettings,
    obs: pd.DataFrame,
    n: int,
    seed: int,
) -> Proposal:
    strategy = resolve_strategy(cfg.acquisition, len(cfg.objectives))
    t0 = time.perf_counter()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        fitted = fit_model(obs, cfg, space, settings, seed)
    fit_seconds = time.perf_counter() - t0
    inside = space.contains(obs[list(DESIGN_COLUMNS)])
    if not inside.any():
        raise InsufficientDataError("no observation inside the search space yet")
    X_base = space.to_tensor(obs.loc[inside])
    made = obs["feasible"].map(lambda v: v is not False).to_numpy(dtype=bool)
    complete = obs[list(cfg.outcome_names)].notna().all(axis=1).to_numpy()
    incomplete = inside & made & ~complete
    pend = state.pending_frame()
    parts = []
    if len(pend):
        pin = space.contains(pend[list(DESIGN_COLUMNS)])
        if pin.any():
            parts.append(space.to_tensor(pend.loc[pin]))
    if incomplete.any():
        parts.append(space.to_tensor(obs.loc[incomplete]))
    X_pending = torch.cat(parts) if parts else None
    front = observed_front(obs.loc[inside], cfg.objectives, cfg.outcome_constraints)
    if len(front) == 0:  # no eligible point yet: refine around the made, objective front
        cand = obs.loc[inside & made & complete]
        if len(cand):
            mask = pareto_mask(signed_objectives(cand, cfg.objectives))
            front = cand.loc[mask]
    X_front = space.to_tensor(front) if len(front) else None
    spec = ProblemSpec(
        outcome_names=fitted.outcome_names,
        objectives=cfg.objectives,
        outcome_constraints=cfg.outcome_constraints,
        scales=fitted.scales,
        feasibility_index=fitted.feasibility_index,
    )

    def make_acqf(pending: Tensor | None, i: int) -> Any:
        return build_acquisition(
            strategy, fitted.model, spec, X_base, pending, settings, seed + 31 * i
        )

    explore = _routes_to_explore(obs, pend, cfg, space, settings, n)
    held: list[dict[int, float] | None] = [None] * (n - len(explore))
    if explore:  # the last points of the batch, each on its route
        dim = space.categorical_dims[list(space.categories).index("route")]
        routes = list(space.categories["route"])
        held += [{dim: float(routes.index(r))} for r in explore]
    widen = widening(state.observations, cfg.outcome_names, enabled=settings.widen_uncertainty)
    t1 = time.perf_counter()
    with torch.random.fork_rng(), fitted.widened(widen):
        torch.manual_seed(seed)
        X, values = optimize_acquisition(
            make_acqf,
            space,
            n,
            settings,
            seed=seed,
            X_pending=X_pending,
            X_front=X_front,
            held=held,
        )
    frame = _finish(space, X)
    mean, std = fitted.predict(space.to_tensor(frame), observation_noise=True)
    for j, name in enumerate(fitted.outcome_names):
        if name == "feasible":
            frame["predicted_feasible_probability"] = mean[:, j].clamp(0, 1).numpy()
            continue
        frame[f"predicted_{name}_mean"] = mean[:, j].numpy()
        frame[f"predicted_{name}_std"] = std[:, j].numpy()
    info = {
        "sources": fitted.sources,
        "outputs": list(fitted.outcome_names),
        "diagnostics": {k: v for k, v in fitted.diagnostics.items() if math.isfinite(v)},
        "calibration": calibration(state.observations, cfg.outcome_names),
        "fit_seconds": round(fit_seconds, 3),
        "optimize_seconds": round(time.perf_counter() - t1, 3),
        "n_baseline": int(X_base.shape[0]),
        "n_pending": 0 if X_pending is None else int(X_pending.shape[0]),
        "explored_routes": explore,
        "widening": {k: round(v, 4) for k, v in widen.items()},
        "physics_calibration": fitted.physics_calibration(),
    }
    return Proposal(
        frame,
        strategy,
        f"model-based ({strategy})",
        [float(v) for v in values],
        info,
        fitted,
    )


def _routes_to_explore(
    obs: pd.DataFrame,
    pending: pd.DataFrame,
    cfg: CampaignConfig,
    space: SearchSpace,
    settings: AcquisitionSettings,
    n: int,
) -> list[str]:
    """Routes that get a point of this batch (:func:`~poreml.optimize.prior_check.
    routes_to_explore`); one point per batch of up to four."""
    allowed = space.categories.get("route", ())
    if settings.route_floor <= 0 or len(allowed) < 2:
        return []
    report = route_report(obs, cfg.outcome_names)
    waiting = pending["route"].value_counts().to_dict() if len(pending) else {}
    return routes_to_explore(
        report, allowed, waiting, n, settings.route_floor, slots=max(1, n // 4)
    )


def _round_sig(value: float, digits: int) -> float:
    if value == 0 or not math.isfinite(value):
        return float(value)
    return float(f"{value:.{digits}g}")


def _finish(space: SearchSpace, X: Tensor) -> pd.DataFrame:
    """Decode proposals, round them for readability and check every constraint."""
    exact = space.from_tensor(X)
    rounded = exact.copy()
    for name in CONTINUOUS_DESIGN_COLUMNS:
        rounded[name] = [_round_sig(v, SIGNIFICANT_DIGITS) for v in exact[name]]
    ok_rounded = space.contains(rounded, atol=0.0)
    frame = rounded.where(pd.DataFrame({c: ok_rounded for c in rounded.columns}), exact)
    frame = frame.astype({c: "float64" for c in CONTINUOUS_DESIGN_COLUMNS})
    ok = space.contains(frame, atol=1e-9)
    if not ok.all():
        bad = frame.loc[~ok]
        raise OptimizationError(
            f"internal check failed: {int((~ok).sum())} proposal(s) break the parameter "
            f"bounds or constraints:\n{bad.to_string()}\nPlease report this; no candidate "
            "was recorded."
        )
    return frame.reset_index(drop=True)


def fit_model(
    observations: pd.DataFrame,
    config: CampaignConfig,
    space: SearchSpace,
    settings: AcquisitionSettings,
    seed: int,
) -> CampaignModel:
    """Fit the campaign model, as :func:`propose` does (with ``settings.torch_threads``).

    Args:
        observations: the campaign's observations.
        config: the campaign config (outcomes, surrogate).
        space: its search space.
        settings: which measurements train the model, the feasibility prior, threads.
        seed: the fit's seed.

    Returns:
        The fitted model.

    Raises:
        OptimizationError: too few successful measurements to model every outcome.
    """
    with torch_threads(settings.torch_threads):
        return fit_campaign_model(
            observations,
            space,
            config.outcome_names,
            surrogate=config.surrogate,
            seed=seed,
            use_failed=settings.use_failed_measurements,
            feasibility_prior=settings.feasibility_prior,
            surrogate_params=_surrogate_params(config, settings),
        )


def _surrogate_params(config: CampaignConfig, settings: AcquisitionSettings) -> dict[str, Any]:
    """Settings the campaign passes to its surrogate: for ``gp``, per-route prior weights and
    the calibration of its physics constants."""
    if config.surrogate != "gp":
        return {}
    params: dict[str, Any] = {}
    if settings.prior_by_route:
        params["prior_by_route"] = True
    if settings.calibrate_prior:
        params["calibrate"] = True
    return params


def model_front(
    fitted: CampaignModel,
    config: CampaignConfig,
    space: SearchSpace,
    settings: AcquisitionSettings,
    n: int,
) -> pd.DataFrame:
    """The front a fitted model predicts over ``n`` Sobol designs (posterior means).

    Args:
        fitted: the campaign model.
        config: the campaign config (objectives, outcome constraints, seed).
        space: its search space.
        settings: threads.
        n: designs scored.

    Returns:
        See :func:`poreml.optimize.pareto.predicted_front`.
    """
    with torch_threads(settings.torch_threads):
        return predicted_front(
            fitted.model,
            space,
            config.objectives,
            config.outcome_constraints,
            outcome_names=fitted.outcome_names,
            feasibility_index=fitted.feasibility_index,
            n=n,
            seed=config.seed,
        )
