"""Physics-informed Gaussian process: the virtual lab as the prior mean, data as the correction.

One BoTorch :class:`~botorch.models.SingleTaskGP` per target, fitted on the rows where that
target was measured (targets measured on the same rows share one batched multi-output GP with
independent hyperparameters per target, so a complete table costs one fit). With
``prior="physics"`` (default) the prior mean of target ``t`` is

    m_t(x) = a_t + b_t · phys_t(x),

where ``phys_t(x)`` is the virtual lab's noise-free prediction of ``t`` for the design ``x``
(:func:`poreml.virtual_lab.physics.simulate` evaluated in torch, so it is differentiable; scenario
and randomised instance configurable), mapped into the target's standardised model space, and
``a_t``, ``b_t`` are hyperparameters fitted with the kernel and noise by maximising the marginal
likelihood (weak priors ``a ~ N(0, 1)``, ``b ~ N(1, 1)`` keep them near "the physics is right"
when data are few). The GP then models the residual. With a handful of points the trends are
those of the physics; where the physics is wrong the data pull the mean (through ``a``, ``b`` and
the residual GP) toward the truth. With ``prior_by_route=True`` each synthesis route r gets its
own correction, ``m_t(x) = (a_t + α_tr) + (b_t + β_tr) · phys_t(x)`` with ``α, β ~ N(0, 0.5²)``
(:class:`PhysicsMean`): a lab where the physics is right for one route and wrong for another
(a route shifted, a mechanism the physics lacks) is fitted route by route instead of by one
compromise (the campaign uses it). ``prior="constant"`` gives the usual constant-mean GP for
ablation.

Implementation: the physics values (one column per target of the GP, then with
``prior_by_route`` the route as one-hot columns) are appended to the encoded features as extra
input columns that only the mean reads (the kernel's ``active_dims`` exclude them). Kernel: a
scaled Matern 5/2 with ARD lengthscales (BoTorch's dimension-scaled lengthscale prior) over the
encoded features (continuous columns, route one-hot, missing
indicators), mapped to the unit cube by BoTorch's ``Normalize`` (bounds from the training
inputs); Gaussian likelihood with learned noise. Targets enter already standardised (the base
class standardises every target once, which is what BoTorch's ``Standardize`` outcome transform
would do), so no outcome transform is added. Hyperparameters are fitted with
``fit_gpytorch_mll`` in one L-BFGS-B run per GP, capped at ``fit_maxiter`` iterations (fit and
prediction of 1,000 candidates at n = 200 with six targets take about 3 s of one CPU core).

:meth:`GPSurrogate.predict` returns, by default, the predictive std of a new *measurement*
(latent variance + learned noise); pass ``observation_noise=False`` for the latent std, which
is what acquisition functions use. Through the BoTorch adapter the model gives the exact joint
Gaussian over the ``q`` points of each output (outputs independent).

Prediction fast path. Serving asks for marginal means and variances of many rows with no
gradients. There, each group's training solve is taken once from GPyTorch's own prediction
caches (``mean_cache`` = (K + σ²I)⁻¹(y − m(X)) and the root ``R`` of (K + σ²I)⁻¹ that
``covar_cache`` holds) and kept with the model (:class:`_PosteriorCache`, built by
:meth:`GPSurrogate.warm_up` or on first use); a prediction is then the Matérn 5/2
cross-covariance ``k`` to the training rows, ``m(x) + k·α`` and ``s² − ‖kR‖²`` (+ σ² for a new
measurement), block by block of rows instead of GPyTorch's lazy joint train + test kernel. It
runs on numpy arrays, since on a request's few rows torch's overhead per operation costs more
than the arithmetic (the two products with the training rows go through torch's BLAS), and
the physics prior is evaluated once per batch (the two stages of a cascade with the same
physics share it). The numbers are the reference path's to rounding (tested at 1e-9
relative); :func:`reference_predictions` switches the fast path off, and anything that needs
gradients (BoTorch) always takes the reference path.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
import torch
from botorch.exceptions.warnings import InputDataWarning
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.transforms.input import Normalize
from botorch.models.utils import add_output_dim, gpt_posterior_settings
from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
from botorch.optim.closures import get_loss_closure_with_grads
from gpytorch.distributions import MultivariateNormal
from gpytorch.kernels import ScaleKernel
from gpytorch.means import ConstantMean, Mean
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import GammaPrior, NormalPrior
from scipy.linalg.blas import dtpmv, dtrmm
from torch import Tensor

from poreml.data.schema import COLUMNS, CONTINUOUS_DESIGN_COLUMNS, ROUTES
from poreml.exceptions import ConfigError
from poreml.surrogates.base import FittedState, Surrogate
from poreml.surrogates.calibration import Calibration, calibrate
from poreml.surrogates.features import FeatureArrays, Features, MissingIndicators
from poreml.surrogates.registry import register
from poreml.virtual_lab.params import LabParams, lab_params
from poreml.virtual_lab.physics import simulate

__all__ = ["PRIORS", "GPSurrogate", "PhysicsMean", "reference_predictions"]

PRIORS: tuple[str, ...] = ("physics", "constant")
"""Prior-mean options of :class:`GPSurrogate`."""

ROUTE_WEIGHT_SD = 0.2
"""Prior standard deviation of a route's correction to the physics mean's offset and slope
(standardised units; :class:`PhysicsMean`)."""


class PhysicsMean(Mean):
    """Affine map of the physics input columns: ``a_k + b_k · x[..., column + k]`` for output k.

    The columns hold the virtual lab's predictions (standardised); the offsets ``a`` and slopes
    ``b`` are hyperparameters with priors ``N(0, 1)`` and ``N(1, 1)``.

    With ``n_routes`` (per-route prior weights) the offset and slope of output k on route r
    are ``a_k + α_kr`` and ``b_k + β_kr``, the route read from ``n_routes`` one-hot input
    columns starting at ``route_column``, with priors ``α, β ~ N(0, ROUTE_WEIGHT_SD²)``. The
    shared ``a``, ``b`` hold what the routes have in common; a route whose data disagree with
    the physics gets its own correction (a slope toward 0 where the physics' trend is wrong
    there), and a route with few data keeps the shared weights.

    Args:
        column: index of the first physics column in the GP inputs.
        num_outputs: ``m``, the outputs of the (batched multi-output) GP. With ``m > 1`` BoTorch
            feeds inputs of shape ``(*batch, m, n, D)`` and output k reads column ``column + k``.
        route_column: index of the first route one-hot column (with ``n_routes``).
        n_routes: number of routes for per-route weights (0: shared weights only).
    """

    def __init__(
        self, column: int, num_outputs: int = 1, route_column: int = 0, n_routes: int = 0
    ) -> None:
        super().__init__()
        self.column = column
        self.num_outputs = num_outputs
        self.route_column = route_column
        self.n_routes = n_routes
        shape = (num_outputs, 1) if num_outputs > 1 else (1,)
        self.register_parameter("offset", torch.nn.Parameter(torch.zeros(shape)))
        self.register_parameter("slope", torch.nn.Parameter(torch.ones(shape)))
        self.register_prior("offset_prior", NormalPrior(0.0, 1.0), "offset")
        self.register_prior("slope_prior", NormalPrior(1.0, 1.0), "slope")
        if n_routes:
            route_shape = (num_outputs, n_routes)
            self.register_parameter("route_offset", torch.nn.Parameter(torch.zeros(route_shape)))
            self.register_parameter("route_slope", torch.nn.Parameter(torch.zeros(route_shape)))
            sd = ROUTE_WEIGHT_SD
            self.register_prior("route_offset_prior", NormalPrior(0.0, sd), "route_offset")
            self.register_prior("route_slope_prior", NormalPrior(0.0, sd), "route_slope")

    def forward(self, x: Tensor) -> Tensor:
        """Mean at inputs ``(*batch, [m,] n, D)`` → ``(*batch, [m,] n)``."""
        m = self.num_outputs
        if m == 1:
            phys = x[..., self.column]
        else:  # output k (dim -3) reads physics column k (dim -1)
            phys = x[..., self.column : self.column + m].diagonal(dim1=-3, dim2=-1)
            phys = phys.transpose(-1, -2)
        offset, slope = self.offset, self.slope
        if self.n_routes:
            onehot = x[..., self.route_column : self.route_column + self.n_routes]
            if m == 1:  # (*batch, n, R) @ (R,) → (*batch, n)
                offset = offset + onehot @ self.route_offset[0]
                slope = slope + onehot @ self.route_slope[0]
            else:  # (*batch, m, n, R) · (m, 1, R) summed over R → (*batch, m, n)
                offset = offset + (onehot * self.route_offset.unsqueeze(-2)).sum(-1)
                slope = slope + (onehot * self.route_slope.unsqueeze(-2)).sum(-1)
        return offset + slope * phys


@lru_cache(maxsize=16)
def _lab_params(scenario: str, instance_seed: int | None) -> LabParams:
    return lab_params(scenario, instance_seed)


def _physical_range(name: str) -> tuple[float, float]:
    """The values of design column ``name`` the physics is evaluated at (spec 2.1)."""
    lo, hi = COLUMNS[name].physical_domain or (-math.inf, math.inf)
    if COLUMNS[name].domain_open_low:
        lo = max(lo, 1e-9)
    return lo, hi


def _clamp_to_domain(name: str, value: Tensor) -> Tensor:
    lo, hi = _physical_range(name)
    return value.clamp(min=lo, max=hi)


_PHYSICAL_RANGES = np.array([_physical_range(name) for name in CONTINUOUS_DESIGN_COLUMNS])
"""``(low, high)`` of each continuous design column for the physics, in contract order."""


def _simulate_arrays(design: Mapping[str, np.ndarray], params: Any) -> dict[str, Any]:
    """The virtual lab on numpy design arrays of any common shape (``route`` as codes), each
    continuous column first clamped to its physical range as :func:`_clamp_to_domain` does:
    the prior's physics wherever no gradient is needed."""
    values = np.stack([design[name] for name in CONTINUOUS_DESIGN_COLUMNS])  # (C, *batch)
    shape = (len(CONTINUOUS_DESIGN_COLUMNS),) + (1,) * (values.ndim - 1)
    low, high = (bound.reshape(shape) for bound in _PHYSICAL_RANGES.T)
    clamped = np.minimum(np.maximum(values, low), high)
    inputs: dict[str, Any] = dict(zip(CONTINUOUS_DESIGN_COLUMNS, clamped, strict=True))
    inputs["route"] = design["route"]
    return simulate(inputs, params)


_FAST_PATH: ContextVar[bool] = ContextVar("poreml_gp_fast_path", default=True)

PACKED_ROOT_ROWS = 4
"""Blocks of at most this many rows multiply by the triangular root one row at a time,
reading its upper half only (BLAS ``tpmv``): on one row about half the time of the full
product, which reads the whole root and dominates a one-candidate prediction."""

FAST_CHUNK_ROWS = 256
"""Rows per block of the fast path: bounds its memory (``m × rows × n``) and keeps the blocks
in the CPU cache (100,000 candidates of the shipped model: ~15 % less time than 2,048)."""


@contextmanager
def reference_predictions() -> Iterator[None]:
    """Predict through GPyTorch's exact prediction strategy (no fast path) inside the block."""
    token = _FAST_PATH.set(False)
    try:
        yield
    finally:
        _FAST_PATH.reset(token)


def _std(var: np.ndarray, noise: np.ndarray, observation_noise: bool) -> np.ndarray:
    """Standard deviations of latent variances ``var`` ``(N, T)``, plus the noise variances
    ``(T,)`` for a new measurement."""
    return np.sqrt(np.maximum(var + noise if observation_noise else var, 0.0))


@dataclass(frozen=True)
class _PosteriorCache:
    """What one group's GP needs to predict marginals without GPyTorch (module doc).

    Shapes with ``m`` outputs, ``n`` training rows, ``d`` kernel inputs, ``r`` root columns.
    """

    shift: Tensor  # (d,) BoTorch Normalize's offset of the kernel inputs
    divisor: Tensor  # (d,) and its coefficient
    train: Tensor  # (m, n, d) normalised training inputs of the kernel
    lengthscale: Tensor  # (m, 1, d)
    outputscale: Tensor  # (m, 1)
    noise: Tensor  # (m, 1)
    alpha: Tensor  # (m, n, 1)
    root: Tensor  # (m, n, r)
    offset: Tensor  # (m, 1): constant mean, or the physics mean's offset
    slope: Tensor | None  # (m, 1) physics mean's slope; None for a constant mean
    route_offset: Tensor | None = None  # (m, R) per-route corrections, or None
    route_slope: Tensor | None = None  # (m, R)

    @classmethod
    def of(cls, model: SingleTaskGP, d: int) -> _PosteriorCache:
        """Run one reference prediction (which fills GPyTorch's caches) and keep them."""
        m = model.num_outputs
        with torch.no_grad(), gpt_posterior_settings():
            x = model.train_inputs[0][..., :1, :]
            if m > 1:
                x, _ = add_output_dim(x[0], original_batch_shape=torch.Size())
            model(x).variance  # noqa: B018 - builds the prediction strategy's caches
            strategy = model.prediction_strategy
            alpha = strategy.mean_cache.reshape(m, -1, 1)
            root = strategy.covar_cache
            root = root.to_dense() if hasattr(root, "to_dense") else root
        kernel = model.covar_module
        mean = model.mean_module
        route_offset = route_slope = None
        if isinstance(mean, PhysicsMean):
            offset, slope = mean.offset.reshape(m, 1), mean.slope.reshape(m, 1)
            if mean.n_routes:
                route_offset = mean.route_offset.reshape(m, -1).detach()
                route_slope = mean.route_slope.reshape(m, -1).detach()
        else:
            offset, slope = mean.constant.reshape(m, 1), None
        normalize = model.input_transform
        return cls(
            shift=normalize.offset.reshape(-1)[:d].detach(),
            divisor=normalize.coefficient.reshape(-1)[:d].detach(),
            train=model.train_inputs[0][..., :d].reshape(m, -1, d).detach(),
            lengthscale=kernel.base_kernel.lengthscale.reshape(m, 1, d).detach(),
            outputscale=kernel.outputscale.reshape(m, 1).detach(),
            noise=model.likelihood.noise.reshape(m, 1).detach(),
            alpha=alpha.detach(),
            root=root.reshape(m, alpha.shape[1], -1).detach(),
            offset=offset.detach(),
            slope=None if slope is None else slope.detach(),
            route_offset=route_offset,
            route_slope=route_slope,
        )

    @cached_property
    def arrays(self) -> _CacheArrays:
        """The cache as numpy arrays, for :meth:`moments` (built once)."""

        def array(value: Tensor | None) -> np.ndarray | None:
            return None if value is None else value.detach().cpu().numpy()

        lengthscale = self.lengthscale.detach().cpu().numpy()
        # Squared distances are translation invariant; they are taken relative to the
        # training rows' centre (GPyTorch centres on the test rows: the same to rounding),
        # so the training side of the product below is fixed: [b, 1, |b|²].
        train = self.train.detach().cpu().numpy()
        center = train.mean(axis=(0, 1))
        b = (train - center) / lengthscale  # (m, n, d)
        right = np.concatenate(
            [b, np.ones((*b.shape[:-1], 1)), (b * b).sum(-1, keepdims=True)], axis=-1
        )
        # the kernel's output scale is folded into the weights of the training rows
        outputscale = self.outputscale.unsqueeze(-1)  # (m, 1, 1)
        alpha = (self.alpha * outputscale)[..., 0].detach().cpu().numpy()
        root = (self.root * outputscale).detach().cpu().numpy()
        packed = None
        if root.shape[-1] == root.shape[-2] and np.array_equal(root, np.triu(root)):
            # the root of an exact GP is the inverse Cholesky factor, upper triangular: its
            # upper half, packed by columns as BLAS takes it
            rows, cols = np.triu_indices(root.shape[-1])
            order = np.lexsort((rows, cols))
            packed = np.ascontiguousarray(root[:, rows[order], cols[order]])
        return _CacheArrays(
            shift=array(self.shift),
            divisor=array(self.divisor),
            center=center,
            lengthscale=lengthscale,
            right=np.ascontiguousarray(right.transpose(0, 2, 1)),  # (m, d + 2, n)
            outputscale=array(self.outputscale),
            noise=array(self.noise).reshape(-1),
            alpha=alpha,
            root=root,
            packed_root=packed,
            offset=array(self.offset),
            slope=array(self.slope),
            route_offset=array(self.route_offset),
            route_slope=array(self.route_slope),
        )

    def moments(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Marginal mean and latent variance ``(m, c)`` at GP inputs ``x`` ``(c, D)``
        (features, then the physics columns, then the route one-hot columns with per-route
        weights); add :meth:`noise_variance` for a new measurement.

        Numpy, because serving needs no gradients and torch's overhead per operation would
        cost more than the arithmetic on a request's few rows (products with the training
        rows: :meth:`_root_products`).
        """
        c = self.arrays
        d = c.center.shape[-1]
        z = (x[:, :d] - c.shift) / c.divisor  # as BoTorch's Normalize
        a = (z - c.center) / c.lengthscale  # (m, c, d)
        # squared distances as one product (as GPyTorch computes them):
        # [-2a, |a|², 1] · [b, 1, |b|²] = |a|² + |b|² - 2 a·b
        left = np.concatenate(
            [-2.0 * a, (a * a).sum(-1, keepdims=True), np.ones((*a.shape[:-1], 1))], axis=-1
        )
        sq = left @ c.right  # (m, c, n); in place below, as these blocks dominate the cost
        np.maximum(sq, 1e-30, out=sq)
        sq *= 5.0  # r² with r = √5 · distance
        r = np.sqrt(sq)
        k = np.negative(r)
        np.exp(k, out=k)
        sq /= 3.0
        sq += r
        sq += 1.0
        k *= sq  # Matérn 5/2 without its output scale: (1 + r + r²/3) e^(-r)
        k_alpha, kr = self._root_products(k)
        m = c.offset.shape[0]
        offset, slope = c.offset, c.slope
        if c.route_offset is not None and c.route_slope is not None:
            onehot = x[:, d + m : d + m + c.route_offset.shape[1]]  # (c, R)
            offset = offset + c.route_offset @ onehot.T  # (m, c)
            slope = slope + c.route_slope @ onehot.T
        if slope is not None:  # output k reads physics column d + k
            offset = offset + slope * x[:, d : d + m].T
        mean = offset + k_alpha
        var = c.outputscale - np.einsum("mcr,mcr->mc", kr, kr)
        return mean, var

    def _root_products(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``k·α`` ``(m, c)`` and ``kR`` ``(m, c, r)`` of the cross-covariances ``k``
        ``(m, c, n)`` (overwritten).

        The triangular root of an exact GP needs only its upper half: a few rows multiply by
        it packed (BLAS ``tpmv``: half the memory to read, which bounds a one-row product),
        larger blocks in place (``trmm``: half the arithmetic of a full product, which
        bounds a large batch). Another root takes torch's full matrix product.
        """
        c = self.arrays
        k_alpha = np.einsum("mcn,mn->mc", k, c.alpha)
        if c.packed_root is None:
            return k_alpha, (torch.from_numpy(k) @ torch.from_numpy(c.root)).numpy()
        n = k.shape[-1]
        if k.shape[1] <= PACKED_ROOT_ROWS:
            kr = np.empty_like(k)
            for i, packed in enumerate(c.packed_root):
                for row in range(k.shape[1]):
                    kr[i, row] = dtpmv(n, packed, k[i, row], trans=1)  # Rᵀkᵀ
            return k_alpha, kr
        for i, root in enumerate(c.root):
            # kR = (Rᵀkᵀ)ᵀ; read by columns, k's and R's memory hold kᵀ and Rᵀ (lower)
            k[i] = dtrmm(1.0, root.T, k[i].T, lower=1, overwrite_b=1).T
        return k_alpha, k

    def noise_variance(self) -> np.ndarray:
        """The noise variance of each output, ``(m,)``."""
        return self.arrays.noise


@dataclass(frozen=True)
class _CacheArrays:
    """:class:`_PosteriorCache` as numpy arrays, ready for :meth:`_PosteriorCache.moments`."""

    shift: np.ndarray  # (d,)
    divisor: np.ndarray  # (d,)
    center: np.ndarray  # (d,) centre of the normalised training inputs
    lengthscale: np.ndarray  # (m, 1, d)
    right: np.ndarray  # (m, d + 2, n) training side of the squared distances
    outputscale: np.ndarray  # (m, 1)
    noise: np.ndarray  # (m,)
    alpha: np.ndarray  # (m, n): output scale × alpha
    root: np.ndarray  # (m, n, r): output scale × root
    packed_root: np.ndarray | None  # (m, n (n + 1) / 2): its upper half when triangular
    offset: np.ndarray
    slope: np.ndarray | None
    route_offset: np.ndarray | None
    route_slope: np.ndarray | None


@register("gp")
class GPSurrogate(Surrogate):
    """Physics-informed GP, one ``SingleTaskGP`` per target (module doc).

    Args:
        prior: ``"physics"`` (virtual-lab prior mean with a learned affine correction) or
            ``"constant"`` (constant mean).
        scenario: virtual-lab scenario of the physics prior.
        instance_seed: randomised virtual-lab instance of the physics prior (None: defaults).
        prior_by_route: with the physics prior, learn a correction of its offset and slope
            per synthesis route (:class:`PhysicsMean`), so a route where the physics is wrong
            stops borrowing the weights of the routes where it is right.
        calibrate: with the physics prior, first fit the physics' uncertain constants (route
            table, spec section 7's model parameters) to the training data
            (:mod:`poreml.surrogates.calibration`), so a lab whose constants differ from the
            published ones gets a prior of the right shape, not only a rescaled one.
        fit_maxiter: most L-BFGS-B iterations of the marginal-likelihood fit.
        feature_set, targets, target_transforms, missing_indicators, domain_margin,
        random_state: see :class:`~poreml.surrogates.base.Surrogate`.

    Fitted attributes: ``groups_`` (tuples of target indices measured on the same rows),
    ``models_`` (one fitted ``SingleTaskGP`` per group, multi-output when the group has several
    targets, in eval mode), ``train_inputs_`` (their untransformed inputs ``(n_g, d [+ m_g])``),
    ``calibration_`` (the :class:`~poreml.surrogates.calibration.Calibration` of the physics
    constants, or None) and the attributes of the base class.
    """

    differentiable = True

    def __init__(
        self,
        *,
        prior: str = "physics",
        scenario: str = "baseline",
        instance_seed: int | None = None,
        prior_by_route: bool = False,
        calibrate: bool = False,
        fit_maxiter: int = 60,
        feature_set: str = "design",
        targets: Sequence[str] | None = None,
        target_transforms: dict[str, str] | None = None,
        missing_indicators: MissingIndicators = "auto",
        domain_margin: float = 0.05,
        random_state: int = 0,
    ) -> None:
        super().__init__(
            feature_set=feature_set,
            targets=targets,
            target_transforms=target_transforms,
            missing_indicators=missing_indicators,
            domain_margin=domain_margin,
            random_state=random_state,
        )
        self.prior = prior
        self.scenario = scenario
        self.instance_seed = instance_seed
        self.prior_by_route = prior_by_route
        self.calibrate = calibrate
        self.fit_maxiter = fit_maxiter

    def _settings_problems(self) -> list[str]:
        problems = super()._settings_problems()
        if self.prior not in PRIORS:
            problems.append(f"prior: expected one of {', '.join(PRIORS)} (got {self.prior!r})")
        if not isinstance(self.prior_by_route, bool):
            problems.append(f"prior_by_route: expected true or false (got {self.prior_by_route!r})")
        if not isinstance(self.calibrate, bool):
            problems.append(f"calibrate: expected true or false (got {self.calibrate!r})")
        if not (isinstance(self.fit_maxiter, int) and self.fit_maxiter >= 1):
            problems.append(f"fit_maxiter: expected an integer >= 1 (got {self.fit_maxiter!r})")
        try:
            _lab_params(self.scenario, self.instance_seed)
        except Exception as err:  # ConfigError for an unknown scenario, TypeError for a seed
            problems.append(f"scenario / instance_seed: {err}")
        return problems

    # ---- physics -----------------------------------------------------------------------------

    def physics(self, features: Features) -> Tensor:
        """The virtual lab's prediction of every target in standardised model space.

        Args:
            features: encoded rows with ``design`` tensors of shape ``(*batch)``.

        Returns:
            Tensor ``(*batch, T)`` (targets :attr:`targets_`), differentiable in the design.
        """
        return self._physics_with(features, self.lab_params())

    def lab_params(self) -> LabParams:
        """The physics constants of the prior: calibrated ones after a fit with ``calibrate``
        (:attr:`calibration_`), else those of ``scenario`` / ``instance_seed``."""
        calibration = getattr(self, "calibration_", None)
        if calibration is not None:
            return calibration.params
        return _lab_params(self.scenario, self.instance_seed)

    def _physics_with(self, features: Features, params: Any) -> Tensor:
        """:meth:`physics` under the constants ``params`` (tensors allowed: calibration)."""
        if torch.is_grad_enabled() or features.z.device.type != "cpu":
            inputs: dict[str, Any] = {
                name: _clamp_to_domain(name, features.design[name])
                for name in CONTINUOUS_DESIGN_COLUMNS
            }
            inputs["route"] = features.design["route"]
            out = simulate(inputs, params)
            values = torch.stack([out[t] for t in self.targets_], dim=-1)
        else:  # the same equations on numpy: a fraction of torch's per-operation cost
            design = {k: v.numpy() for k, v in features.design.items()}
            out = _simulate_arrays(design, params)
            values = torch.from_numpy(np.stack([out[t] for t in self.targets_], axis=-1))
        return self.target_scaler_.transform(values)

    def _gp_inputs(self, features: Features, group: Sequence[int]) -> Tensor:
        """Inputs ``(*batch, d [+ len(group)])`` of the GP of a target group."""
        if self.prior != "physics":
            return features.z
        parts = [features.z, self.physics(features)[..., list(group)]]
        if self.prior_by_route:
            route = features.design["route"].long()
            parts.append(torch.nn.functional.one_hot(route, len(ROUTES)).to(features.z))
        return torch.cat(parts, dim=-1)

    # ---- model -------------------------------------------------------------------------------

    def _build(self, train_x: Tensor, train_y: Tensor) -> SingleTaskGP:
        """An unfitted GP for inputs ``(n, D)`` and standardised targets ``(n, m)``."""
        d = len(self.encoder_.names)
        m = train_y.shape[-1]
        batch = torch.Size([m]) if m > 1 else torch.Size()
        kernel = ScaleKernel(
            get_covar_module_with_dim_scaled_prior(
                ard_num_dims=d, batch_shape=batch, use_rbf_kernel=False, active_dims=list(range(d))
            ),
            batch_shape=batch,
            outputscale_prior=GammaPrior(2.0, 0.15),
        )
        mean: Mean = (
            PhysicsMean(
                column=d,
                num_outputs=m,
                route_column=d + m,
                n_routes=len(ROUTES) if self.prior_by_route else 0,
            )
            if self.prior == "physics"
            else ConstantMean(batch_shape=batch)
        )
        with warnings.catch_warnings():
            # Inputs are standardised features (Normalize maps them to the unit cube) and
            # targets are standardised by the base class; BoTorch's scaling checks only warn.
            warnings.simplefilter("ignore", InputDataWarning)
            return SingleTaskGP(
                train_x,
                train_y,
                covar_module=kernel,
                mean_module=mean,
                outcome_transform=None,
                input_transform=Normalize(d=train_x.shape[-1], indices=list(range(d))),
            )

    def _fit_features(self, features: Features, y: Tensor) -> None:
        # Targets measured on the same rows share one batched multi-output GP (independent
        # hyperparameters per output, one optimisation): 6 targets on complete data cost
        # about as much as one.
        self.calibration_: Calibration | None = None
        if self.calibrate and self.prior == "physics":
            base = _lab_params(self.scenario, self.instance_seed)
            self.calibration_ = calibrate(lambda p: self._physics_with(features, p), y, base)
        observed = ~torch.isnan(y)
        groups: dict[tuple[bool, ...], list[int]] = {}
        for j in range(y.shape[1]):
            groups.setdefault(tuple(observed[:, j].tolist()), []).append(j)
        models, inputs, group_list = [], [], []
        with torch.random.fork_rng():
            torch.manual_seed(int(self.random_state))
            for group in groups.values():
                rows = observed[:, group[0]]
                x = self._gp_inputs(features, group).detach()[rows]
                model = self._build(x, y[rows][:, group])
                mll = ExactMarginalLogLikelihood(model.likelihood, model)
                # One L-BFGS-B run over the hyperparameters of all outputs of the group (the
                # summed MLL), capped at fit_maxiter iterations: with a physics mean the fit is
                # as good after ~60 iterations as at convergence, at a fraction of the cost.
                params = {k: p for k, p in mll.named_parameters() if p.requires_grad}
                fit_gpytorch_mll(
                    mll,
                    closure=get_loss_closure_with_grads(mll, parameters=params),
                    optimizer_kwargs={"options": {"maxiter": int(self.fit_maxiter)}},
                )
                models.append(model.eval())
                inputs.append(x)
                group_list.append(tuple(group))
        self.models_ = models
        self.groups_ = group_list
        self.train_inputs_ = inputs
        self._posterior_caches_: list[_PosteriorCache] | None = None

    def _group_mvns(
        self, features: Features, observation_noise: bool
    ) -> list[tuple[tuple[int, ...], MultivariateNormal, int | None]]:
        """The Gaussian of each group's GP at ``features`` (``z``: ``(*batch, q, d)``).

        Follows ``BatchedMultiOutputGPyTorchModel.posterior``: for a group of ``m > 1`` targets
        the output dimension is inserted at index ``dim`` of the batch shape.

        Returns:
            Per group ``(targets, mvn, dim)``; ``dim`` is None for single-target groups.
        """
        out = []
        for model, group in zip(self.models_, self.groups_, strict=True):
            x = model.transform_inputs(self._gp_inputs(features, group))
            dim = None
            with gpt_posterior_settings():
                if len(group) > 1:
                    x, dim = add_output_dim(x, original_batch_shape=torch.Size())
                mvn = model(x)
                if observation_noise:
                    mvn = model.likelihood(mvn, x)
            out.append((group, mvn, dim))
        return out

    def _predict_moments(
        self, features: Features, observation_noise: bool
    ) -> tuple[Tensor, Tensor]:
        if torch.is_grad_enabled() or not _FAST_PATH.get() or features.z.device.type != "cpu":
            return self._reference_moments(features, observation_noise)
        mean, var, noise = self._moment_arrays(FeatureArrays.of(features))
        sd = _std(var, noise, observation_noise)
        dtype = features.z.dtype
        return torch.from_numpy(mean).to(dtype), torch.from_numpy(sd).to(dtype)

    def _raw_moments(
        self, raw: Mapping[str, np.ndarray], features: FeatureArrays, observation_noise: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """The serving path: the fast path's moments (module doc) on numpy arrays, or the
        reference path's inside :func:`reference_predictions`."""
        if not _FAST_PATH.get():
            return super()._raw_moments(raw, features, observation_noise)
        mean, var, noise = self._moment_arrays(features)
        return mean, _std(var, noise, observation_noise)

    def _moment_arrays(self, features: FeatureArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Marginal means and latent variances ``(N, T)`` of the fast path (module doc) and
        the noise variance of each target ``(T,)``, in standardised model space.

        Evaluated once per batch (:meth:`FeatureArrays.shared`): the latent and the
        measurement moments of the same rows, which a cascade asks for, cost one pass.
        """
        return features.shared(("gp posterior", id(self)), lambda: self._fast_moments(features))

    def _fast_moments(self, features: FeatureArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        caches = self._posterior_caches()
        n = features.z.shape[0]
        mean = np.empty((n, len(self.targets_)))
        var = np.empty_like(mean)
        noise = np.empty(len(self.targets_))
        physics = self._physics_arrays(features) if self.prior == "physics" else None
        for group, cache in zip(self.groups_, caches, strict=True):
            cols = list(group)
            x = self._gp_input_arrays(features, physics, group)
            for start in range(0, n, FAST_CHUNK_ROWS):
                rows = slice(start, start + FAST_CHUNK_ROWS)
                part_mean, part_var = cache.moments(x[rows])
                mean[rows, cols] = part_mean.T
                var[rows, cols] = part_var.T
            noise[cols] = cache.noise_variance()
        return mean, var, noise

    def _physics_arrays(self, features: FeatureArrays) -> np.ndarray:
        """:meth:`physics` on numpy arrays ``(N, T)`` for the fast path.

        The virtual lab runs once per batch and parameter set (:meth:`FeatureArrays.shared`):
        the two stages of a cascade with the same physics constants (same ``scenario`` and
        ``instance_seed``, not calibrated) share it.
        """
        params = self.lab_params()
        out = features.shared(
            ("virtual lab", id(params)), lambda: _simulate_arrays(features.design, params)
        )
        return self.target_scaler_.transform_array(np.stack([out[t] for t in self.targets_], -1))

    def _gp_input_arrays(
        self, features: FeatureArrays, physics: np.ndarray | None, group: Sequence[int]
    ) -> np.ndarray:
        """:meth:`_gp_inputs` on numpy arrays, the physics given: ``(N, d [+ len(group)])``."""
        if physics is None:
            return features.z
        parts = [features.z, physics[:, list(group)]]
        if self.prior_by_route:
            parts.append(features.design["route"][:, None] == np.arange(len(ROUTES)))
        return np.concatenate(parts, axis=-1, dtype=np.float64)

    def warm_up(self) -> GPSurrogate:
        """Build the posterior caches of the prediction fast path (module doc) now."""
        super().warm_up()
        for cache in self._posterior_caches():
            cache.arrays  # noqa: B018 - builds the numpy side of the cache
        return self

    def _posterior_caches(self) -> list[_PosteriorCache]:
        """Each group's :class:`_PosteriorCache`, built on first use after a fit or a load."""
        caches = getattr(self, "_posterior_caches_", None)
        if caches is None:
            d = len(self.encoder_.names)
            caches = [_PosteriorCache.of(model, d) for model in self.models_]
            self._posterior_caches_ = caches
        return caches

    def loo_residuals(self, y: Tensor) -> Tensor:
        """Leave-one-out residuals of the training rows, in standardised model space.

        For an exact GP with its hyperparameters fixed, the residual of training row ``i``
        from the prediction of the other rows is ``α_i / [(K + σ²I)⁻¹]_ii`` with
        ``α = (K + σ²I)⁻¹(y − m(X))`` (Rasmussen & Williams, eq. 5.12), read from the
        prediction caches: no refit. Unlike the residual from the latent mean at the row itself,
        it keeps the model's out-of-sample error and the row's noise whole.

        Args:
            y: ``(n, T)`` the standardised targets the model was fitted on (NaN where not
                measured), rows in the order of the fit.

        Returns:
            Tensor ``(n, T)``: each measured entry's leave-one-out residual, NaN elsewhere.

        Raises:
            ConfigError: ``y`` is not the fitted training targets.
        """
        self._check_fitted()
        out = torch.full(y.shape, float("nan"), dtype=y.dtype)
        for group, cache, model in zip(
            self.groups_, self._posterior_caches(), self.models_, strict=True
        ):
            rows = ~torch.isnan(y[:, group[0]])
            fitted = model.train_targets.reshape(len(group), -1).T
            if int(rows.sum()) != fitted.shape[0] or not torch.allclose(
                y[rows][:, list(group)].to(fitted), fitted
            ):
                raise ConfigError(
                    f"loo_residuals: y is not the training targets the model was fitted on "
                    f"(expected {fitted.shape[0]} measured rows of "
                    f"{', '.join(self.targets_[j] for j in group)} "
                    f"equal to the fit's; got {int(rows.sum())} rows); pass the standardised "
                    "targets of the training table"
                )
            precision = (cache.root * cache.root).sum(-1)  # diagonal of (K + σ²I)⁻¹, (m, n)
            residual = cache.alpha.squeeze(-1) / precision
            out[rows.nonzero().squeeze(-1).unsqueeze(-1), torch.tensor(group)] = residual.T.to(
                y.dtype
            )
        return out

    def _reference_moments(
        self, features: Features, observation_noise: bool
    ) -> tuple[Tensor, Tensor]:
        """Marginals through GPyTorch's exact prediction strategy (the reference path)."""
        # Rows go in q-batches of about the training size: GPyTorch evaluates the joint
        # (train + test) kernel of a batch, so (n + c)² per batch, least per row for c ≈ n.
        # Only the diagonal of each predictive covariance is used.
        n = features.z.shape[0]
        chunk = max(128, max(int(x.shape[0]) for x in self.train_inputs_))
        mu = torch.empty(n, len(self.targets_), dtype=features.z.dtype)
        sd = torch.empty_like(mu)
        for start in range(0, n, chunk):
            rows = slice(start, start + chunk)
            part = Features(
                features.z[rows],
                {k: v[rows] for k, v in features.design.items()},
                {k: v[rows] for k, v in features.missing.items()},
            )
            for group, mvn, _ in self._group_mvns(part, observation_noise):
                cols = list(group)
                mu[rows, cols] = mvn.mean.reshape(len(group), -1).T
                var = mvn.variance.clamp(min=0.0).reshape(len(group), -1).T
                sd[rows, cols] = var.sqrt()
        return mu, sd

    def _posterior_parts(
        self, features: Features, idx: Sequence[int], observation_noise: bool
    ) -> list[MultivariateNormal]:
        """Exact joint Gaussian over the ``q`` points of each output in ``idx``: one
        ``MultivariateNormal`` per output (batch shape ``batch``), differentiable."""
        out: dict[int, MultivariateNormal] = {}
        for group, mvn, dim in self._group_mvns(features, observation_noise):
            if dim is None:
                out[group[0]] = mvn
                continue
            mean, covar = mvn.mean, mvn.lazy_covariance_matrix
            for k, j in enumerate(group):
                if j in idx:
                    out[j] = MultivariateNormal(
                        mean.select(dim=dim, index=k), covar[(slice(None),) * dim + (k,)]
                    )
        return [out[j] for j in idx]

    # ---- persistence -------------------------------------------------------------------------

    def _fitted_state(self) -> FittedState:
        tensors: dict[str, Tensor] = {}
        for g, model in enumerate(self.models_):
            tensors[f"{g}.train_x"] = self.train_inputs_[g]
            tensors[f"{g}.train_y"] = model.train_targets.reshape(len(self.groups_[g]), -1).T
            for key, value in model.state_dict().items():
                tensors[f"{g}.state.{key}"] = value
        meta: dict[str, Any] = {"groups": [list(g) for g in self.groups_]}
        if self.calibration_ is not None:
            meta["calibration"] = self.calibration_.to_dict()
        return FittedState(meta=meta, tensors=tensors)

    def _restore(self, state: FittedState) -> None:
        t = state.tensors
        saved = state.meta.get("calibration")
        # before the GPs are rebuilt: their physics columns use the calibrated constants
        self.calibration_ = None if saved is None else Calibration.from_dict(saved)
        models, inputs = [], []
        groups = [tuple(int(j) for j in g) for g in state.meta["groups"]]
        for g in range(len(groups)):
            inputs.append(t[f"{g}.train_x"])
            model = self._build(inputs[-1], t[f"{g}.train_y"])
            prefix = f"{g}.state."
            model.load_state_dict(
                {k[len(prefix) :]: v for k, v in t.items() if k.startswith(prefix)}
            )
            models.append(model.eval())
        self.models_ = models
        self.groups_ = groups
        self.train_inputs_ = inputs
        self._posterior_caches_ = None
