"""Deep ensemble of PyTorch MLPs, trained together, with virtual-lab pre-training.

``n_members`` MLPs are held as batched weight tensors of shape ``(M, in, out)`` and evaluated
together with :func:`torch.baddbmm`, so training and prediction cost one pass for the whole
ensemble (no Python loop over members). Each member maps the encoded features to a mean and a
variance for every target and is trained with the Gaussian negative log-likelihood
(:func:`torch.nn.functional.gaussian_nll_loss`); NaN targets (not measured) are masked out of
the loss, so each target learns from its own rows through one shared trunk.

Diversity comes from independent random initialisation and, with ``bootstrap=True``
(default), a bootstrap resample of the training rows per member. Early stopping: each member
keeps the weights with the lowest validation NLL, measured on its out-of-bag rows (bootstrap)
or on a shared random hold-out of ``validation_fraction`` of the rows; training stops once no
member has improved for ``patience`` epochs.

Prediction is the mixture of the members' Gaussians: mean = average member mean; predictive
variance = variance of member means (epistemic) + average member variance (aleatoric);
``observation_noise=False`` gives the epistemic part only. Intervals use the moment-matched
Gaussian. Through the BoTorch adapter the model yields an ``EnsemblePosterior`` of the member
means (differentiable).

Pre-training and fine-tuning::

    model = EnsembleSurrogate(warm_start=True).pretrain(X_lab, y_lab)  # virtual-lab data
    model.fit(X_real, y_real)  # fine-tunes the pre-trained weights on the real rows

With ``warm_start=True`` a later ``fit`` keeps the feature encoding and target scaling of the
first fit (here: the virtual-lab data, which span the design space) and continues training from
the current weights; the domain of applicability (:meth:`in_domain`) is that of the last
``fit``. The default ``missing_indicators="all"`` gives the network a fixed input layout, so
real rows with missing design cells fine-tune a network pre-trained on complete data.

Devices: ``device="auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``; CUDA
requested where it is not available falls back to the CPU with a warning. ``None`` reads
``POREML_DEVICE`` (:func:`poreml.settings.get_settings`). The device is resolved in ``fit``,
never at import. Training runs in float32.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from gpytorch.distributions import MultivariateNormal
from linear_operator.operators import DiagLinearOperator
from torch import Tensor, nn

from poreml.exceptions import ConfigError
from poreml.settings import get_settings
from poreml.surrogates.base import FittedState, Surrogate
from poreml.surrogates.features import Features, MissingIndicators
from poreml.surrogates.registry import register

__all__ = ["BatchedMLP", "EnsembleSurrogate", "resolve_device"]

_DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | None) -> torch.device:
    """Resolve a device setting to a torch device.

    Args:
        device: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"`` or
            ``"cuda:N"``; None reads ``POREML_DEVICE``.

    Returns:
        The device. ``"cuda"`` without an available CUDA device falls back to the CPU with a
        ``UserWarning``.

    Raises:
        ConfigError: for any other value.
    """
    if device is None:
        device = get_settings().device
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if torch.cuda.is_available():
            return torch.device(name)
        warnings.warn(
            f"device={device!r} requested but CUDA is not available here; training on the CPU "
            "instead (set device='cpu' or 'auto' to silence this warning)",
            UserWarning,
            stacklevel=3,
        )
        return torch.device("cpu")
    raise ConfigError(f"device: expected one of auto, cpu, cuda, cuda:N (got {device!r})")


class BatchedMLP(nn.Module):
    """``M`` independent MLPs evaluated together through batched weights.

    Layer ``l`` holds ``weight_l`` of shape ``(M, in, out)`` and ``bias_l`` of shape
    ``(M, 1, out)``; ``h ← silu(baddbmm(bias, h, weight))``. Initialisation follows
    :class:`torch.nn.Linear` (uniform in ±1/√in), drawn from ``generator``.

    Args:
        n_members: ``M``.
        sizes: layer widths ``(in, hidden..., out)``.
        generator: CPU random generator of the initialisation.
    """

    def __init__(self, n_members: int, sizes: Sequence[int], generator: torch.Generator) -> None:
        super().__init__()
        self.sizes = tuple(int(s) for s in sizes)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            bound = 1.0 / math.sqrt(fan_in)
            w = (torch.rand(n_members, fan_in, fan_out, generator=generator) * 2 - 1) * bound
            b = (torch.rand(n_members, 1, fan_out, generator=generator) * 2 - 1) * bound
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))

    def forward(self, x: Tensor) -> Tensor:
        """Map ``x`` of shape ``(M, B, in)`` (or ``(B, in)``, shared) to ``(M, B, out)``."""
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.weights[0].shape[0], -1, -1)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = F.silu(x)
        return x


@register("ensemble")
class EnsembleSurrogate(Surrogate):
    """Deep ensemble of mean-variance MLPs (module doc).

    Args:
        n_members: ensemble size ``M``.
        hidden_sizes: widths of the hidden layers.
        epochs: most training epochs per ``fit`` / ``pretrain``.
        batch_size: minibatch size (per member).
        lr: Adam learning rate.
        weight_decay: AdamW weight decay.
        patience: epochs without improvement of any member before stopping.
        validation_fraction: shared hold-out share when ``bootstrap=False``.
        bootstrap: train each member on a bootstrap resample (validation on its out-of-bag
            rows).
        min_variance: floor of the predicted variance (standardised units).
        warm_start: a later ``fit`` continues from the current weights and keeps the
            encoding (fine-tuning after :meth:`pretrain`).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or None (``POREML_DEVICE``).
        feature_set, targets, target_transforms, missing_indicators, domain_margin,
        random_state: see :class:`~poreml.surrogates.base.Surrogate` (``missing_indicators``
            defaults to ``"all"`` here).

    Fitted attributes: ``net_`` (:class:`BatchedMLP`), ``device_``, ``n_epochs_`` (epochs run
    by the last training), ``pretrained_`` and those of the base class.
    """

    differentiable = True

    def __init__(
        self,
        *,
        n_members: int = 5,
        hidden_sizes: Sequence[int] = (64, 64),
        epochs: int = 500,
        batch_size: int = 128,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        patience: int = 40,
        validation_fraction: float = 0.15,
        bootstrap: bool = True,
        min_variance: float = 1e-4,
        warm_start: bool = False,
        device: str | None = "auto",
        feature_set: str = "design",
        targets: Sequence[str] | None = None,
        target_transforms: dict[str, str] | None = None,
        missing_indicators: MissingIndicators = "all",
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
        self.n_members = n_members
        self.hidden_sizes = hidden_sizes
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.bootstrap = bootstrap
        self.min_variance = min_variance
        self.warm_start = warm_start
        self.device = device

    def _settings_problems(self) -> list[str]:
        problems = super()._settings_problems()
        for name in ("n_members", "epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                problems.append(f"{name}: expected an integer >= 1 (got {value!r})")
        sizes = list(self.hidden_sizes) if isinstance(self.hidden_sizes, Sequence) else None
        if not sizes or not all(isinstance(s, int) and s >= 1 for s in sizes):
            problems.append(
                f"hidden_sizes: expected a non-empty sequence of integers >= 1 "
                f"(got {self.hidden_sizes!r})"
            )
        for name in ("lr", "min_variance"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0):
                problems.append(f"{name}: expected a number > 0 (got {value!r})")
        if not (isinstance(self.weight_decay, int | float) and self.weight_decay >= 0):
            problems.append(f"weight_decay: expected a number >= 0 (got {self.weight_decay!r})")
        if not (isinstance(self.validation_fraction, float) and 0 < self.validation_fraction < 1):
            problems.append(
                "validation_fraction: expected a number in (0, 1) "
                f"(got {self.validation_fraction!r})"
            )
        if self.device is not None and not str(self.device).lower().startswith(_DEVICES):
            problems.append(f"device: expected auto, cpu, cuda or cuda:N (got {self.device!r})")
        return problems

    # ---- training ----------------------------------------------------------------------------

    def pretrain(self, X: pd.DataFrame, y: pd.DataFrame) -> EnsembleSurrogate:
        """Train from scratch on (virtual-lab) data, to be fine-tuned by a later ``fit``.

        Fits the feature encoding and target scaling on ``X``/``y`` (columns as in
        :meth:`fit`). Follow with ``fit`` on real rows with ``warm_start=True``.

        Returns:
            self.
        """
        for attr in ("encoder_", "net_", "pretrained_"):
            if hasattr(self, attr):
                delattr(self, attr)
        warm = self.warm_start
        self.warm_start = False
        try:
            self.fit(X, y)
        finally:
            self.warm_start = warm
        self.pretrained_ = True
        return self

    def _warm_start_ready(self) -> bool:
        if getattr(self, "pretrained_", False) and not self.warm_start:
            warnings.warn(
                "fit() with warm_start=False discards the pre-trained weights; set "
                "warm_start=True to fine-tune them",
                UserWarning,
                stacklevel=3,
            )
        return bool(self.warm_start) and hasattr(self, "net_")

    def _fit_features(self, features: Features, y: Tensor) -> None:
        device = resolve_device(self.device)
        generator = torch.Generator().manual_seed(int(self.random_state))
        if not (self.warm_start and hasattr(self, "net_")):
            sizes = (features.z.shape[-1], *self.hidden_sizes, 2 * y.shape[-1])
            self.net_ = BatchedMLP(int(self.n_members), sizes, generator)
            self.pretrained_ = False
        self.net_ = self.net_.to(device=device, dtype=torch.float32)
        self.device_ = device
        self.n_epochs_ = self._train(features.z, y, generator)

    def _split(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Training indices ``(M, n_train)`` and validation mask ``(M, n)`` per member."""
        m = int(self.n_members)
        if self.bootstrap:
            idx = torch.randint(0, n, (m, n), generator=generator)
            counts = torch.zeros(m, n).scatter_add_(1, idx, torch.ones(m, n))
            return idx, counts == 0
        perm = torch.randperm(n, generator=generator)
        n_val = round(self.validation_fraction * n) if n >= 5 else 0
        val = torch.zeros(n, dtype=torch.bool)
        val[perm[:n_val]] = True
        return perm[n_val:].expand(m, -1), val.expand(m, -1)

    def _nll(self, out: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Per-element Gaussian NLL ``(M, B, T)`` (0 where ``y`` is NaN) and the mask."""
        t = y.shape[-1]
        mean, var = out[..., :t], F.softplus(out[..., t:]) + float(self.min_variance)
        mask = ~torch.isnan(y)
        target = torch.where(mask, y, torch.zeros_like(y))
        nll = F.gaussian_nll_loss(mean, target, var, reduction="none", full=True)
        return nll * mask, mask

    def _train(self, z: Tensor, y: Tensor, generator: torch.Generator) -> int:
        device = self.device_
        n = z.shape[0]
        z = z.to(device=device, dtype=torch.float32)
        y = y.to(device=device, dtype=torch.float32)
        train_idx, val_mask = self._split(n, generator)
        train_idx, val_mask = train_idx.to(device), val_mask.to(device)
        net = self.net_.train()
        params = list(net.parameters())
        optimiser = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        m, n_train = train_idx.shape
        batch = min(int(self.batch_size), n_train)
        best = [p.detach().clone() for p in params]
        best_loss = torch.full((m,), math.inf, device=device)
        since_best, epochs_run = 0, 0
        for epoch in range(1, int(self.epochs) + 1):
            epochs_run = epoch
            order = torch.argsort(torch.rand(m, n_train, generator=generator), dim=1).to(device)
            shuffled = torch.gather(train_idx, 1, order)
            train_sum = torch.zeros(m, device=device)
            train_count = torch.zeros(m, device=device)
            for start in range(0, n_train, batch):
                rows = shuffled[:, start : start + batch]  # (M, B)
                nll, mask = self._nll(net(z[rows]), y[rows])
                per_member = nll.sum(dim=(1, 2)) / mask.sum(dim=(1, 2)).clamp(min=1)
                optimiser.zero_grad(set_to_none=True)
                per_member.sum().backward()
                optimiser.step()
                train_sum += nll.detach().sum(dim=(1, 2))
                train_count += mask.sum(dim=(1, 2))
            with torch.no_grad():
                nll, mask = self._nll(net(z), y.expand(m, -1, -1))
                weight = mask & val_mask.unsqueeze(-1)
                count = weight.sum(dim=(1, 2))
                val_loss = (nll * weight).sum(dim=(1, 2)) / count.clamp(min=1)
                # Members without validation rows are judged on their training loss.
                val_loss = torch.where(count > 0, val_loss, train_sum / train_count.clamp(min=1))
                improved = val_loss < best_loss - 1e-6
                best_loss = torch.where(improved, val_loss, best_loss)
                for b, p in zip(best, params, strict=True):
                    b[improved] = p.detach()[improved]
            since_best = 0 if bool(improved.any()) else since_best + 1
            if since_best >= int(self.patience):
                break
        with torch.no_grad():
            for b, p in zip(best, params, strict=True):
                p.copy_(b)
        net.eval()
        return epochs_run

    # ---- prediction --------------------------------------------------------------------------

    def _member_outputs(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Member means and variances ``(M, *batch, T)`` in ``z``'s dtype and device."""
        shape = z.shape[:-1]
        flat = z.reshape(-1, z.shape[-1]).to(device=self.device_, dtype=torch.float32)
        out = self.net_(flat)
        t = out.shape[-1] // 2
        mean = out[..., :t]
        var = F.softplus(out[..., t:]) + float(self.min_variance)
        mean = mean.reshape(-1, *shape, t).to(device=z.device, dtype=z.dtype)
        var = var.reshape(-1, *shape, t).to(device=z.device, dtype=z.dtype)
        return mean, var

    def _predict_moments(
        self, features: Features, observation_noise: bool
    ) -> tuple[Tensor, Tensor]:
        mean, var = self._member_outputs(features.z)
        mu = mean.mean(dim=0)
        total = mean.var(dim=0, unbiased=False)
        if observation_noise:
            total = total + var.mean(dim=0)
        return mu.cpu(), total.clamp(min=0.0).sqrt().cpu()

    def _posterior_parts(
        self, features: Features, idx: Sequence[int], observation_noise: bool
    ) -> Tensor | list[MultivariateNormal]:
        """Member means ``(*batch, M, q, m)`` (an ``EnsemblePosterior``), or with observation
        noise the moment-matched Gaussian of each output; differentiable either way."""
        mean, var = self._member_outputs(features.z)  # (M, *batch, q, T)
        mean, var = mean[..., list(idx)], var[..., list(idx)]
        if not observation_noise:
            return mean.movedim(0, -3)
        mu = mean.mean(dim=0)
        total = (mean.var(dim=0, unbiased=False) + var.mean(dim=0)).clamp(min=1e-12)
        return [
            MultivariateNormal(mu[..., k], DiagLinearOperator(total[..., k]))
            for k in range(len(idx))
        ]

    # ---- persistence -------------------------------------------------------------------------

    def _fitted_state(self) -> FittedState:
        meta = {
            "sizes": list(self.net_.sizes),
            "n_members": int(self.net_.weights[0].shape[0]),
            "n_epochs": int(self.n_epochs_),
            "pretrained": bool(getattr(self, "pretrained_", False)),
        }
        return FittedState(meta=meta, tensors=dict(self.net_.state_dict()))

    def _restore(self, state: FittedState) -> None:
        meta = state.meta
        net = BatchedMLP(int(meta["n_members"]), meta["sizes"], torch.Generator())
        net.load_state_dict(state.tensors)
        self.device_ = resolve_device(self.device)
        self.net_ = net.to(device=self.device_, dtype=torch.float32).eval()
        self.n_epochs_ = int(meta["n_epochs"])
        self.pretrained_ = bool(meta["pretrained"])
