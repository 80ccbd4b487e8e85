"""Cascade surrogate: predictions that condition on what was already measured of a powder.

A powder already made and characterised (BET area, tap density) tells more about its
performance than its nominal design: the batch that came out of the furnace is not exactly the
design that was asked for, and its measured characterisation sees the difference. The cascade
uses that, and predicts design-only candidates exactly as its stage-2 model would:

* **stage 1** (an inner surrogate, default the physics-informed ``gp``): design →
  characterisation, the targets :data:`CHARACTERISATION` (``tap_density_g_cm3``, ``ssa_m2_g``);
* **stage 2** (an inner surrogate, default ``gp``): design → performance, every other target
  (``ice_pct``, ``retention_pct``, ``expansion_pct``, ``specific_capacity_mah_g``);
* **the link**: in each target's warped, standardised space (:mod:`~poreml.surrogates.scaling`)
  the training rows' residuals (measured value minus the stage's latent mean at that design)
  of the characterisation and of each performance target are modelled as jointly Gaussian,
  with the covariance :attr:`~CascadeSurrogate.link_` estimated from the training rows where
  all of them were measured. A characterisation residual says how the batch differs from its
  design (more surface than expected, a denser powder); the link says how much of that shows
  in the performance.

Prediction of a row that carries measured characterisation columns ``S`` is Gaussian
conditioning: with ``r_S`` the measured values' residuals from stage 1's latent mean (warped,
standardised), a performance target's mean moves by ``w·r_S``, ``w = Σ_pS Σ_SS⁻¹``, and its
variance is stage 2's latent variance, plus ``Σ_j (w_j σ1_j)²`` (stage 1's latent uncertainty
in the residuals), plus (for a new measurement) stage 2's noise variance times the share the
link leaves unexplained, ``1 - w·Σ_Sp / Σ_pp``. The result is one Gaussian per target in
warped space, so intervals are its exact quantiles through the inverse warp, inside the
physical range. A row without measured columns gets stage 2's prediction unchanged, at stage
2's cost. Characterisation targets are always reported from stage 1 (the distribution of a new
measurement of the design); a measured value is not echoed back as a prediction, and
``conditioned_on`` (:meth:`~poreml.surrogates.base.Surrogate.predict_table`) lists the
characterisation columns a row carried, which the performance targets were conditioned on.

Why a linear link rather than a stage 2 on design + measured characterisation: with tens of
training rows a GP with the physics prior leaves the extra inputs almost unused (the physics
mean already explains the design), so its predictions hardly move with the measurement; the
link needs only the residual covariance, a handful of numbers, and moves predictions in the
direction the data show. Residuals are leave-one-out where the stage allows it in closed form
(the ``gp`` stages: :meth:`~poreml.surrogates.gp.GPSurrogate.loo_residuals`), so the link also
learns how the stages' out-of-sample errors at a design go together (a stage-1 model that
underestimates a design's surface area tends to err on its ICE as well), not only how a batch's
deviations do; the latent mean at a training row has absorbed part of that row's noise, so
in-sample residuals (used for other stages) shrink the covariance. With 64 noisy virtual-lab
designs, leave-one-out residuals cut the conditioned ICE MAE further on three of four lab
instances (``experiments/results/characterised.md``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from poreml.data.schema import MEASURED_COLUMNS
from poreml.exceptions import ConfigError
from poreml.surrogates.base import TARGETS, FittedState, Surrogate
from poreml.surrogates.features import (
    DESCRIPTOR_COLUMNS,
    FeatureArrays,
    Features,
    MissingIndicators,
)
from poreml.surrogates.gp import GPSurrogate
from poreml.surrogates.persistence import SavedModel
from poreml.surrogates.registry import get, make, register

__all__ = ["CHARACTERISATION", "MIN_LINK_ROWS", "CascadeSurrogate"]

CHARACTERISATION: tuple[str, ...] = DESCRIPTOR_COLUMNS
"""Stage-1 targets: the measured columns the cascade conditions on."""

MIN_LINK_ROWS = 8
"""Fewest training rows with every characterisation column and a performance target measured
for the link of that target to be estimated (fewer: the target is not conditioned, ``w = 0``)."""

_RESERVED = ("feature_set", "targets", "target_transforms", "random_state")
"""Settings of the stages the cascade sets itself."""

_STAGES = ("stage1", "stage2")


@dataclass(frozen=True)
class _ServingLink:
    """What a prediction needs of the fitted link, as arrays (built once per fitted model).

    Attributes:
        weights: per pattern of measured columns (bit k: ``CHARACTERISATION[k]`` measured)
            the measured columns, the regression weights ``w`` ``(len(cols), T2)`` and the
            share of each stage-2 target's variance they explain ``(T2,)``.
        source: per cascade target its column in ``[stage 1 outputs, stage 2 outputs]``.
        stage_center, stage_scale: per cascade target the standardisation of its stage.
        center, scale: the cascade's own standardisation.
    """

    weights: dict[int, tuple[list[int], np.ndarray, np.ndarray]]
    source: np.ndarray
    stage_center: np.ndarray
    stage_scale: np.ndarray
    center: np.ndarray
    scale: np.ndarray


@register("cascade")
class CascadeSurrogate(Surrogate):
    """Two-stage surrogate that conditions on measured characterisation (module doc).

    Args:
        stage1: registry name of the design → characterisation model.
        stage2: registry name of the design → performance model.
        stage1_params, stage2_params: further settings of the stages (not ``feature_set``,
            ``targets``, ``target_transforms`` or ``random_state``, which the cascade sets;
            ``missing_indicators`` and ``domain_margin`` default to the cascade's).
        feature_set: must be ``"design"`` (the cascade's own inputs; the characterisation
            columns are read as :meth:`measured_inputs`).
        targets, target_transforms, missing_indicators, domain_margin, random_state: see
            :class:`~poreml.surrogates.base.Surrogate`; the stages use the same transforms.

    Fitted attributes: ``stage1_`` and ``stage2_`` (fitted inner surrogates); ``link_``
    (per performance target the covariance ``(C + 1, C + 1)`` of the standardised residuals
    of :data:`CHARACTERISATION` and the target, as nested lists; zeros off the last diagonal
    entry when it could not be estimated); ``link_rows_`` (rows it was estimated from); and
    those of the base class (encoding and domain over the design columns).
    """

    def __init__(
        self,
        *,
        stage1: str = "gp",
        stage2: str = "gp",
        stage1_params: Mapping[str, Any] | None = None,
        stage2_params: Mapping[str, Any] | None = None,
        feature_set: str = "design",
        targets: Sequence[str] | None = None,
        target_transforms: Mapping[str, str] | None = None,
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
        self.stage1 = stage1
        self.stage2 = stage2
        self.stage1_params = stage1_params
        self.stage2_params = stage2_params

    # ---- settings ---------------------------------------------------------------------------

    def _settings_problems(self) -> list[str]:
        problems = super()._settings_problems()
        if self.feature_set != "design":
            problems.append(
                f"feature_set: a cascade reads the design columns and conditions on "
                f"{', '.join(CHARACTERISATION)} itself; expected 'design' (got "
                f"{self.feature_set!r})"
            )
        for stage in _STAGES:
            name = getattr(self, stage)
            if name == self.name:
                problems.append(f"{stage}: a cascade cannot be a stage of a cascade")
                continue
            try:
                cls = get(name)
            except ConfigError as err:
                problems.append(f"{stage}: {err}")
                continue
            params = dict(getattr(self, f"{stage}_params") or {})
            taken = sorted(set(params) & set(_RESERVED))
            if taken:
                problems.append(
                    f"{stage}_params: {', '.join(taken)} are set by the cascade; leave them out"
                )
            unknown = sorted(set(params) - set(cls._get_param_names()))
            if unknown:
                problems.append(f"{stage}_params: {name!r} has no setting {', '.join(unknown)}")
        chosen = list(self.targets) if self.targets is not None else list(TARGETS)
        if not [t for t in chosen if t not in CHARACTERISATION]:
            problems.append(
                "targets: a cascade needs a target besides "
                f"{', '.join(CHARACTERISATION)} (use the stage-1 model alone for those)"
            )
        return problems

    def measured_inputs(self) -> tuple[str, ...]:
        """The characterisation columns (:data:`CHARACTERISATION`)."""
        return CHARACTERISATION

    def _stage(self, stage: str, targets: Sequence[str]) -> Surrogate:
        params = {
            "missing_indicators": self.missing_indicators,
            "domain_margin": self.domain_margin,
            **dict(getattr(self, f"{stage}_params") or {}),
            "feature_set": "design",
            "targets": tuple(targets),
            "target_transforms": {t: self._transform(t) for t in targets},
            "random_state": int(self.random_state),
        }
        return make(getattr(self, stage), **params)

    def _transform(self, target: str) -> str:
        return dict(self.target_transforms or {}).get(
            target, self.default_target_transforms.get(target, "none")
        )

    # ---- fit --------------------------------------------------------------------------------

    def fit(self, X: pd.DataFrame, y: pd.DataFrame) -> CascadeSurrogate:
        """Fit both stages and the link (:meth:`Surrogate.fit
        <poreml.surrogates.base.Surrogate.fit>`).

        ``y`` must hold :data:`CHARACTERISATION` (stage 1's targets, NaN where not measured)
        whether or not they are among the cascade's targets.

        Returns:
            self.
        """
        super().fit(X, y)
        y = y.to_frame() if isinstance(y, pd.Series) else y
        absent = [c for c in CHARACTERISATION if c not in y.columns]
        if absent:
            raise ConfigError(
                f"y has no column {', '.join(map(repr, absent))}; a cascade learns the "
                "characterisation from it (NaN where not measured)"
            )
        X = X.reset_index(drop=True).drop(columns=[c for c in X.columns if c in MEASURED_COLUMNS])
        y = y.reset_index(drop=True)
        performance = [t for t in self.targets_ if t not in CHARACTERISATION]
        self.stage1_ = self._stage("stage1", CHARACTERISATION).fit(X, y)
        self.stage2_ = self._stage("stage2", performance).fit(X, y)
        self.link_, self.link_rows_ = self._fit_link(X, y)
        self._serving_link_ = None
        return self

    def _fit_features(self, features: Features, y: Tensor) -> None:
        """Nothing: the stages are fitted on the frames in :meth:`fit`."""

    def _residuals(self, stage: Surrogate, X: pd.DataFrame, y: pd.DataFrame) -> Tensor:
        """Standardised residuals ``(n, T)`` of ``y``: leave-one-out where the stage has them
        in closed form, else from the stage's latent mean (NaN where not measured)."""
        values = torch.tensor(y[list(stage.targets_)].to_numpy(dtype="float64", na_value=np.nan))
        with torch.no_grad():
            scaled = stage.target_scaler_.transform(values)
            if isinstance(stage, GPSurrogate):
                return stage.loo_residuals(scaled)
            raw = stage._raw_inputs(X, source="X")
            mu, _ = stage._predict_moments(stage.encoder_.transform(raw), False)
        return scaled.to(mu.dtype) - mu

    def _fit_link(self, X: pd.DataFrame, y: pd.DataFrame) -> tuple[list[Any], list[int]]:
        e1 = self._residuals(self.stage1_, X, y)[:, self._char_index()]
        e2 = self._residuals(self.stage2_, X, y)
        c = len(CHARACTERISATION)
        link, rows = [], []
        for j in range(e2.shape[1]):
            block = torch.cat([e1, e2[:, j : j + 1]], dim=1)
            ok = ~torch.isnan(block).any(dim=1)
            n = int(ok.sum())
            cov = torch.zeros(c + 1, c + 1, dtype=block.dtype)
            if n >= MIN_LINK_ROWS:
                b = block[ok] - block[ok].mean(dim=0)
                cov = b.T @ b / (n - 1)
            else:  # not estimable: no conditioning of this target
                cov[-1, -1] = 1.0
            link.append(cov.tolist())
            rows.append(n)
        return link, rows

    def _char_index(self) -> list[int]:
        return [self.stage1_.targets_.index(c) for c in CHARACTERISATION]

    # ---- prediction -------------------------------------------------------------------------

    def _raw_moments(
        self, raw: Mapping[str, np.ndarray], features: FeatureArrays, observation_noise: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std in the cascade's standardised space, conditioned on the measured
        characterisation in ``raw`` (module doc); numpy arrays, as the serving path computes."""
        s1, s2 = self.stage1_, self.stage2_
        # the stages were fitted on the cascade's design columns: one encoding serves all
        f1 = features if s1.encoder_ == self.encoder_ else s1.encoder_.transform_arrays(raw)
        f2 = f1 if s2.encoder_ == s1.encoder_ else s2.encoder_.transform_arrays(raw)
        n = features.z.shape[0]
        given = np.column_stack([raw.get(c, np.full(n, np.nan)) for c in CHARACTERISATION])
        measured = ~np.isnan(given)
        # The reported distributions need one pass of each stage; the latent moments the link
        # needs, a second call, only when some row carries a measurement (a GP stage answers
        # it from the first pass).
        mu1, sd1 = s1._raw_moments(raw, f1, observation_noise)
        mu2, sd2 = s2._raw_moments(raw, f2, observation_noise)
        mean2, var2 = mu2.copy(), sd2**2
        link = self._serving_link()
        if measured.any():
            lat1 = s1._raw_moments(raw, f1, False)[1] if observation_noise else sd1
            lat2 = s2._raw_moments(raw, f2, False)[1] if observation_noise else sd2
            noise2 = np.maximum(sd2**2 - lat2**2, 0.0)
            idx = self._char_index()
            mu1c, lat1c = mu1[:, idx], lat1[:, idx]
            filled = np.where(measured, given, 1.0)
            r = s1.target_scaler_.transform_array(filled, idx) - mu1c  # residuals, standardised
            pattern = measured @ (1 << np.arange(len(CHARACTERISATION)))
            for mask, (cols, w, explained) in link.weights.items():
                rows = pattern == mask
                if not rows.any():
                    continue
                mean2[rows] = mu2[rows] + r[rows][:, cols] @ w
                var = lat2[rows] ** 2 + ((lat1c[rows][:, cols, None] * w) ** 2).sum(axis=1)
                if observation_noise:
                    var = var + noise2[rows] * (1.0 - explained)
                var2[rows] = var
        # stage space -> warped -> the cascade's own standardisation
        loc = np.concatenate([mu1, mean2], axis=1)[:, link.source]
        scale = np.concatenate([sd1, np.sqrt(np.maximum(var2, 0.0))], axis=1)[:, link.source]
        out_mu = (loc * link.stage_scale + link.stage_center - link.center) / link.scale
        out_sd = scale * link.stage_scale / link.scale
        return out_mu, out_sd

    def warm_up(self) -> CascadeSurrogate:
        """Warm up both stages and build the link's regression weights now."""
        super().warm_up()
        self.stage1_.warm_up()
        self.stage2_.warm_up()
        self._serving_link()
        return self

    def _serving_link(self) -> _ServingLink:
        """The link's regression weights per pattern of measured columns and the map of the
        stages' outputs onto the cascade's targets, computed once per fitted model."""
        cached = getattr(self, "_serving_link_", None)
        if cached is not None:
            return cached
        s1, s2 = self.stage1_, self.stage2_
        c = len(CHARACTERISATION)
        weights: dict[int, tuple[list[int], np.ndarray, np.ndarray]] = {}
        for mask in range(1, 1 << c):
            cols = [k for k in range(c) if mask >> k & 1]
            w_all = np.empty((len(cols), len(s2.targets_)))
            explained_all = np.empty(len(s2.targets_))
            for j in range(len(s2.targets_)):
                cov = torch.tensor(self.link_[j], dtype=torch.float64)
                s_ss = cov[cols][:, cols]
                s_ps = cov[-1, cols]
                w = torch.linalg.solve(s_ss + 1e-9 * torch.eye(len(cols), dtype=cov.dtype), s_ps)
                explained = float((w * s_ps).sum() / cov[-1, -1]) if cov[-1, -1] > 0 else 0.0
                w_all[:, j] = w.numpy()
                explained_all[j] = min(max(explained, 0.0), 1.0)
            weights[mask] = (cols, w_all, explained_all)
        source, stage_center, stage_scale = [], [], []
        for t in self.targets_:
            stage, offset = (s1, 0) if t in s1.targets_ else (s2, len(s1.targets_))
            j = stage.targets_.index(t)
            source.append(offset + j)
            center, scale = stage.target_scaler_.affine_array([j])
            stage_center.append(center[0])
            stage_scale.append(scale[0])
        center, scale = self.target_scaler_.affine_array()
        link = _ServingLink(
            weights,
            np.array(source),
            np.array(stage_center),
            np.array(stage_scale),
            center,
            scale,
        )
        self._serving_link_: _ServingLink | None = link
        return link

    def _predict_moments(
        self, features: Features, observation_noise: bool
    ) -> tuple[Tensor, Tensor]:
        """Design-only moments (the BoTorch path: rows carry no measured columns there)."""
        raw: dict[str, np.ndarray] = {}
        for name, value in features.design.items():
            value = value.to(features.z.dtype)
            value = torch.where(features.missing[name], float("nan"), value)
            raw[name] = value.detach().cpu().numpy().astype(np.float64)
        mu, sd = self._raw_moments(raw, self.encoder_.transform_arrays(raw), observation_noise)
        return torch.from_numpy(mu).to(features.z.dtype), torch.from_numpy(sd).to(features.z.dtype)

    # ---- persistence ------------------------------------------------------------------------

    def _fitted_state(self) -> FittedState:
        meta: dict[str, Any] = {"link": self.link_, "link_rows": self.link_rows_}
        tensors: dict[str, Tensor] = {}
        artifacts: dict[str, Any] = {}
        for stage in _STAGES:
            saved = getattr(self, f"{stage}_").to_saved()
            meta[stage] = {
                "model": saved.model,
                "params": json.loads(json.dumps(saved.params)),
                "fitted": saved.fitted,
            }
            tensors.update({f"{stage}.{k}": v for k, v in saved.tensors.items()})
            if saved.artifact is not None:
                artifacts[stage] = saved.artifact
        return FittedState(meta=meta, tensors=tensors, artifact=artifacts or None)

    def _restore(self, state: FittedState) -> None:
        artifacts = state.artifact or {}
        self.link_ = [[[float(v) for v in row] for row in cov] for cov in state.meta["link"]]
        self.link_rows_ = [int(n) for n in state.meta["link_rows"]]
        self._serving_link_ = None
        for stage in _STAGES:
            part = state.meta[stage]
            prefix = f"{stage}."
            saved = SavedModel(
                model=part["model"],
                params={k: _tuples(v) for k, v in part["params"].items()},
                fitted=part["fitted"],
                tensors={
                    k[len(prefix) :]: v for k, v in state.tensors.items() if k.startswith(prefix)
                },
                artifact=artifacts.get(stage),
            )
            setattr(self, f"{stage}_", get(saved.model).from_saved(saved))


def _tuples(value: Any) -> Any:
    """Lists of saved settings back as tuples, as :mod:`~poreml.surrogates.persistence` does."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value
