"""The one adapter that exposes any fitted surrogate to BoTorch.

:class:`SurrogateModel` wraps a fitted :class:`~poreml.surrogates.base.Surrogate` and a
``decode`` function supplied by the search space::

    decode(X) -> {"route": LongTensor(b, q), "pore_size_nm": Tensor(b, q), ...}

which maps the optimiser's tensor ``X`` of shape ``b × q × d`` to the design in physical units
(the eight continuous design columns as float tensors of shape ``b × q`` and ``route`` as
integer codes, index into :data:`~poreml.data.schema.ROUTES`; a ``descriptors`` model also needs
``tap_density_g_cm3`` and ``ssa_m2_g``). The surrogate encodes the design with its own
encoder (differentiably), and the adapter returns a posterior over ``outcomes`` in contract
units:

* GP: the exact joint Gaussian over the ``q`` points of each outcome (outcomes independent),
  a :class:`~botorch.posteriors.GPyTorchPosterior`; differentiable.
* Ensemble: an :class:`~botorch.posteriors.ensemble.EnsemblePosterior` of the members' means
  (with ``observation_noise=True``: the moment-matched Gaussian of the mixture); differentiable.
* trees / ridge / mean: a Gaussian from their mean and std, independent across points; not
  differentiable (``differentiable = False``: optimise the acquisition over discrete
  candidates).

Warped targets (:data:`~poreml.surrogates.scaling.DEFAULT_TARGET_TRANSFORMS`: ``log`` for the
positive quantities, ``logit_pct`` for ICE and retention) come back through a
:class:`~botorch.posteriors.transformed.TransformedPosterior`: samples through the inverse warp
(exp, or 100·sigmoid), mean and variance those of the log-normal (closed form) or logit-normal
(Gauss–Hermite quadrature).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from botorch.exceptions.errors import UnsupportedError
from botorch.models.model import Model
from botorch.posteriors import GPyTorchPosterior, Posterior
from botorch.posteriors.ensemble import EnsemblePosterior
from botorch.posteriors.transformed import TransformedPosterior
from gpytorch.distributions import MultitaskMultivariateNormal, MultivariateNormal
from torch import Tensor

from poreml.exceptions import ConfigError
from poreml.surrogates.base import Surrogate
from poreml.surrogates.scaling import TARGET_TRANSFORMS, TargetScaler

__all__ = ["Decode", "SurrogateModel", "UnbatchedModel"]

Decode = Callable[[Tensor], Mapping[str, Tensor]]
"""Maps ``X`` (``b × q × d``) to design tensors (``b × q``) in physical units."""


class UnbatchedModel(Model):
    """Base of the project's BoTorch models: no batch dimensions, ``_num_outputs`` outputs.

    Subclasses set ``_num_outputs`` (default 1) and implement ``posterior``.
    """

    _num_outputs: int = 1

    @property
    def num_outputs(self) -> int:
        """Number of outputs."""
        return self._num_outputs

    @property
    def batch_shape(self) -> torch.Size:
        """The model is not batched: ``torch.Size([])``."""
        return torch.Size([])


class SurrogateModel(UnbatchedModel):
    """A fitted poreml surrogate as a BoTorch ``Model`` over chosen outcomes.

    Args:
        surrogate: a fitted surrogate.
        decode: optimiser tensor → design tensors (module doc).
        outcomes: targets to expose, in this order (default: all of ``surrogate.targets_``).

    Attributes:
        outcomes: the exposed targets, in output order.
        differentiable: whether posteriors carry gradients with respect to ``X``.
        widen: outcome → factor on its posterior standard deviation (Gaussian posteriors;
            default none: the surrogate's own uncertainty). The campaign sets it while it
            optimises the acquisition, from its calibration record.

    Raises:
        ModelNotFittedError: the surrogate is not fitted.
        ConfigError: an outcome the surrogate does not predict.
    """

    def __init__(
        self, surrogate: Surrogate, decode: Decode, outcomes: Sequence[str] | None = None
    ) -> None:
        super().__init__()
        surrogate._check_fitted()
        chosen = tuple(outcomes) if outcomes is not None else tuple(surrogate.targets_)
        unknown = [o for o in chosen if o not in surrogate.targets_]
        if unknown or not chosen:
            raise ConfigError(
                f"outcomes: expected a non-empty subset of {', '.join(surrogate.targets_)} "
                f"(got {list(chosen)!r})"
            )
        self.surrogate = surrogate
        self.decode = decode
        self.outcomes = chosen
        self.differentiable = bool(surrogate.differentiable)
        self._indices = [surrogate.targets_.index(o) for o in chosen]
        self._num_outputs = len(chosen)
        self.widen: dict[str, float] = {}

    def posterior(
        self,
        X: Tensor,
        output_indices: list[int] | None = None,
        observation_noise: bool | Tensor = False,
        posterior_transform: Callable[[Posterior], Posterior] | None = None,
    ) -> Posterior:
        """Posterior over the outcomes at ``X``, in contract units.

        Args:
            X: ``b × q × d`` (or ``q × d``) optimiser tensor, passed to ``decode``.
            output_indices: indices into :attr:`outcomes` (default: all).
            observation_noise: True adds the models' measurement noise (predictive
                distribution of a measurement). Tensor noise levels are not supported.
            posterior_transform: optional BoTorch posterior transform, applied last.

        Returns:
            A posterior with event shape ``q × m`` (``m`` outcomes) and batch shape ``b``.
        """
        if isinstance(observation_noise, Tensor):
            raise UnsupportedError(
                "SurrogateModel learns its own noise; pass observation_noise=True or False "
                "(got a tensor of noise levels)"
            )
        idx = (
            list(self._indices)
            if output_indices is None
            else [self._indices[i] for i in output_indices]
        )
        design = dict(self.decode(X))
        absent = [c for c in self.surrogate.feature_columns_ if c not in design]
        if absent:
            raise ConfigError(
                f"decode(X) returned no {', '.join(absent)}; it must return every input column "
                f"of the surrogate ({', '.join(self.surrogate.feature_columns_)})"
            )
        features = self.surrogate.features_from_tensors(design)
        parts = self.surrogate._posterior_parts(features, idx, bool(observation_noise))
        scaler = self.surrogate.target_scaler_
        if isinstance(parts, Tensor):
            values = scaler.inverse(parts, idx).to(X)
            posterior: Posterior = EnsemblePosterior(values)
        else:
            targets = self.surrogate.targets_
            widen = [float(self.widen.get(targets[i], 1.0)) for i in idx]
            posterior = _gaussian_posterior(parts, scaler, idx, X, widen)
        if posterior_transform is not None:
            posterior = posterior_transform(posterior)
        return posterior


def _gaussian_posterior(
    mvns: list[MultivariateNormal],
    scaler: TargetScaler,
    idx: Sequence[int],
    ref: Tensor,
    widen: Sequence[float] | None = None,
) -> Posterior:
    """Per-output Gaussians in standardised model space → posterior in contract units (each
    output's standard deviation times its ``widen`` factor, default 1)."""
    center, scale = scaler.affine(idx, ref)
    widen = widen or [1.0] * len(mvns)
    scaled = [
        MultivariateNormal(
            mvn.mean.to(ref) * scale[k] + center[k],
            mvn.lazy_covariance_matrix.to(ref) * (scale[k] * widen[k]) ** 2,
        )
        for k, mvn in enumerate(mvns)
    ]
    if len(scaled) == 1:
        gaussian = GPyTorchPosterior(scaled[0])
    else:
        gaussian = GPyTorchPosterior(MultitaskMultivariateNormal.from_independent_mvns(scaled))
    names = [scaler.transforms[i] for i in idx]
    if all(name == "none" for name in names):
        return gaussian
    transforms = [TARGET_TRANSFORMS[name] for name in names]

    def sample_transform(samples: Tensor) -> Tensor:
        return torch.stack([t.inverse(samples[..., k]) for k, t in enumerate(transforms)], dim=-1)

    def moments(mean: Tensor, var: Tensor) -> list[tuple[Tensor, Tensor]]:
        return [t.moments(mean[..., k], var[..., k]) for k, t in enumerate(transforms)]

    def mean_transform(mean: Tensor, var: Tensor) -> Tensor:
        return torch.stack([m for m, _ in moments(mean, var)], dim=-1)

    def variance_transform(mean: Tensor, var: Tensor) -> Tensor:
        return torch.stack([v for _, v in moments(mean, var)], dim=-1)

    return TransformedPosterior(gaussian, sample_transform, mean_transform, variance_transform)
