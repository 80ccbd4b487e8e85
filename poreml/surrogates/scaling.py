"""Target transforms and the per-target scaling between contract units and model space.

Each target is transformed (:data:`TARGET_TRANSFORMS`, chosen per target with
:data:`DEFAULT_TARGET_TRANSFORMS` as default) then standardised with the mean and standard
deviation of its observed training values. For a log-transformed target the predictive
distribution in contract units is log-normal: :meth:`TargetScaler.moments` gives its moments
and :meth:`TargetScaler.inverse` maps Gaussian quantiles to its exact quantiles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "DEFAULT_TARGET_TRANSFORMS",
    "LOG_FLOOR",
    "TARGET_TRANSFORMS",
    "TargetScaler",
    "TargetTransform",
]

LOG_FLOOR = 1e-2
"""Values of a log-transformed target below this are clipped to it before the log."""


@dataclass(frozen=True)
class TargetTransform:
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


TARGET_TRANSFORMS: Mapping[str, TargetTransform] = MappingProxyType(
    {
        "none": TargetTransform(lambda y: y, lambda z: z, lambda mu, var: (mu, var)),
        "log": TargetTransform(
            lambda y: torch.log(torch.clamp(y, min=LOG_FLOOR)), torch.exp, _log_moments
        ),
    }
)
"""Available target transforms by name (``none``; ``log``: natural log, floor :data:`LOG_FLOOR`)."""

DEFAULT_TARGET_TRANSFORMS: Mapping[str, str] = MappingProxyType({"ssa_m2_g": "log"})
"""Transform of each target when ``target_transforms`` does not say otherwise (else ``none``)."""


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
