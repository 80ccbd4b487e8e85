"""scikit-learn baselines with uncertainty: random forest / extra trees, Bayesian ridge, mean.

All three fit one scikit-learn estimator per target on the rows where the target was measured,
on the standardised features and targets of :class:`~poreml.surrogates.base.Surrogate`.

* ``trees`` (:class:`TreesSurrogate`): a ``RandomForestRegressor`` (or
  ``ExtraTreesRegressor``) with bootstrap. Latent std = spread of the individual trees'
  predictions; predictive std adds the out-of-bag mean squared residual as the measurement
  noise variance (conservative: the OOB residual also contains model error).
* ``ridge`` (:class:`RidgeSurrogate`): ``BayesianRidge`` on the encoded features; predictive
  std from its posterior (weights + learned noise ``1/alpha_``), latent std without the noise.
* ``mean`` (:class:`MeanSurrogate`): the training mean of each target, with the training std as
  predictive std and the standard error of the mean as latent std.

None of them is differentiable; the BoTorch adapter gives a Gaussian posterior from their
mean and std and marks it ``differentiable = False``. Fitted scikit-learn estimators are saved
with joblib (a pickle: load trusted, local artifacts only).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
from sklearn.linear_model import BayesianRidge
from torch import Tensor

from poreml.surrogates.base import FittedState, Surrogate
from poreml.surrogates.features import Features, MissingIndicators
from poreml.surrogates.registry import register
from poreml.surrogates.scaling import PLAIN_TARGET_TRANSFORMS

__all__ = ["FOREST_KINDS", "MeanSurrogate", "RidgeSurrogate", "TreesSurrogate"]

FOREST_KINDS = {"random_forest": RandomForestRegressor, "extra_trees": ExtraTreesRegressor}
"""Tree ensembles available to :class:`TreesSurrogate`."""


def _rows(y: Tensor, j: int) -> np.ndarray:
    return ~np.isnan(y[:, j].numpy())


def _stack(columns: list[np.ndarray]) -> Tensor:
    return torch.as_tensor(np.stack(columns, axis=-1), dtype=torch.float64)


class _SklearnSurrogate(Surrogate):
    """Shared persistence of models that hold one scikit-learn estimator per target."""

    def __init__(
        self,
        *,
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

    def _fitted_state(self) -> FittedState:
        return FittedState(
            meta={"noise_var": list(self.noise_var_)}, artifact=list(self.estimators_)
        )

    def _restore(self, state: FittedState) -> None:
        self.estimators_ = list(state.artifact)
        self.noise_var_ = tuple(float(v) for v in state.meta["noise_var"])


@register("trees")
class TreesSurrogate(_SklearnSurrogate):
    """Random forest (or extra trees) per target, std from the trees plus OOB noise.

    Args:
        kind: ``"random_forest"`` or ``"extra_trees"`` (:data:`FOREST_KINDS`).
        n_estimators: trees per target.
        min_samples_leaf: smallest leaf.
        max_features: features considered per split (scikit-learn meaning).
        n_jobs: parallel jobs of scikit-learn (None: 1).
        feature_set, targets, target_transforms, missing_indicators, domain_margin,
        random_state: see :class:`~poreml.surrogates.base.Surrogate`.

    Fitted attributes: ``estimators_`` (one forest per target), ``noise_var_`` (OOB mean
    squared residual per target, standardised units) and those of the base class.
    """

    def __init__(
        self,
        *,
        kind: str = "random_forest",
        n_estimators: int = 200,
        min_samples_leaf: int = 1,
        max_features: float | int | str | None = 1.0,
        n_jobs: int | None = None,
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
        self.kind = kind
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.n_jobs = n_jobs

    def _settings_problems(self) -> list[str]:
        problems = super()._settings_problems()
        if self.kind not in FOREST_KINDS:
            problems.append(f"kind: expected one of {', '.join(FOREST_KINDS)} (got {self.kind!r})")
        for name in ("n_estimators", "min_samples_leaf"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                problems.append(f"{name}: expected an integer >= 1 (got {value!r})")
        return problems

    def _fit_features(self, features: Features, y: Tensor) -> None:
        z = features.z.numpy()
        estimators, noise = [], []
        for j in range(y.shape[1]):
            rows = _rows(y, j)
            target = y[rows, j].numpy()
            forest = FOREST_KINDS[self.kind](
                n_estimators=self.n_estimators,
                min_samples_leaf=self.min_samples_leaf,
                max_features=self.max_features,
                bootstrap=True,
                oob_score=True,
                n_jobs=self.n_jobs,
                random_state=int(self.random_state) + j,
            )
            with warnings.catch_warnings():
                # Few rows: some never fall out of bag (their OOB prediction is NaN).
                warnings.simplefilter("ignore", UserWarning)
                forest.fit(z[rows], target)
            resid = target - forest.oob_prediction_
            # No out-of-bag row at all (tiny n): fall back to the prior variance (1 in
            # standardised units).
            noise.append(float(np.nanmean(resid**2)) if np.isfinite(resid).any() else 1.0)
            estimators.append(forest)
        self.estimators_ = estimators
        self.noise_var_ = tuple(noise)

    def _predict_moments(
        self, features: Features, observation_noise: bool
    ) -> tuple[Tensor, Tensor]:
        z = features.z.detach().cpu().numpy()
        means, stds = [], []
        for forest, noise in zip(self.estimators_, self.noise_var_, strict=True):
            per_tree = np.stack([tree.predict(z) for tree in forest.estimators_])
            var = per_tree.var(axis=0) + (noise if observation_noise else 0.0)
            means.append(per_tree.mean(axis=0))
            stds.append(np.sqrt(var))
        return _stack(means), _stack(stds)


@register("ridge")
class RidgeSurrogate(_SklearnSurrogate):
    """``BayesianRidge`` per target on the encoded features (linear baseline).

    Args:
        feature_set, targets, target_transforms, missing_indicators, domain_margin,
        random_state: see :class:`~poreml.surrogates.base.Surrogate`.

    Fitted attributes: ``estimators_`` (one ``BayesianRidge`` per target), ``noise_var_``
    (``1/alpha_``, standardised units) and those of the base class.
    """

    def _fit_features(self, features: Features, y: Tensor) -> None:
        z = features.z.numpy()
        estimators, noise = [], []
        for j in range(y.shape[1]):
            rows = _rows(y, j)
            model = BayesianRidge().fit(z[rows], y[rows, j].numpy())
            estimators.append(model)
            noise.append(1.0 / float(model.alpha_))
        self.estimators_ = estimators
        self.noise_var_ = tuple(noise)

    def _predict_moments(
        self, features: Features, observation_noise: bool
    ) -> tuple[Tensor, Tensor]:
        z = features.z.detach().cpu().numpy()
        means, stds = [], []
        for model, noise in zip(self.estimators_, self.noise_var_, strict=True):
            mean, std = model.predict(z, return_std=True)
            if not observation_noise:
                std = np.sqrt(np.clip(std**2 - noise, 0.0, None))
            means.append(mean)
            stds.append(std)
        return _stack(means), _stack(stds)


@register("mean")
class MeanSurrogate(_SklearnSurrogate):
    """Predicts each target's training mean; std = training std (latent: its standard error).

    Args:
        feature_set, targets, target_transforms, missing_indicators, domain_margin,
        random_state: see :class:`~poreml.surrogates.base.Surrogate` (only the target
            handling matters here).

    Targets are modelled in contract units (BET area in logs:
    :data:`~poreml.surrogates.scaling.PLAIN_TARGET_TRANSFORMS`) unless ``target_transforms``
    says otherwise: the baseline reports the training mean and standard deviation as they are.

    Fitted attributes: ``mean_``, ``std_`` and ``n_`` per target (standardised units) and
    those of the base class.
    """

    default_target_transforms = PLAIN_TARGET_TRANSFORMS

    def _fit_features(self, features: Features, y: Tensor) -> None:
        stats = []
        for j in range(y.shape[1]):
            values = y[_rows(y, j), j]
            stats.append((float(values.mean()), float(values.std()), int(values.numel())))
        self.mean_, self.std_, self.n_ = (tuple(s) for s in zip(*stats, strict=True))

    def _predict_moments(
        self, features: Features, observation_noise: bool
    ) -> tuple[Tensor, Tensor]:
        n = features.z.shape[0]
        mean = torch.tensor(self.mean_, dtype=torch.float64).expand(n, -1)
        std = torch.tensor(self.std_, dtype=torch.float64)
        if not observation_noise:
            std = std / torch.tensor(self.n_, dtype=torch.float64).sqrt()
        return mean.clone(), std.expand(n, -1).clone()

    def _fitted_state(self) -> FittedState:
        return FittedState(
            meta={"mean": list(self.mean_), "std": list(self.std_), "n": list(self.n_)}
        )

    def _restore(self, state: FittedState) -> None:
        self.mean_ = tuple(float(v) for v in state.meta["mean"])
        self.std_ = tuple(float(v) for v in state.meta["std"])
        self.n_ = tuple(int(v) for v in state.meta["n"])
