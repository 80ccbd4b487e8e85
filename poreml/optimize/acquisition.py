"""Acquisition functions and their optimisation over the campaign's mixed search space.

Strategies are looked up by name in :data:`STRATEGIES` (the config's ``campaign.acquisition``):

* ``"qlognehvi"`` - q-log noisy expected hypervolume improvement (BoTorch
  :class:`~botorch.acquisition.multi_objective.logei.qLogNoisyExpectedHypervolumeImprovement`);
* ``"qlognparego"`` - q-log noisy ParEGO (random augmented-Chebyshev scalarisations, a new
  weight vector per candidate), for many objectives where hypervolume gets expensive;
* ``"auto"`` - ``qlognehvi`` up to :data:`MAX_NEHVI_OBJECTIVES` objectives, ``qlognparego``
  above.

Outcome constraints sit *inside* the acquisition: each is a callable on the posterior samples
(negative = satisfied, scaled by the outcome's spread so one temperature suits every unit),
and so is the feasibility of the synthesis when the model has a feasibility output.

:func:`optimize_acquisition` proposes ``q`` points by sequential greedy optimisation. For each
point, candidate starting points come from the constraint-respecting Sobol sampler of the search
space (every allowed category equally often) plus small perturbations of the designs on the
current front. The best start of every category (so each route is refined) and a Boltzmann
choice of the others are refined by ``gen_candidates_scipy``; each keeps its category fixed
(``route`` is handled exactly, never relaxed):

1. all restarts at once with BoTorch's batched L-BFGS-B inside the box;
2. restarts that ended outside the parameter constraints are redone from their (feasible)
   starting points with the constraints enforced: linear ones as BoTorch
   ``inequality_constraints``, nonlinear ones as ``nonlinear_inequality_constraints``
   (SLSQP, intra-point). A local optimum found in phase 1 that satisfies the constraints is
   also a local optimum of the constrained problem, so the result is the same as running
   SLSQP everywhere, at a fraction of the cost.

The best feasible refined point over all categories is kept, added to ``X_pending``, and the
next point is chosen.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.multi_objective.logei import (
    qLogNoisyExpectedHypervolumeImprovement,
)
from botorch.acquisition.multi_objective.objective import WeightedMCMultiOutputObjective
from botorch.acquisition.multi_objective.parego import qLogNParEGO
from botorch.exceptions.warnings import OptimizationWarning
from botorch.generation.gen import gen_candidates_scipy
from botorch.optim.initializers import initialize_q_batch
from botorch.sampling.get_sampler import get_sampler
from botorch.utils.sampling import sample_simplex
from torch import Tensor

from poreml.exceptions import ConfigError, OptimizationError
from poreml.optimize.strategy import (
    MAX_NEHVI_OBJECTIVES,
    STRATEGIES,
    AcquisitionSettings,
    resolve_strategy,
)

if TYPE_CHECKING:
    from botorch.models.model import Model

    from poreml.design.objectives import Objective, OutcomeConstraint
    from poreml.design.search_space import SearchSpace

__all__ = [
    "MAX_NEHVI_OBJECTIVES",
    "STRATEGIES",
    "AcquisitionSettings",
    "IndependentPoints",
    "OutcomeConstraintFn",
    "ProblemSpec",
    "build_acquisition",
    "optimize_acquisition",
    "resolve_strategy",
    "torch_threads",
]

CONSTRAINT_TOL = 1e-9
"""Slack (original units) below which a refined point counts as violating a constraint."""


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (0 = leave as is), then restore.

    GP fits and acquisition evaluations here involve small matrices, where thread start-up
    and contention cost more than they save; one thread is fastest on a busy machine.

    Args:
        n: threads for the block (:attr:`AcquisitionSettings.torch_threads`).
    """
    if n <= 0:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class OutcomeConstraintFn:
    """One outcome constraint as a BoTorch constraint callable (negative = satisfied).

    ``c(Z) = -(sign * (Z[..., index] - bound)) / scale``.

    Args:
        index: model output holding the constrained outcome.
        sign: ``+1`` for ``>=``, ``-1`` for ``<=``.
        bound: the limit, original units.
        scale: typical spread of the outcome (e.g. its standard deviation in the data), so
            that the sigmoid temperature ``eta`` means the same for every unit.
    """

    def __init__(self, index: int, sign: float, bound: float, scale: float) -> None:
        self.index = int(index)
        self.sign = float(sign)
        self.bound = float(bound)
        self.scale = float(scale) if scale > 0 and math.isfinite(scale) else 1.0

    def __call__(self, Z: Tensor) -> Tensor:
        """Scaled violation, shape ``(sample_shape, batch, q)`` from samples ``(..., q, m)``."""
        return -self.sign * (Z[..., self.index] - self.bound) / self.scale

    def __repr__(self) -> str:
        op = ">=" if self.sign > 0 else "<="
        return f"OutcomeConstraintFn(output {self.index} {op} {self.bound:g}, scale {self.scale:g})"


@dataclass(frozen=True)
class ProblemSpec:
    """What the acquisition function needs to know about the problem, in model-output terms.

    Attributes:
        outcome_names: model outputs, in order (objectives first, then constrained columns,
            then possibly ``"feasible"``).
        objectives: the campaign objectives.
        outcome_constraints: the campaign outcome constraints.
        scales: spread of each model output (for constraint scaling), same order.
        feasibility_index: output predicting the probability of a successful synthesis, or
            None.
    """

    outcome_names: tuple[str, ...]
    objectives: tuple[Objective, ...]
    outcome_constraints: tuple[OutcomeConstraint, ...]
    scales: tuple[float, ...]
    feasibility_index: int | None = None

    @property
    def ref_point(self) -> list[float]:
        """Signed thresholds (larger-is-better frame)."""
        return [o.maximization_threshold for o in self.objectives]

    def objective(self) -> WeightedMCMultiOutputObjective:
        """Selects the objective outputs and flips minimised ones."""
        idx = [self.outcome_names.index(o.name) for o in self.objectives]
        weights = torch.tensor([o.sign for o in self.objectives], dtype=torch.double)
        return WeightedMCMultiOutputObjective(
            weights=weights, outcomes=idx, num_outcomes=len(self.outcome_names)
        )

    def constraints(self) -> list[Callable[[Tensor], Tensor]] | None:
        """Constraint callables for the outcome constraints and the feasibility output."""
        out: list[Callable[[Tensor], Tensor]] = []
        for c in self.outcome_constraints:
            k = self.outcome_names.index(c.name)
            out.append(OutcomeConstraintFn(k, c.sign, c.bound, self.scales[k]))
        if self.feasibility_index is not None:
            out.append(OutcomeConstraintFn(self.feasibility_index, 1.0, 0.5, 0.25))
        return out or None


def build_acquisition(
    strategy: str,
    model: Model,
    spec: ProblemSpec,
    X_baseline: Tensor,
    X_pending: Tensor | None,
    settings: AcquisitionSettings,
    seed: int,
) -> AcquisitionFunction:
    """Build the acquisition function ``strategy`` (a resolved name).

    Args:
        strategy: ``"qlognehvi"`` or ``"qlognparego"``.
        model: fitted model over ``spec.outcome_names`` on the encoded space.
        spec: objectives, constraints and output layout.
        X_baseline: encoded observed designs, shape ``(n, d)``.
        X_pending: encoded pending designs, shape ``(p, d)``, or None.
        settings: MC sample count and pruning.
        seed: seed of the QMC sampler and of ParEGO's weights.

    Returns:
        An MC acquisition function to maximise.
    """
    posterior = model.posterior(X_baseline[:1])
    sampler = get_sampler(posterior, torch.Size([settings.mc_samples]), seed=seed)
    pending = X_pending if X_pending is not None and len(X_pending) else None
    if strategy == "qlognehvi":
        return qLogNoisyExpectedHypervolumeImprovement(
            model=model,
            ref_point=spec.ref_point,
            X_baseline=X_baseline,
            sampler=sampler,
            objective=spec.objective(),
            constraints=spec.constraints(),
            X_pending=pending,
            prune_baseline=settings.prune_baseline,
            cache_root=False,
        )
    if strategy == "qlognparego":
        weights = sample_simplex(len(spec.objectives), n=1, dtype=torch.double, seed=int(seed))
        return qLogNParEGO(
            model=model,
            X_baseline=X_baseline,
            scalarization_weights=weights.squeeze(0),
            sampler=sampler,
            objective=spec.objective(),
            constraints=spec.constraints(),
            X_pending=pending,
            prune_baseline=settings.prune_baseline,
            cache_root=False,
        )
    raise ConfigError(f"unknown acquisition strategy {strategy!r}; expected one of {STRATEGIES}")


def _linear_ok(X: Tensor, constraints: Sequence[tuple[Tensor, Tensor, float]] | None) -> Tensor:
    ok = torch.ones(X.shape[:-1], dtype=torch.bool)
    for idx, coef, rhs in constraints or ():
        ok &= (X[..., idx] * coef.to(X)).sum(dim=-1) >= rhs - CONSTRAINT_TOL
    return ok


def feasible_mask(space: SearchSpace, X: Tensor) -> Tensor:
    """Which encoded points satisfy every parameter constraint and the bounds.

    Args:
        space: the search space.
        X: encoded points, shape ``(n, d)``.

    Returns:
        Boolean tensor of shape ``(n,)``.
    """
    bounds = space.bounds.to(X)
    ok = ((bounds[0] - 1e-12 <= X) & (bounds[1] + 1e-12 >= X)).all(dim=-1)
    if space.constraints:
        ok &= (space.evaluate_constraints(X) >= -CONSTRAINT_TOL).all(dim=-1)
    return ok


def spray(
    space: SearchSpace, centres: Tensor, n_per: int, std: float, generator: torch.Generator
) -> Tensor:
    """Constraint-respecting Gaussian perturbations of ``centres`` (categories unchanged).

    Args:
        space: the search space.
        centres: encoded points, shape ``(c, d)``.
        n_per: perturbations per centre.
        std: standard deviation on the unit cube.
        generator: torch random generator.

    Returns:
        Encoded points, shape ``(k, d)`` with ``k <= c * n_per``, all feasible.
    """
    if n_per <= 0 or len(centres) == 0:
        return centres.new_zeros(0, space.dim)
    cont = space.continuous_dims
    X = centres.repeat_interleave(n_per, dim=0).clone()
    noise = torch.randn(len(X), len(cont), generator=generator, dtype=X.dtype) * std
    X[:, cont] = (X[:, cont] + noise).clamp(0.0, 1.0)
    return X[feasible_mask(space, X)]


def optimize_acquisition(
    make_acqf: Callable[[Tensor | None, int], AcquisitionFunction],
    space: SearchSpace,
    q: int,
    settings: AcquisitionSettings,
    *,
    seed: int,
    X_pending: Tensor | None = None,
    X_front: Tensor | None = None,
    held: Sequence[dict[int, float] | None] | None = None,
) -> tuple[Tensor, list[float]]:
    """Propose ``q`` encoded points by sequential greedy maximisation.

    Args:
        make_acqf: builds the acquisition function given the pending points (shape
            ``(p, d)`` or None) and the index of the point being chosen; called once per
            proposed point.
        space: the search space (bounds, categories, parameter constraints, sampler).
        q: number of points.
        settings: restarts, raw samples, iterations, spray.
        seed: seed of the raw samples, the spray and the Boltzmann selection.
        X_pending: encoded points already awaiting results, shape ``(p, d)``.
        X_front: encoded designs of the current front, shape ``(f, d)``: centres of the
            spray points.
        held: per point, categorical columns held at a code (``{dim: code}``, e.g. the
            route an exploration point must use), or None to optimise over every category.

    Returns:
        ``(X, values)``: the points, shape ``(q, d)``, each satisfying every parameter
        constraint, and their acquisition values at the time they were chosen.

    Raises:
        OptimizationError: no feasible starting point could be found.
    """
    cat_dims = space.categorical_dims
    linear = space.inequality_constraints
    nonlinear = space.nonlinear_inequality_constraints
    bounds = space.bounds
    chosen: list[Tensor] = []
    values: list[float] = []
    gen = torch.Generator().manual_seed(int(seed))
    for i in range(q):
        pending = _stack(X_pending, chosen)
        acqf = make_acqf(pending, i)
        raw = space.sample_tensor(settings.raw_samples, seed=int(seed) * 7919 + i)
        if X_front is not None and len(X_front):
            raw = torch.cat(
                [raw, spray(space, X_front, settings.spray_points, settings.spray_std, gen)]
            )
        if held is not None and held[i]:
            for dim, code in held[i].items():  # every start on the held category
                raw[:, dim] = code
        raw = raw[feasible_mask(space, raw)]
        if len(raw) == 0:
            raise OptimizationError(
                "no starting point satisfies the parameter constraints; loosen them or widen "
                "the parameter bounds."
            )
        with torch.no_grad():
            raw_vals = torch.cat([acqf(chunk.unsqueeze(-2)) for chunk in raw.split(256)])
        n_ic = min(settings.num_restarts, len(raw))
        ics, _ = _select_initial(raw, raw_vals, n_ic, gen, cat_dims)
        # Phase 1: every restart at once by BoTorch's batched L-BFGS-B within the box.
        cand = _refine_box(acqf, ics, bounds, cat_dims, settings)
        ok = feasible_mask(space, cand) & _linear_ok(cand, linear)
        if (linear or nonlinear) and not ok.all():
            # Phase 2: restarts that left the feasible region are redone with the parameter
            # constraints enforced (SLSQP) from their feasible starting points.
            redo = ~ok
            cand[redo] = _refine(acqf, ics[redo], bounds, cat_dims, linear, nonlinear, settings)
        with torch.no_grad():
            vals = acqf(cand.unsqueeze(-2))
        # keep only refined points that satisfy every constraint
        ok = feasible_mask(space, cand) & _linear_ok(cand, linear) & torch.isfinite(vals)
        if ok.any():
            k = int(torch.argmax(torch.where(ok, vals, torch.full_like(vals, -math.inf))))
            best_x, best_v = cand[k].detach().clone(), float(vals[k])
        else:  # every refinement failed: fall back on the best (feasible) start
            with torch.no_grad():
                best_v = float(acqf(ics[:1].unsqueeze(-2)).item())
            best_x = ics[0]
        chosen.append(best_x)
        values.append(best_v)
    return torch.stack(chosen), values


def _stack(X_pending: Tensor | None, chosen: list[Tensor]) -> Tensor | None:
    parts = ([X_pending] if X_pending is not None and len(X_pending) else []) + (
        [torch.stack(chosen)] if chosen else []
    )
    return torch.cat(parts) if parts else None


def _select_initial(
    raw: Tensor, vals: Tensor, n: int, gen: torch.Generator, cat_dims: Sequence[int]
) -> tuple[Tensor, Tensor]:
    """Starting points: the best raw point of every category combination (so each route is
    refined), then a Boltzmann-weighted choice of the others; best first."""
    order = torch.argsort(vals, descending=True)
    raw, vals = raw[order], vals[order]
    picks: list[int] = []
    if cat_dims:
        seen: set[tuple[float, ...]] = set()
        for i, row in enumerate(raw):
            key = tuple(float(v) for v in row[list(cat_dims)])
            if key not in seen and torch.isfinite(vals[i]):
                seen.add(key)
                picks.append(i)
    picks = sorted(picks[:n]) or [0]
    rest = torch.ones(len(raw), dtype=torch.bool)
    rest[picks] = False
    rest &= torch.isfinite(vals)
    need = n - len(picks)
    X_sel, v_sel = raw[picks], vals[picks]
    if need > 0 and rest.sum() > need:
        with torch.random.fork_rng():
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            more_x, more_v = initialize_q_batch(raw[rest].unsqueeze(-2), vals[rest], need, eta=2.0)
        X_sel = torch.cat([X_sel, more_x.squeeze(-2)])
        v_sel = torch.cat([v_sel, more_v])
    elif need > 0:
        X_sel = torch.cat([X_sel, raw[rest][:need]])
        v_sel = torch.cat([v_sel, vals[rest][:need]])
    return X_sel, v_sel


class IndependentPoints(AcquisitionFunction):
    """Sum of ``acqf`` over the points of a q-batch, each evaluated on its own (q = 1).

    Lets one scipy problem refine several starting points at once: the restarts become the
    "q" points of one batch, the objective is separable, and BoTorch's intra-point parameter
    constraints apply to each of them. Evaluating all restarts in one batched posterior call
    is several times cheaper than one call per restart.

    Args:
        acqf: a q = 1 acquisition function.
    """

    def __init__(self, acqf: AcquisitionFunction) -> None:
        super().__init__(model=acqf.model)
        self.acqf = acqf

    def forward(self, X: Tensor) -> Tensor:
        """Values ``batch`` from points ``batch x b x d``."""
        vals = self.acqf(X.reshape(-1, 1, X.shape[-1]))
        return vals.view(X.shape[:-1]).sum(dim=-1)


def _refine_box(
    acqf: AcquisitionFunction,
    X0: Tensor,
    bounds: Tensor,
    cat_dims: Sequence[int],
    settings: AcquisitionSettings,
) -> Tensor:
    """Refine the starting points ``X0`` (``b x d``) within the box, each on its own.

    BoTorch's parallel L-BFGS-B (one batched posterior call per iteration for all restarts);
    each point's categorical columns are fixed at its starting value (batch-shaped
    ``fixed_features``), so categories are optimised exactly, never relaxed.

    Returns:
        The refined points, ``b x d`` (the starting points when scipy fails).
    """
    fixed = {dim: X0[:, dim].clone() for dim in cat_dims} or None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizationWarning)
            cand, _ = gen_candidates_scipy(
                initial_conditions=X0.unsqueeze(-2),
                acquisition_function=acqf,
                lower_bounds=bounds[0],
                upper_bounds=bounds[1],
                options={"maxiter": settings.maxiter},
                fixed_features=fixed,
            )
        return cand.view_as(X0).detach().clone()
    except (RuntimeError, ValueError) as err:  # scipy failures: keep the starts
        warnings.warn(
            f"acquisition refinement failed ({err}); keeping the start points",
            OptimizationWarning,
            stacklevel=2,
        )
        return X0.clone()


def _refine(
    acqf: AcquisitionFunction,
    X0: Tensor,
    bounds: Tensor,
    cat_dims: Sequence[int],
    linear: list[tuple[Tensor, Tensor, float]] | None,
    nonlinear: list[tuple[Callable, bool]] | None,
    settings: AcquisitionSettings,
) -> Tensor:
    """Refine the starting points ``X0`` (``b x d``, feasible) with ``gen_candidates_scipy``.

    All restarts form one problem (:class:`IndependentPoints`); each point's categorical
    columns are held at its starting value through equal lower and upper bounds, so every
    category is optimised exactly, never relaxed. Linear and nonlinear parameter constraints
    are passed to BoTorch as intra-point constraints (SLSQP when there are any).

    Returns:
        The refined points, ``b x d`` (the starting points when scipy fails).
    """
    lower = bounds[0].expand_as(X0).clone()
    upper = bounds[1].expand_as(X0).clone()
    for dim in cat_dims:
        lower[:, dim] = X0[:, dim]
        upper[:, dim] = X0[:, dim]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizationWarning)
            warnings.filterwarnings("ignore", message=".*Values in x were outside bounds.*")
            cand, _ = gen_candidates_scipy(
                initial_conditions=X0.unsqueeze(0),
                acquisition_function=IndependentPoints(acqf),
                lower_bounds=lower,
                upper_bounds=upper,
                inequality_constraints=linear,
                nonlinear_inequality_constraints=nonlinear,
                options={"maxiter": settings.maxiter},
            )
        return cand.view_as(X0).detach()
    except (RuntimeError, ValueError) as err:  # scipy / SLSQP failures: keep the starts
        warnings.warn(
            f"acquisition refinement failed ({err}); keeping the start points",
            OptimizationWarning,
            stacklevel=2,
        )
        return X0
