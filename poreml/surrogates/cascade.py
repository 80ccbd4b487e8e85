"""Cascade surrogate: predictions that condition on what was already measured of a powder.

A powder already made and characterised (BET area, tap density) tells more about its
performance than its nominal design: the batch that came out of the furnace is not exactly the
design that was asked for, and its measured characterisation sees the difference. The cascade
uses that, and still predicts design-only candidates:

* **stage 1** (an inner surrogate, default the physics-informed ``gp``): design →
  characterisation, the targets :data:`CHARACTERISATION` (``tap_density_g_cm3``, ``ssa_m2_g``);
* **stage 2** (an inner surrogate on the ``descriptors`` feature set): design + measured
  characterisation → performance, every other target (``ice_pct``, ``retention_pct``,
  ``expansion_pct``, ``specific_capacity_mah_g``). It is trained on the *measured* (noisy)
  characterisation of the training rows, the values a lab reports.

Prediction of a row: a characterisation column the row carries (measured) is used as it is; an
unmeasured one is drawn from stage 1's predictive distribution of a new measurement, as
:attr:`~CascadeSurrogate.n_draws` deterministic quasi-random normal quantiles in stage 1's
warped space (a Latin-hypercube of the midpoints ``(i + 0.5) / K`` over the characterisation
columns, permuted with ``random_state``; stage-1 outputs are independent, as the GP models
them). Each draw goes through stage 2, so a performance target's predictive distribution is an
equally weighted mixture of ``K`` Gaussians in its warped space (one Gaussian when every
characterisation column was measured). ``mean`` and ``std`` are that mixture's moments in
contract units (each component's moments through the inverse warp,
:mod:`~poreml.surrogates.scaling`, combined by the law of total variance); interval bounds are
its exact quantiles, found by vectorised bisection on the mixture CDF in warped space
(:data:`BISECTION_STEPS` halvings) and mapped through the monotone inverse warp, so they stay
inside the physical range of the target.

Characterisation targets are reported from stage 1 for every row (the distribution of a new
measurement of the design); a measured value in the row is not echoed back as a prediction.
``conditioned_on`` (:meth:`~poreml.surrogates.base.Surrogate.predict_table`) lists the
characterisation columns the row carried, which is what the performance targets were
conditioned on. Measured BET areas below :data:`~poreml.surrogates.scaling.LOG_FLOOR` m²/g are
raised to it before stage 2 takes their log (0 is inside the contract range, log 0 is not).

Cost: a design-only row costs ``n_draws`` stage-2 rows (64 by default), a fully characterised
row one. The BoTorch path (:meth:`_predict_moments`) sees design-only rows and gets the
moment-matched Gaussian of the mixture.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from poreml.data.schema import MEASURED_COLUMNS
from poreml.exceptions import ConfigError
from poreml.surrogates.base import TARGETS, FittedState, Surrogate
from poreml.surrogates.features import DESCRIPTOR_COLUMNS, Features, MissingIndicators
from poreml.surrogates.persistence import SavedModel
from poreml.surrogates.registry import get, make, register
from poreml.surrogates.scaling import LOG_FLOOR, TARGET_TRANSFORMS

__all__ = ["BISECTION_STEPS", "CHARACTERISATION", "CascadeSurrogate"]

CHARACTERISATION: tuple[str, ...] = DESCRIPTOR_COLUMNS
"""Stage-1 targets and stage-2 inputs: the measured columns the cascade conditions on."""

BISECTION_STEPS = 64
"""Halvings of the bracket of a mixture quantile (the bracket spans 20 component standard
deviations, so 64 halvings leave far less than one part in 1e12 of it)."""

_RESERVED = ("feature_set", "targets", "target_transforms", "random_state")
"""Settings of the stages the cascade sets itself."""

_STAGES = ("stage1", "stage2")


@register("cascade")
class CascadeSurrogate(Surrogate):
    """Two-stage surrogate that conditions on measured characterisation (module doc).

    Args:
        stage1: registry name of the design → characterisation model.
        stage2: registry name of the design + characterisation → performance model.
        stage1_params, stage2_params: further settings of the stages (not ``feature_set``,
            ``targets``, ``target_transforms`` or ``random_state``, which the cascade sets;
            ``missing_indicators`` and ``domain_margin`` default to the cascade's).
        n_draws: characterisation draws per design-only row (mixture components).
        feature_set: must be ``"design"`` (the cascade's own inputs; the characterisation
            columns are read as :meth:`measured_inputs`).
        targets, target_transforms, missing_indicators, domain_margin, random_state: see
            :class:`~poreml.surrogates.base.Surrogate`; the stages use the same transforms.

    Fitted attributes: ``stage1_`` and ``stage2_`` (fitted inner surrogates) and those of the
    base class (encoding and domain over the design columns).
    """

    def __init__(
        self,
        *,
        stage1: str = "gp",
        stage2: str = "gp",
        stage1_params: Mapping[str, Any] | None = None,
        stage2_params: Mapping[str, Any] | None = None,
        n_draws: int = 64,
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
        self.n_draws = n_draws

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
        if not (isinstance(self.n_draws, int | np.integer) and self.n_draws >= 1):
            problems.append(f"n_draws: expected an integer >= 1 (got {self.n_draws!r})")
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

    def _stage(self, stage: str, targets: Sequence[str], feature_set: str) -> Surrogate:
        params = {
            "missing_indicators": self.missing_indicators,
            "domain_margin": self.domain_margin,
            **dict(getattr(self, f"{stage}_params") or {}),
            "feature_set": feature_set,
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
        """Fit both stages (:meth:`Surrogate.fit <poreml.surrogates.base.Surrogate.fit>`).

        ``y`` must hold :data:`CHARACTERISATION` (stage 1's targets and stage 2's inputs,
        NaN where not measured) whether or not they are among the cascade's targets.

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
        X = X.reset_index(drop=True)
        y = y.reset_index(drop=True)
        stage1 = self._stage("stage1", CHARACTERISATION, "design").fit(X, y)
        measured = [c for c in X.columns if c in MEASURED_COLUMNS]
        X2 = pd.concat([X.drop(columns=measured), y[list(CHARACTERISATION)]], axis=1)
        performance = [t for t in self.targets_ if t not in CHARACTERISATION]
        stage2 = self._stage("stage2", performance, "descriptors").fit(X2, y)
        self.stage1_ = stage1
        self.stage2_ = stage2
        return self

    def _fit_features(self, features: Features, y: Tensor) -> None:
        """Nothing: the stages are fitted on the frames in :meth:`fit`."""

    # ---- the mixture ------------------------------------------------------------------------

    def _quantiles(self, dtype: torch.dtype) -> Tensor:
        """Quasi-random standard-normal draws ``(K, len(CHARACTERISATION))`` (module doc)."""
        k = int(self.n_draws)
        rng = np.random.default_rng(int(self.random_state))
        u = np.column_stack([(rng.permutation(k) + 0.5) / k for _ in CHARACTERISATION])
        return torch.special.ndtri(torch.as_tensor(u, dtype=dtype))

    def _components(
        self, raw: Mapping[str, Tensor], observation_noise: bool
    ) -> dict[str, tuple[Tensor, Tensor]]:
        """Per target the mixture components in its warped (unstandardised) space.

        Returns:
            ``{target: (loc, scale)}``, each ``(N, K_t)``: ``K_t = 1`` for characterisation
            targets, ``n_draws`` for the others (repeated copies where a row was fully
            measured).
        """
        s1, s2 = self.stage1_, self.stage2_
        f1 = s1.encoder_.transform(raw)
        mu1, sd1 = s1._predict_moments(f1, True)  # draws are of a new *measurement*
        z = self._quantiles(mu1.dtype)
        draws = s1.target_scaler_.inverse(mu1.unsqueeze(1) + sd1.unsqueeze(1) * z)  # (N, K, C)
        n, k = mu1.shape[0], z.shape[0]
        idx1 = [s1.targets_.index(c) for c in CHARACTERISATION]
        draws = draws[..., idx1]
        given = torch.stack(
            [raw.get(c, torch.full((n,), math.nan, dtype=mu1.dtype)) for c in CHARACTERISATION],
            dim=-1,
        ).to(mu1.dtype)
        measured = ~torch.isnan(given)
        draws = torch.where(measured.unsqueeze(1), given.unsqueeze(1), draws)
        ssa = CHARACTERISATION.index("ssa_m2_g")
        draws[..., ssa] = draws[..., ssa].clamp(min=LOG_FLOOR)

        # Stage 2 sees K rows for a row with an unmeasured column, one for a measured row.
        full = measured.all(dim=-1)
        counts = torch.where(full, 1, k)
        start = torch.cumsum(counts, 0) - counts
        row_of = torch.repeat_interleave(torch.arange(n), counts)
        comp_of = torch.arange(int(counts.sum())) - start[row_of]
        inputs: dict[str, Tensor] = {
            name: value[row_of] for name, value in raw.items() if name not in CHARACTERISATION
        }
        for j, c in enumerate(CHARACTERISATION):
            inputs[c] = draws[row_of, comp_of, j]
        mu2, sd2 = s2._predict_moments(s2.encoder_.transform(inputs), observation_noise)
        c2, sc2 = s2.target_scaler_.affine(None, mu2)
        positions = start.unsqueeze(1) + torch.where(
            full.unsqueeze(1), torch.zeros(1, k, dtype=torch.long), torch.arange(k).unsqueeze(0)
        )  # (N, K) rows of stage 2's output
        loc2, scale2 = (mu2 * sc2 + c2)[positions], (sd2 * sc2)[positions]

        c1, sc1 = s1.target_scaler_.affine(None, mu1)
        loc1, scale1 = mu1 * sc1 + c1, sd1 * sc1
        out: dict[str, tuple[Tensor, Tensor]] = {}
        for t in self.targets_:
            if t in s1.targets_:
                j = s1.targets_.index(t)
                out[t] = (loc1[:, j : j + 1], scale1[:, j : j + 1])
            else:
                j = s2.targets_.index(t)
                out[t] = (loc2[..., j], scale2[..., j])
        return out

    def _mixture_moments(self, target: str, loc: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and std in contract units of the equally weighted mixture (law of total
        variance over the components' moments through the inverse warp)."""
        transform = TARGET_TRANSFORMS[self._transform_name(target)]
        m, v = transform.moments(loc, scale**2)
        mean = m.mean(dim=-1)
        var = (v + (m - mean.unsqueeze(-1)) ** 2).mean(dim=-1)
        return mean, var.clamp(min=0.0).sqrt()

    def _mixture_quantile(self, target: str, loc: Tensor, scale: Tensor, p: float) -> Tensor:
        """The ``p`` quantile in contract units (bisection on the mixture CDF, warped space)."""
        scale = scale.clamp(min=1e-12)
        lo = (loc - 10.0 * scale).min(dim=-1).values
        hi = (loc + 10.0 * scale).max(dim=-1).values
        normal = torch.distributions.Normal(loc, scale)
        for _ in range(BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            below = normal.cdf(mid.unsqueeze(-1)).mean(dim=-1) < p
            lo = torch.where(below, mid, lo)
            hi = torch.where(below, hi, mid)
        return TARGET_TRANSFORMS[self._transform_name(target)].inverse(0.5 * (lo + hi))

    def _transform_name(self, target: str) -> str:
        return self.target_scaler_.transforms[self.target_scaler_.targets.index(target)]

    # ---- prediction (overrides of the base class's Gaussian path) --------------------------

    def _intervals(
        self,
        raw: Mapping[str, Tensor],
        index: pd.Index,
        level: float,
        observation_noise: bool,
    ) -> dict[str, pd.DataFrame]:
        if not 0.0 < level < 1.0:
            raise ConfigError(f"level: expected a number in (0, 1) (got {level!r})")
        out = {}
        with torch.no_grad():
            for t, (loc, scale) in self._components(raw, observation_noise).items():
                mean, std = self._mixture_moments(t, loc, scale)
                lower = self._mixture_quantile(t, loc, scale, 0.5 - level / 2.0)
                upper = self._mixture_quantile(t, loc, scale, 0.5 + level / 2.0)
                out[t] = pd.DataFrame(
                    {
                        "mean": mean.numpy(),
                        "std": std.numpy(),
                        "lower": lower.numpy(),
                        "upper": upper.numpy(),
                    },
                    index=index,
                )
        return out

    def _predict_frames(
        self, X: pd.DataFrame, observation_noise: bool
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        self._check_fitted()
        raw = self._raw_inputs(X, source="X")
        means, stds = {}, {}
        with torch.no_grad():
            for t, (loc, scale) in self._components(raw, observation_noise).items():
                mean, std = self._mixture_moments(t, loc, scale)
                means[t], stds[t] = mean.numpy(), std.numpy()
        return pd.DataFrame(means, index=X.index), pd.DataFrame(stds, index=X.index)

    def _predict_moments(
        self, features: Features, observation_noise: bool
    ) -> tuple[Tensor, Tensor]:
        """Moment-matched Gaussian of the design-only mixture in the cascade's standardised
        space (the BoTorch path; rows carry no measured columns there)."""
        raw: dict[str, Tensor] = {}
        for name, value in features.design.items():
            value = value.to(features.z.dtype)
            raw[name] = torch.where(features.missing[name], math.nan, value)
        parts = self._components(raw, observation_noise)
        loc = torch.stack([parts[t][0].mean(dim=-1) for t in self.targets_], dim=-1)
        second = torch.stack(
            [(parts[t][1] ** 2 + parts[t][0] ** 2).mean(dim=-1) for t in self.targets_], dim=-1
        )
        var = (second - loc**2).clamp(min=0.0)
        center, scale = self.target_scaler_.affine(None, loc)
        return (loc - center) / scale, var.sqrt() / scale

    # ---- persistence ------------------------------------------------------------------------

    def _fitted_state(self) -> FittedState:
        meta: dict[str, Any] = {}
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
