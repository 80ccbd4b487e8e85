"""The campaign's BoTorch model: surrogates for the outcomes plus a feasibility model.

:func:`fit_campaign_model` builds one BoTorch :class:`~botorch.models.model.ModelList` on the
search space's encoded tensor (see :class:`~poreml.design.search_space.SearchSpace`) whose
outputs (named by :attr:`CampaignModel.outcome_names`) are, in order:

1. the campaign outcomes the configured surrogate of :mod:`poreml.surrogates` predicts
   (default ``"gp"``, the physics-informed GP), in original units, through
   :class:`~poreml.surrogates.botorch_adapter.SurrogateModel`;
2. the other campaign outcomes (e.g. ``strain_buffering``), each from a plain BoTorch GP on the
   encoded space (:func:`fit_native_gp`; also every outcome with ``surrogate="native-gp"``);
3. ``"feasible"``, the probability of a successful synthesis: a GP regression on the 0/1
   success labels of every observation (a cheap stand-in for a GP classifier), present once
   a synthesis failed and one succeeded; or, with ``feasibility_prior="physics"``, the
   virtual lab's route windows as prior plus a GP on the residual labels
   (:class:`PhysicsPriorFeasibilityModel`), present from the first observations. The
   acquisition treats ``feasible >= 0.5`` as one more outcome constraint, so failed designs
   and their neighbourhood stop being proposed.

Failed syntheses (``feasible = false``). They are never on the front (:mod:`poreml.optimize.
pareto`) and they are the negative labels of the feasibility model. Whatever was measured on
them is still what the route makes when that design is requested, a function of the requested
design like any other, so by default (``use_failed=True``) those measurements also train the
outcome surrogates (early in a campaign most space-filling points fail, and dropping them
starves the surrogates); ``use_failed=False`` fits the outcome surrogates on successful (or
unflagged) observations only.

Models that need the design in physical units (the surrogates, the physics prior) get it from
:meth:`SearchSpace.decode <poreml.design.search_space.SearchSpace.decode>`, the one map from
encoded tensors to design tensors.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from botorch.exceptions.warnings import InputDataWarning
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.model import Model, ModelList
from botorch.models.transforms.outcome import Standardize
from botorch.posteriors import GPyTorchPosterior
from gpytorch.distributions import MultivariateNormal
from gpytorch.mlls import ExactMarginalLogLikelihood
from torch import Tensor

from poreml.data.schema import DESIGN_COLUMNS
from poreml.design.search_space import SearchSpace
from poreml.exceptions import OptimizationError
from poreml.optimize.prior_check import outcome_spread
from poreml.surrogates.base import TARGETS
from poreml.surrogates.botorch_adapter import SurrogateModel, UnbatchedModel
from poreml.surrogates.registry import make
from poreml.surrogates.scaling import PLAIN_TARGET_TRANSFORMS
from poreml.virtual_lab.params import lab_params
from poreml.virtual_lab.physics import realise

__all__ = [
    "FEASIBLE_OUTPUT",
    "NATIVE_SURROGATE",
    "CampaignModel",
    "InsufficientDataError",
    "OneHotInputModel",
    "PhysicsPriorFeasibilityModel",
    "fit_campaign_model",
    "fit_native_gp",
]


class InsufficientDataError(OptimizationError):
    """Too few usable measurements to fit the campaign model (the campaign then keeps
    proposing space-filling points)."""


FEASIBLE_OUTPUT = "feasible"
"""Name of the feasibility output of the campaign model."""

NATIVE_SURROGATE = "native-gp"
"""Surrogate name that skips :mod:`poreml.surrogates` and models every outcome with a plain
BoTorch GP on the encoded space (no physics prior; a baseline for comparisons)."""

MIN_ROWS = 2
"""Fewest measured rows an outcome needs to be modelled."""


class OneHotInputModel(UnbatchedModel):
    """A single-output BoTorch GP on one-hot encoded categories.

    The campaign's encoded tensor holds each categorical column as an integer code (see
    :class:`~poreml.design.search_space.SearchSpace`). This wrapper replaces the code columns
    by one-hot columns before a ``SingleTaskGP`` (Matérn 5/2 with ARD over every column), which
    fits and predicts several times faster than ``MixedSingleTaskGP`` with the same accuracy on
    a handful of categories. Gradients flow through the continuous columns.

    Args:
        gp: the fitted GP on the one-hot features.
        cat_dims: code columns of the encoded tensor.
        n_categories: number of categories of each code column.
    """

    def __init__(self, gp: Model, cat_dims: Sequence[int], n_categories: Sequence[int]) -> None:
        super().__init__()
        self.gp = gp
        self.cat_dims = list(cat_dims)
        self.n_categories = list(n_categories)
        self.widen = 1.0  # factor on the posterior standard deviation (CampaignModel.widened)

    @staticmethod
    def features(X: Tensor, cat_dims: Sequence[int], n_categories: Sequence[int]) -> Tensor:
        """``(..., d)`` encoded points → ``(..., d - c + sum(k))`` one-hot features."""
        if not cat_dims:
            return X
        keep = [i for i in range(X.shape[-1]) if i not in set(cat_dims)]
        parts = [X[..., keep]]
        for dim, k in zip(cat_dims, n_categories, strict=True):
            codes = X[..., dim].detach().round().clamp(0, k - 1).long()
            parts.append(torch.nn.functional.one_hot(codes, k).to(X))
        return torch.cat(parts, dim=-1)

    def posterior(
        self,
        X: Tensor,
        output_indices: list[int] | None = None,
        observation_noise: bool | Tensor = False,
        posterior_transform: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Posterior of the GP at the one-hot features of ``X`` (``b x q x d``)."""
        Z = self.features(X, self.cat_dims, self.n_categories)
        if self.widen == 1.0:
            return self.gp.posterior(
                Z, observation_noise=observation_noise, posterior_transform=posterior_transform
            )
        mvn = self.gp.posterior(Z, observation_noise=observation_noise).distribution
        out = GPyTorchPosterior(
            MultivariateNormal(mvn.mean, mvn.lazy_covariance_matrix * self.widen**2)
        )
        return posterior_transform(out) if posterior_transform is not None else out


class PhysicsPriorFeasibilityModel(UnbatchedModel):
    """Probability of a successful synthesis: a physics prior plus a learned GP correction.

    Posterior mean ``prior(x) + r(x)``. The prior is the virtual lab's route windows (spec
    section 2.2) made continuous: ``exp(-v(x) / tau)`` where ``v`` is how far the requested
    design lies outside the window of its route (``|ln d'/d| + |ln t'/t| + |w'_C - w_C|``
    with the realised values d', t', w'_C of :func:`poreml.virtual_lab.physics.realise`, plus
    the transcription porosity excess over its limit), so it is 1 inside the window and decays
    over a few percent outside, with a gradient that points back inside (a 0/1 step would stall
    the gradient-based acquisition optimiser). ``r`` is a GP (:func:`fit_native_gp`) fitted on
    the residuals ``label - prior`` of the observations; its variance is the GP's. Where the
    windows are right the residuals vanish and the prior decides; where a real route behaves
    differently the residual GP moves the probability toward the observations.

    Args:
        residual: the fitted residual GP (one output) on the encoded space.
        decode: encoded tensor → design tensors (:meth:`SearchSpace.decode`).
        params: virtual-lab parameters whose route windows form the prior.
        tau: decay length of the prior outside the windows (log-size units).
    """

    def __init__(
        self,
        residual: Model | None,
        decode: Callable[[Tensor], dict[str, Tensor]],
        params: Any,
        tau: float = 0.02,
    ) -> None:
        super().__init__()
        self.residual = residual
        self.decode = decode
        self.params = params
        self.tau = float(tau)

    def prior(self, X: Tensor) -> Tensor:
        """Prior success probability of encoded points ``(..., d)`` → ``(...)``
        (differentiable in the continuous columns)."""

        design = self.decode(X)
        route = design["route"].detach().long()
        out = realise({**design, "route": route}, self.params)
        d, t = design["pore_size_nm"], design["si_domain_nm"]
        phi_max = torch.tensor(
            self.params.windows.phi_feasible_max, dtype=X.dtype, device=X.device
        )[route]
        excess = (
            (torch.log(out["pore_size_nm_eff"]) - torch.log(d)).abs()
            + (torch.log(out["si_domain_nm_eff"]) - torch.log(t)).abs()
            + (out["carbon_wt_pct_eff"] - design["carbon_wt_pct"]).abs() / 100.0
            + torch.relu(design["porosity"] - phi_max)
        )
        return torch.exp(-excess / self.tau)

    def posterior(
        self,
        X: Tensor,
        output_indices: list[int] | None = None,
        observation_noise: bool | Tensor = False,
        posterior_transform: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Posterior at ``X`` (``b x q x d``): the residual GP's, shifted by the prior."""

        assert self.residual is not None, "fit the residual GP first"
        post = self.residual.posterior(X, observation_noise=observation_noise)
        mvn = post.distribution
        shifted = MultivariateNormal(mvn.mean + self.prior(X), mvn.lazy_covariance_matrix)
        out = GPyTorchPosterior(shifted)
        return posterior_transform(out) if posterior_transform is not None else out


def fit_native_gp(
    X: Tensor,
    y: Tensor,
    cat_dims: Sequence[int],
    n_categories: Sequence[int],
    seed: int,
    maxiter: int = 150,
) -> Model:
    """A plain BoTorch GP of one outcome on the encoded space.

    A ``SingleTaskGP`` (Matérn 5/2, ARD, BoTorch's default priors, ``Standardize`` outcome
    transform) on the continuous columns plus one-hot categories (:class:`OneHotInputModel`);
    hyperparameters by maximum marginal likelihood.

    Args:
        X: encoded training points, shape ``(n, d)``.
        y: targets, shape ``(n, 1)``.
        cat_dims: tensor columns holding category codes.
        n_categories: number of categories of each of ``cat_dims``.
        seed: torch seed of the fit.
        maxiter: L-BFGS iterations of the hyperparameter fit.

    Returns:
        The fitted model (eval mode), one output.
    """
    Z = OneHotInputModel.features(X, cat_dims, n_categories)
    with torch.random.fork_rng(), warnings.catch_warnings():
        torch.manual_seed(int(seed))
        warnings.simplefilter("ignore", InputDataWarning)
        gp = SingleTaskGP(Z, y, outcome_transform=Standardize(m=1))
        try:
            fit_gpytorch_mll(
                ExactMarginalLogLikelihood(gp.likelihood, gp),
                optimizer_kwargs={"options": {"maxiter": maxiter}},
            )
        except Exception as err:  # fall back on the prior hyperparameters, but say so
            warnings.warn(f"GP hyperparameter fit failed ({err}); using defaults", stacklevel=2)
    return OneHotInputModel(gp.eval(), cat_dims, n_categories)


@dataclass
class CampaignModel:
    """The fitted campaign model and what it was fitted on.

    Attributes:
        model: BoTorch model over :attr:`outcome_names` on the encoded space.
        outcome_names: outputs in order (surrogate outcomes, native-GP outcomes, then maybe
            ``"feasible"``); look outputs up by name.
        feasibility_index: output of the feasibility model, or None.
        scales: standard deviation of each output's training values (constraint scaling).
        sources: per output, which model gives it (``"surrogate:gp"``, ``"native-gp"``,
            ``"feasibility-gp"``).
        diagnostics: fit-quality numbers (per outcome: rows, in-sample RMSE and R²).
    """

    model: Model
    outcome_names: tuple[str, ...]
    feasibility_index: int | None
    scales: tuple[float, ...]
    sources: dict[str, str] = field(default_factory=dict)
    diagnostics: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def widened(self, factors: Mapping[str, float]) -> Iterator[None]:
        """Inside the block each named outcome's posterior standard deviation is multiplied
        by its factor (the acquisition's view of a model its calibration record shows to be
        over-confident; :func:`poreml.optimize.proposals.widening`). The feasibility output
        is never widened."""
        parts = self._parts()
        names = iter(self.outcome_names)
        saved: list[tuple[Any, Any]] = []
        for part in parts:
            mine = [next(names) for _ in range(part.num_outputs)]
            if isinstance(part, SurrogateModel):
                saved.append((part, part.widen))
                part.widen = {n: float(factors.get(n, 1.0)) for n in mine}
            elif isinstance(part, OneHotInputModel) and mine[0] != FEASIBLE_OUTPUT:
                saved.append((part, part.widen))
                part.widen = float(factors.get(mine[0], 1.0))
        try:
            yield
        finally:
            for part, value in saved:
                part.widen = value

    def _parts(self) -> list[Model]:
        """The models the outputs come from, in output order (one unless a model list)."""
        return list(self.model.models) if isinstance(self.model, ModelList) else [self.model]

    def physics_calibration(self) -> dict[str, Any] | None:
        """What the outcome surrogate's physics calibration changed (``Calibration.summary``
        of :mod:`poreml.surrogates.calibration`), or None when it did not calibrate."""
        for part in self._parts():
            calibration = getattr(getattr(part, "surrogate", None), "calibration_", None)
            if calibration is not None:
                return calibration.summary()
        return None

    def predict(self, X: Tensor, *, observation_noise: bool = False) -> tuple[Tensor, Tensor]:
        """Posterior mean and std of every output at encoded points ``X`` ``(n, d)``.

        Args:
            X: encoded points, shape ``(n, d)``.
            observation_noise: include measurement noise in the std (what a new measurement
                would scatter by) instead of the latent std.

        Returns:
            ``(mean, std)``, each ``(n, m)``.
        """
        with torch.no_grad():
            post = self.model.posterior(X.unsqueeze(-2), observation_noise=observation_noise)
            mean = post.mean.squeeze(-2)
            std = post.variance.clamp(min=0.0).sqrt().squeeze(-2)
        return mean, std


def _is_made(values: pd.Series) -> np.ndarray:
    return ~values.map(lambda v: v is False or v is np.False_).to_numpy(dtype=bool)


def fit_campaign_model(
    observations: pd.DataFrame,
    space: SearchSpace,
    outcomes: Sequence[str],
    *,
    surrogate: str = "gp",
    seed: int = 0,
    surrogate_params: dict[str, Any] | None = None,
    use_failed: bool = True,
    feasibility_prior: str = "physics",
) -> CampaignModel:
    """Fit the campaign model (module doc) on the observations.

    Args:
        observations: ``candidate_id``, every design column, measured columns (NaN = not
            measured) and ``feasible`` (True / False / None).
        space: the search space (encoding).
        outcomes: campaign outcome columns, objectives first.
        surrogate: registry name of the outcome surrogate (:mod:`poreml.surrogates`).
        seed: random state of the fits.
        surrogate_params: extra settings for the surrogate constructor.
        use_failed: also train the outcome surrogates on measurements of failed syntheses
            (module doc).
        feasibility_prior: ``"none"`` (the feasibility model learns from the success labels
            alone, and exists once a synthesis failed and one succeeded) or ``"physics"``
            (the virtual lab's route windows as prior, :class:`PhysicsPriorFeasibilityModel`,
            used from the first observations on).

    Returns:
        The fitted :class:`CampaignModel`.

    Raises:
        InsufficientDataError: an outcome has fewer than :data:`MIN_ROWS` usable measurements.
    """
    made = (
        _is_made(observations["feasible"])
        if "feasible" in observations.columns
        else np.ones(len(observations), dtype=bool)
    )
    train = (observations if use_failed else observations.loc[made]).reset_index(drop=True)
    counts = {
        name: int(pd.to_numeric(train.get(name), errors="coerce").notna().sum())
        if name in train.columns
        else 0
        for name in outcomes
    }
    short = {k: v for k, v in counts.items() if v < MIN_ROWS}
    if short:
        raise InsufficientDataError(
            "too few measurements to model "
            + ", ".join(f"{k} ({v} of {MIN_ROWS})" for k, v in short.items())
        )
    cat_dims = space.categorical_dims
    n_cats = [len(v) for v in space.categories.values()]
    decode = space.decode
    if surrogate == NATIVE_SURROGATE:
        supported: list[str] = []
    else:
        supported = [o for o in outcomes if o in TARGETS]
    native = [o for o in outcomes if o not in supported]
    models: list[Model] = []
    order: list[str] = []
    sources: dict[str, str] = {}
    if supported:
        # The campaign keeps Gaussian targets in contract units (BET area in logs): its
        # acquisition and pinned proposals were fixed with them; a campaign file may still ask
        # for the physical warps through surrogate_params.
        params = {
            "targets": supported,
            "random_state": int(seed),
            "target_transforms": dict(PLAIN_TARGET_TRANSFORMS),
            **(surrogate_params or {}),
        }
        sur = make(surrogate, **params)
        y = train[supported].apply(pd.to_numeric, errors="coerce")
        sur.fit(train[list(DESIGN_COLUMNS)], y)
        models.append(SurrogateModel(sur, decode, outcomes=supported))
        order += supported
        sources.update({o: f"surrogate:{surrogate}" for o in supported})
    in_space = space.contains(train[list(DESIGN_COLUMNS)])
    X_in = space.to_tensor(train.loc[in_space]) if in_space.any() else None
    for j, name in enumerate(native):
        vals = pd.to_numeric(train.loc[in_space, name], errors="coerce").to_numpy(dtype=float)
        rows = np.isfinite(vals)
        if X_in is None or rows.sum() < MIN_ROWS:
            raise InsufficientDataError(f"too few measurements inside the search space for {name}")
        Xr = X_in[torch.as_tensor(rows)]
        yr = torch.as_tensor(vals[rows], dtype=torch.double).unsqueeze(-1)
        models.append(fit_native_gp(Xr, yr, cat_dims, n_cats, seed + 101 + j))
        order.append(name)
        sources[name] = "native-gp"
    feas_index = None
    in_space_all = space.contains(observations[list(DESIGN_COLUMNS)])
    labels = made[in_space_all].astype(float)
    Xf = space.to_tensor(observations.loc[in_space_all]) if in_space_all.any() else None
    if feasibility_prior == "physics" and Xf is not None and labels.size >= MIN_ROWS:
        feas = PhysicsPriorFeasibilityModel(None, decode, lab_params())
        with torch.no_grad():
            resid = torch.as_tensor(labels, dtype=torch.double) - feas.prior(Xf)
        feas.residual = fit_native_gp(Xf, resid.unsqueeze(-1), cat_dims, n_cats, seed + 997)
        models.append(feas)
        order.append(FEASIBLE_OUTPUT)
        sources[FEASIBLE_OUTPUT] = "feasibility-gp+physics-prior"
        feas_index = len(order) - 1
    elif Xf is not None and labels.size >= MIN_ROWS and 0.0 < labels.mean() < 1.0:
        yf = torch.as_tensor(labels, dtype=torch.double).unsqueeze(-1)
        models.append(fit_native_gp(Xf, yf, cat_dims, n_cats, seed + 997))
        order.append(FEASIBLE_OUTPUT)
        sources[FEASIBLE_OUTPUT] = "feasibility-gp"
        feas_index = len(order) - 1
    scales = tuple(outcome_spread(train, n) if n != FEASIBLE_OUTPUT else 0.25 for n in order)
    fitted = CampaignModel(
        model=models[0] if len(models) == 1 else ModelList(*models),
        outcome_names=tuple(order),
        feasibility_index=feas_index,
        scales=scales,
        sources=sources,
    )
    fitted.diagnostics = _diagnostics(fitted, train, space, outcomes)
    return fitted


def _diagnostics(
    fitted: CampaignModel, train: pd.DataFrame, space: SearchSpace, outcomes: Sequence[str]
) -> dict[str, float]:
    """In-sample fit quality per outcome: rows, RMSE, R², mean predictive std."""
    out: dict[str, float] = {}
    inside = space.contains(train[list(DESIGN_COLUMNS)])
    if not inside.any():
        return out
    rows = train.loc[inside]
    mean, std = fitted.predict(space.to_tensor(rows))
    for name in outcomes:
        j = fitted.outcome_names.index(name)
        if name not in rows.columns:
            continue
        y = pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(y)
        if ok.sum() < 2:
            continue
        pred = mean[:, j].numpy()[ok]
        resid = y[ok] - pred
        rmse = float(np.sqrt(np.mean(resid**2)))
        var = float(np.var(y[ok]))
        out[f"{name}.n"] = float(ok.sum())
        out[f"{name}.rmse_in_sample"] = rmse
        out[f"{name}.r2_in_sample"] = 1.0 - rmse**2 / var if var > 0 else float("nan")
        out[f"{name}.mean_std"] = float(std[:, j].numpy()[ok].mean())
    return out
