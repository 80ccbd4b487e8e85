"""The base class of every poreml surrogate: settings, validation, fit/predict and persistence.

:class:`Surrogate` follows the scikit-learn estimator API (``fit(X, y) -> self``,
``predict(X, return_std=False)``) on contract DataFrames and owns everything that is not model
specific: validation of ``X`` and ``y`` against the data contract (every bad cell reported at
once), the feature encoding (:mod:`poreml.surrogates.features`), the target scaling
(:mod:`poreml.surrogates.scaling`), the domain of applicability
(:mod:`poreml.surrogates.domain`) and saving (:mod:`poreml.surrogates.persistence`). ``y`` may
hold NaN (not measured): each target is fitted on its own rows with a measured value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from torch import Tensor

from poreml.data.schema import COLUMNS, DESIGN_COLUMNS, MEASURED_COLUMNS, ROUTES
from poreml.data.validation import validate_table
from poreml.exceptions import ConfigError, DataValidationError, ModelNotFittedError, Problem
from poreml.surrogates.domain import DomainStats
from poreml.surrogates.features import (
    FEATURE_DTYPE,
    FEATURE_SETS,
    MISSING_INDICATORS,
    FeatureArrays,
    FeatureEncoder,
    Features,
    MissingIndicators,
)
from poreml.surrogates.persistence import SavedModel, read_model, write_model
from poreml.surrogates.scaling import DEFAULT_TARGET_TRANSFORMS, TARGET_TRANSFORMS, TargetScaler

if TYPE_CHECKING:
    from gpytorch.distributions import MultivariateNormal

__all__ = ["TARGETS", "FittedState", "PredictionArrays", "Surrogate"]

TARGETS: tuple[str, ...] = (
    "ice_pct",
    "retention_pct",
    "expansion_pct",
    "tap_density_g_cm3",
    "ssa_m2_g",
    "specific_capacity_mah_g",
)
"""Measured columns the surrogates predict, in this order."""

_DOMAIN_REFERENCE = "domain.reference"
"""Key of the domain's encoded training rows in a saved model's tensors."""


@dataclass(frozen=True)
class PredictionArrays:
    """Every prediction of a batch as arrays: the serving path without DataFrames.

    Attributes:
        targets: the predicted columns, in the order of the arrays' second axis.
        mean, std, lower, upper: float64 ``(N, T)``: moments and central-interval bounds in
            contract units (see :meth:`Surrogate.predict_interval`).
        conditioned_on: object ``(N,)``: the measured inputs each row carried and the model
            used, ``;``-joined in contract order (empty when none).
        domain_distance: float64 ``(N,)`` (see :meth:`Surrogate.domain_distance`).
        in_domain: bool ``(N,)`` (see :meth:`Surrogate.in_domain`).
    """

    targets: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    conditioned_on: np.ndarray
    domain_distance: np.ndarray
    in_domain: np.ndarray


@dataclass
class FittedState:
    """What a subclass adds to a saved model.

    Attributes:
        meta: JSON-compatible settings and statistics.
        tensors: tensors saved with ``torch.save`` (loaded with ``weights_only=True``).
        artifact: a picklable object saved with joblib (scikit-learn estimators), or None.
    """

    meta: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, Tensor] = field(default_factory=dict)
    artifact: Any = None


class Surrogate(BaseEstimator):
    """Base class of all poreml surrogates (scikit-learn estimator API).

    Subclasses list their settings as keyword arguments of ``__init__`` (stored unchanged, as
    scikit-learn requires), and implement :meth:`_fit_features`, :meth:`_predict_moments`,
    :meth:`_fitted_state` and :meth:`_restore`. Optionally they override
    :meth:`_posterior_parts` to give BoTorch an exact (joint, differentiable) posterior.

    Common settings:
        feature_set: ``"design"`` or ``"descriptors"`` (:data:`FEATURE_SETS`).
        targets: target columns to model (default: :data:`TARGETS` that are not inputs).
        target_transforms: per-target transform names overriding the class's
            :attr:`default_target_transforms` (:data:`DEFAULT_TARGET_TRANSFORMS`: ``logit_pct``
            for ICE and retention, ``log`` for the positive targets; keys: targets, values:
            :data:`TARGET_TRANSFORMS`).
        missing_indicators: ``"auto"``, ``"all"`` or ``"none"``
            (:data:`~poreml.surrogates.features.MISSING_INDICATORS`).
        domain_margin: relative widening of the calibrated domain-distance threshold
            (:mod:`~poreml.surrogates.domain`).
        random_state: seed of everything random in ``fit``.

    Fitted attributes (end in ``_``): ``targets_``, ``feature_columns_``, ``feature_names_out_``,
    ``n_train_``, ``n_observed_`` (rows with a measured value, per target), ``encoder_``,
    ``target_scaler_``, ``domain_``.
    """

    name: ClassVar[str] = "surrogate"
    """Registry name (set by :func:`poreml.surrogates.registry.register`)."""

    differentiable: ClassVar[bool] = False
    """Whether :meth:`_posterior_parts` is differentiable in the inputs (gradient-based
    acquisition optimisation is possible)."""

    default_target_transforms: ClassVar[Mapping[str, str]] = DEFAULT_TARGET_TRANSFORMS
    """Transform of each target when ``target_transforms`` does not name it (else ``none``)."""

    _min_rows: ClassVar[int] = 2
    """Fewest measured rows a target needs."""

    def __init__(
        self,
        *,
        feature_set: str = "design",
        targets: Sequence[str] | None = None,
        target_transforms: Mapping[str, str] | None = None,
        missing_indicators: MissingIndicators = "auto",
        domain_margin: float = 0.05,
        random_state: int = 0,
    ) -> None:
        self.feature_set = feature_set
        self.targets = targets
        self.target_transforms = target_transforms
        self.missing_indicators = missing_indicators
        self.domain_margin = domain_margin
        self.random_state = random_state

    # ---- settings ---------------------------------------------------------------------------

    def _settings_problems(self) -> list[str]:
        """Problems with the settings, in words (subclasses extend the list)."""
        problems = []
        if self.feature_set not in FEATURE_SETS:
            problems.append(
                f"feature_set: expected one of {', '.join(FEATURE_SETS)} (got {self.feature_set!r})"
            )
            return problems
        allowed = self._default_targets()
        for t in list(self.targets or ()):
            if t not in allowed:
                problems.append(
                    f"targets: {t!r} is not a target of feature_set {self.feature_set!r}; "
                    f"allowed: {', '.join(allowed)}"
                )
        if self.targets is not None and len(list(self.targets)) == 0:
            problems.append("targets: expected at least one target (got an empty list)")
        for t, tr in dict(self.target_transforms or {}).items():
            if t not in TARGETS:
                problems.append(f"target_transforms: unknown target {t!r}")
            if tr not in TARGET_TRANSFORMS:
                problems.append(
                    f"target_transforms[{t!r}]: expected one of "
                    f"{', '.join(TARGET_TRANSFORMS)} (got {tr!r})"
                )
        if self.missing_indicators not in MISSING_INDICATORS:
            problems.append(
                f"missing_indicators: expected one of {', '.join(MISSING_INDICATORS)} "
                f"(got {self.missing_indicators!r})"
            )
        if not (isinstance(self.domain_margin, int | float) and self.domain_margin >= 0):
            problems.append(f"domain_margin: expected a number >= 0 (got {self.domain_margin!r})")
        if not isinstance(self.random_state, int | np.integer):
            problems.append(f"random_state: expected an integer (got {self.random_state!r})")
        return problems

    def _check_settings(self) -> None:
        problems = self._settings_problems()
        if problems:
            raise ConfigError(
                f"invalid settings for {type(self).__name__}:\n  - "
                + "\n  - ".join(problems)
                + "\nFix them with set_params(...) or the constructor."
            )

    def _default_targets(self) -> tuple[str, ...]:
        inputs = set(FEATURE_SETS[self.feature_set])
        return tuple(t for t in TARGETS if t not in inputs)

    def measured_inputs(self) -> tuple[str, ...]:
        """Measured columns (CONTRACT.md §1) the model uses when a row to predict carries them.

        The base class: the measured inputs of the feature set (``descriptors``: tap density
        and BET area; ``design``: none). A model that conditions on measured columns in
        another way (:class:`~poreml.surrogates.cascade.CascadeSurrogate`) overrides this.
        Other measured columns of a row are ignored by the model.
        """
        return tuple(c for c in FEATURE_SETS[self.feature_set] if c not in DESIGN_COLUMNS)

    def _input_columns(self) -> tuple[str, ...]:
        """Columns read from ``X``: the feature set's, then further :meth:`measured_inputs`."""
        columns = FEATURE_SETS[self.feature_set]
        return columns + tuple(c for c in self.measured_inputs() if c not in columns)

    # ---- fit / predict -----------------------------------------------------------------------

    def fit(self, X: pd.DataFrame, y: pd.DataFrame) -> Surrogate:
        """Fit the model.

        Args:
            X: one row per sample; any subset of the input columns of ``feature_set`` (missing
                cells allowed, imputed as in :mod:`~poreml.surrogates.features`). Design cells
                are checked against the physical domain, descriptor inputs must be finite
                numbers; other contract columns (e.g. ``candidate_id``) are ignored and unknown
                column names are errors.
            y: same number of rows, aligned by position; the target columns (NaN or blank =
                not measured; other cells must be finite numbers). Other columns are ignored.

        Returns:
            self.

        Raises:
            ConfigError: invalid settings or a requested target missing from ``y``.
            DataValidationError: bad cells in ``X`` or ``y``, a row-count mismatch or a target
                with fewer than two measured rows.
        """
        self._check_settings()
        columns = FEATURE_SETS[self.feature_set]
        raw = self._raw_inputs(X, source="X")
        keep = self._warm_start_ready()
        targets = self.targets_ if keep else tuple(self.targets or self._default_targets())
        y_t = self._raw_targets(y, targets, n=len(X), allow_absent=keep)
        counts = (~torch.isnan(y_t)).sum(dim=0).tolist()
        if not keep:
            too_few = [
                Problem(None, t, f"{c} measured rows", f"at least {self._min_rows}")
                for t, c in zip(targets, counts, strict=True)
                if c < self._min_rows
            ]
            if too_few:
                raise DataValidationError(too_few, source="y")
            transforms = [
                dict(self.target_transforms or {}).get(
                    t, self.default_target_transforms.get(t, "none")
                )
                for t in targets
            ]
            self.encoder_ = FeatureEncoder.fit(raw, columns, self.missing_indicators)
            self.target_scaler_ = TargetScaler.fit(y_t, targets, transforms)
            self.targets_ = tuple(targets)
            self.feature_columns_ = tuple(columns)
            self.feature_names_out_ = self.encoder_.names
        self.domain_ = DomainStats.fit(raw, columns, float(self.domain_margin), self.encoder_)
        self.n_train_ = len(X)
        self.n_observed_ = dict(zip(targets, (int(c) for c in counts), strict=True))
        features = self.encoder_.transform(raw)
        self._fit_features(features, self.target_scaler_.transform(y_t))
        return self

    def warm_up(self) -> Surrogate:
        """Build now what predictions otherwise build on first use and then reuse (a GP's
        posterior caches, a cascade's link weights), so the first prediction, a server's
        first request, does not pay for them.

        Returns:
            self.

        Raises:
            ModelNotFittedError: the model is not fitted.
        """
        self._check_fitted()
        return self

    def predict(
        self, X: pd.DataFrame, return_std: bool = False, *, observation_noise: bool = True
    ) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
        """Predict every target.

        Args:
            X: rows to predict, columns as in :meth:`fit`.
            return_std: also return the predictive standard deviations.
            observation_noise: True (default): the distribution of a new *measurement* (model
                uncertainty plus measurement noise; what intervals should cover). False: the
                latent (noise-free) mean's uncertainty, for acquisition functions.

        Returns:
            ``mean`` with columns :attr:`targets_` and the index of ``X``, or ``(mean, std)``.
        """
        mean, std = self._predict_frames(X, observation_noise)
        return (mean, std) if return_std else mean

    def predict_interval(
        self, X: pd.DataFrame, level: float = 0.9, *, observation_noise: bool = True
    ) -> dict[str, pd.DataFrame]:
        """Central predictive intervals.

        The predictive distribution is Gaussian in each target's warped, standardised model
        space (for the ensemble: the moment-matched Gaussian of its mixture) and its image
        through the inverse warp in contract units (:mod:`~poreml.surrogates.scaling`): bounds
        are that distribution's exact quantiles (log-normal for ``log`` targets, logit-normal
        in (0, 100) for ``logit_pct`` ones), ``mean`` and ``std`` its moments.

        Args:
            X: rows to predict.
            level: coverage of the central interval, in (0, 1).
            observation_noise: as in :meth:`predict`.

        Returns:
            Per target a frame with columns ``mean``, ``std``, ``lower``, ``upper`` and the
            index of ``X``.
        """
        self._check_fitted()
        raw = self._input_arrays(X, check_input=True)
        features = self.encoder_.transform_arrays(raw)
        mean, std, lower, upper = self._interval_arrays(raw, features, level, observation_noise)
        return {
            t: pd.DataFrame(
                {"mean": mean[:, j], "std": std[:, j], "lower": lower[:, j], "upper": upper[:, j]},
                index=X.index,
            )
            for j, t in enumerate(self.targets_)
        }

    def predict_table(
        self,
        X: pd.DataFrame,
        level: float = 0.9,
        *,
        observation_noise: bool = True,
        check_input: bool = True,
    ) -> pd.DataFrame:
        """Every target's mean, std and central interval plus the domain distance and flag.

        The serving path (CLI ``predict``, the API, the MLflow pyfunc): inputs are checked and
        encoded once for the predictions, :meth:`domain_distance` and :meth:`in_domain`.

        Args:
            X: rows to predict, optional ``candidate_id``.
            level: coverage of the central interval, in (0, 1).
            observation_noise: as in :meth:`predict`.
            check_input: validate ``X`` against the data contract. Pass False only for frames
                already validated upstream (e.g. by the API's request models) that hold every
                design column — like scikit-learn's ``check_input``, it skips the checks, not
                the conversion.

        Returns:
            ``candidate_id`` (when given), then per target ``<target>_mean``, ``_std``,
            ``_lower``, ``_upper``, then ``conditioned_on`` (str: the :meth:`measured_inputs`
            the row carried and the model used, ``;``-joined in contract order; empty when
            none), ``domain_distance`` (float, ``<= 1`` within the calibrated threshold) and
            ``in_domain`` (bool); the index of ``X``.
        """
        arrays = self.predict_arrays(
            X, level, observation_noise=observation_noise, check_input=check_input
        )
        columns: dict[str, Any] = {}
        if "candidate_id" in X.columns:
            columns["candidate_id"] = X["candidate_id"].astype(str).to_numpy()
        for j, target in enumerate(arrays.targets):
            for stat in ("mean", "std", "lower", "upper"):
                columns[f"{target}_{stat}"] = getattr(arrays, stat)[:, j]
        columns["conditioned_on"] = arrays.conditioned_on
        columns["domain_distance"] = arrays.domain_distance
        columns["in_domain"] = arrays.in_domain
        return pd.DataFrame(columns, index=X.index)

    def predict_arrays(
        self,
        X: pd.DataFrame,
        level: float = 0.9,
        *,
        observation_noise: bool = True,
        check_input: bool = True,
    ) -> PredictionArrays:
        """What :meth:`predict_table` reports, as arrays (the API's hot path: no DataFrame is
        built, and nothing is done row by row in Python).

        Args:
            X: rows to predict.
            level: coverage of the central interval, in (0, 1).
            observation_noise: as in :meth:`predict`.
            check_input: as in :meth:`predict_table`.
        """
        self._check_fitted()
        raw = self._input_arrays(X, check_input)
        features = self.encoder_.transform_arrays(raw)
        mean, std, lower, upper = self._interval_arrays(raw, features, level, observation_noise)
        distance = self.domain_.distance(raw, self.encoder_, features.z)
        return PredictionArrays(
            targets=tuple(self.targets_),
            mean=mean,
            std=std,
            lower=lower,
            upper=upper,
            conditioned_on=self._conditioned_on(raw),
            domain_distance=distance,
            in_domain=self.domain_.contains(raw, self.encoder_, distance),
        )

    def _interval_arrays(
        self,
        raw: Mapping[str, np.ndarray],
        features: FeatureArrays,
        level: float,
        observation_noise: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``mean``, ``std``, ``lower``, ``upper``, each ``(N, T)`` in contract units."""
        if not 0.0 < level < 1.0:
            raise ConfigError(f"level: expected a number in (0, 1) (got {level!r})")
        mu, sd = self._raw_moments(raw, features, observation_noise)
        mean, std = self.target_scaler_.moments(mu, sd)
        z = _normal_quantile(0.5 + level / 2.0)
        lower, upper = self.target_scaler_.inverse_array(np.stack([mu - z * sd, mu + z * sd]))
        return mean, std, lower, upper

    def _conditioned_on(self, raw: Mapping[str, np.ndarray]) -> np.ndarray:
        """Per row the measured inputs it carries (not NaN), ``;``-joined; object array."""
        names = [c for c in MEASURED_COLUMNS if c in self.measured_inputs()]
        n = len(next(iter(raw.values())))
        if not names:
            return np.full(n, "", dtype=object)
        # one string per pattern of measured columns (bit k: names[k] present), not per row
        pattern = np.zeros(n, dtype=np.int64)
        for k, c in enumerate(names):
            pattern |= (~np.isnan(raw[c])).astype(np.int64) << k
        texts = np.array(
            [
                ";".join(c for k, c in enumerate(names) if bits >> k & 1)
                for bits in range(1 << len(names))
            ],
            dtype=object,
        )
        return texts[pattern]

    def in_domain(self, X: pd.DataFrame) -> np.ndarray:
        """Whether each row of ``X`` lies in the training domain: :meth:`domain_distance`
        ``<= 1`` and a route seen in training (:class:`~poreml.surrogates.domain.DomainStats`).

        Returns:
            Boolean array of shape ``(len(X),)``.
        """
        self._check_fitted()
        return self.domain_.contains(self._input_arrays(X, check_input=True), self.encoder_)

    def domain_distance(self, X: pd.DataFrame) -> np.ndarray:
        """How far each row of ``X`` lies from the training data, relative to the threshold
        calibrated at fit time: the mean distance to the nearest training rows in the
        standardised feature space divided by the threshold, so ``<= 1`` is within it
        (:mod:`poreml.surrogates.domain`).

        Returns:
            Float array of shape ``(len(X),)``, ``>= 0``.
        """
        self._check_fitted()
        return self.domain_.distance(self._input_arrays(X, check_input=True), self.encoder_)

    def encode(self, X: pd.DataFrame) -> pd.DataFrame:
        """The standardised feature matrix of ``X`` (columns :attr:`feature_names_out_`)."""
        self._check_fitted()
        z = self.encoder_.transform(self._raw_inputs(X, source="X")).z
        return pd.DataFrame(z.numpy(), index=X.index, columns=list(self.feature_names_out_))

    def features_from_tensors(self, inputs: Mapping[str, Tensor]) -> Features:
        """Encode tensors (the BoTorch path; differentiable in the continuous inputs).

        Args:
            inputs: input columns in physical units as tensors of a common broadcast shape
                ``(*batch)``; ``route`` as integer (or float) codes. Columns left out are
                missing (imputed as in :meth:`fit`).
        """
        self._check_fitted()
        return self.encoder_.transform(inputs)

    def _predict_frames(
        self, X: pd.DataFrame, observation_noise: bool
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        self._check_fitted()
        raw = self._input_arrays(X, check_input=True)
        mu, sd = self._raw_moments(raw, self.encoder_.transform_arrays(raw), observation_noise)
        mean, std = self.target_scaler_.moments(mu, sd)
        cols = list(self.targets_)
        return (
            pd.DataFrame(mean, index=X.index, columns=cols),
            pd.DataFrame(std, index=X.index, columns=cols),
        )

    # ---- hooks ------------------------------------------------------------------------------

    def _warm_start_ready(self) -> bool:
        """True when ``fit`` should keep the fitted encoding and target scaling (warm start)."""
        return False

    def _fit_features(self, features: Features, y: Tensor) -> None:
        """Fit on encoded inputs ``features`` (``z``: ``(n, d)``) and standardised targets ``y``
        of shape ``(n, T)`` (NaN = not measured, each target uses its own rows)."""
        raise NotImplementedError

    def _raw_moments(
        self, raw: Mapping[str, np.ndarray], features: FeatureArrays, observation_noise: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gaussian predictive mean and std ``(N, T)`` in standardised model space of
        validated inputs: the serving path, on numpy arrays (no gradients are needed there).

        The default calls :meth:`_predict_moments` on ``features`` as tensors; a model with a
        numpy prediction overrides it, and so does a model that conditions on
        :meth:`measured_inputs` beyond its features.

        Args:
            raw: per input column (:meth:`_input_columns`) a float64 array ``(N,)``.
            features: ``raw`` encoded by :attr:`encoder_` (``transform_arrays``).
            observation_noise: include measurement noise.
        """
        with torch.no_grad():
            mu, sd = self._predict_moments(features.tensors(), observation_noise)
        return _float64(mu), _float64(sd)

    def _predict_moments(
        self, features: Features, observation_noise: bool
    ) -> tuple[Tensor, Tensor]:
        """Gaussian predictive mean and std in standardised model space.

        Args:
            features: ``z`` of shape ``(N, d)``.
            observation_noise: include measurement noise.

        Returns:
            ``(mu, sd)``, each ``(N, T)`` float64 on the CPU.
        """
        raise NotImplementedError

    def _posterior_parts(
        self, features: Features, idx: Sequence[int], observation_noise: bool
    ) -> list[MultivariateNormal] | Tensor:
        """The model's posterior at a batch of points in standardised model space.

        Used by :class:`poreml.surrogates.botorch_adapter.SurrogateModel`. The default is a
        Gaussian without correlations between points, built from :meth:`_predict_moments`
        (not differentiable).

        Args:
            features: ``z`` of shape ``(*batch, q, d)``.
            idx: indices into :attr:`targets_` of the outputs wanted.
            observation_noise: include measurement noise.

        Returns:
            Either one ``MultivariateNormal`` per output over the ``q`` points (batch shape
            ``batch``), or a tensor of ensemble values of shape ``(*batch, s, q, m)``.
        """
        from gpytorch.distributions import MultivariateNormal
        from linear_operator.operators import DiagLinearOperator

        with torch.no_grad():
            mu, sd = self._predict_moments(features.flatten(), observation_noise)
        shape = features.batch_shape
        ref = features.z
        out = []
        for i in idx:
            mean = mu[:, i].reshape(shape).to(ref)
            var = (sd[:, i] ** 2).clamp(min=1e-12).reshape(shape).to(ref)
            out.append(MultivariateNormal(mean, DiagLinearOperator(var)))
        return out

    def _fitted_state(self) -> FittedState:
        """The subclass's fitted state, for :meth:`save`."""
        raise NotImplementedError

    def _restore(self, state: FittedState) -> None:
        """Set the subclass's fitted attributes from :meth:`_fitted_state` output."""
        raise NotImplementedError

    # ---- checks -----------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "encoder_"):
            raise ModelNotFittedError(
                f"this {type(self).__name__} is not fitted yet: call fit(X, y) (or load a "
                "saved model) before predicting"
            )

    def _raw_inputs(self, X: pd.DataFrame, *, source: str) -> dict[str, Tensor]:
        """Validate ``X`` and return its input columns as float64 tensors (NaN = missing)."""
        if not isinstance(X, pd.DataFrame):
            raise DataValidationError(
                [Problem(None, None, type(X).__name__, "a pandas DataFrame with named columns")],
                source,
            )
        if len(X) == 0:
            raise DataValidationError([Problem(None, None, "0 rows", "at least one row")], source)
        design = [c for c in X.columns if c in DESIGN_COLUMNS or c not in COLUMNS]
        frame = validate_table(X[design], source=source, physical=True)
        columns = self._input_columns()
        descriptors = [c for c in columns if c not in DESIGN_COLUMNS and c in X.columns]
        measured = _numeric(X[descriptors], source) if descriptors else {}
        n = len(frame)
        raw: dict[str, Tensor] = {}
        for name in columns:
            if name in measured:
                raw[name] = torch.tensor(measured[name], dtype=FEATURE_DTYPE)
            elif name not in frame.columns:
                raw[name] = torch.full((n,), math.nan, dtype=FEATURE_DTYPE)
            elif name == "route":
                names = frame[name].to_numpy(dtype=object, na_value=np.nan)
                raw[name] = torch.from_numpy(_route_codes(names))
            else:
                values = frame[name].to_numpy(dtype="float64", na_value=np.nan)
                raw[name] = torch.tensor(values, dtype=FEATURE_DTYPE)
        return raw

    def _input_arrays(self, X: pd.DataFrame, check_input: bool) -> dict[str, np.ndarray]:
        """The input columns of ``X`` as float64 arrays ``(N,)`` (NaN = missing, ``route`` as
        float codes), validated as by :meth:`_raw_inputs` when ``check_input``; otherwise
        ``X`` was validated upstream and is read without contract checks."""
        if check_input:
            return _arrays(self._raw_inputs(X, source="X"))
        # One object array of the whole frame: ~15 µs for a request's few rows, where reading
        # them column by column through pandas costs ~10 µs a column; ~0.5 ms for a 2,048-row
        # chunk, little beside the model.
        cells = X.to_numpy(dtype=object, na_value=np.nan)
        position = {name: j for j, name in enumerate(X.columns.tolist())}
        raw: dict[str, np.ndarray] = {}
        for name in self._input_columns():
            j = position.get(name)
            if j is None:
                raw[name] = np.full(len(X), np.nan)
            elif name == "route":
                raw[name] = _route_codes(cells[:, j])
            else:
                raw[name] = cells[:, j].astype(np.float64)
        return raw

    def _raw_targets(
        self, y: pd.DataFrame, targets: Sequence[str], *, n: int, allow_absent: bool
    ) -> Tensor:
        """Validate ``y`` and return the target columns as a float64 ``(n, T)`` tensor."""
        if isinstance(y, pd.Series):
            y = y.to_frame()
        if not isinstance(y, pd.DataFrame):
            raise DataValidationError(
                [Problem(None, None, type(y).__name__, "a pandas DataFrame of target columns")],
                "y",
            )
        if len(y) != n:
            raise DataValidationError(
                [Problem(None, None, f"{len(y)} rows", f"{n} rows, one per row of X")], "y"
            )
        absent = [t for t in targets if t not in y.columns]
        if absent and not allow_absent:
            raise ConfigError(
                f"y has no column {', '.join(map(repr, absent))}; expected the target columns "
                f"{', '.join(targets)} (NaN where not measured), or pass targets=[...] to fit "
                "fewer targets"
            )
        measured = _numeric(y[[t for t in targets if t in y.columns]], "y")
        values = np.full((n, len(targets)), np.nan)
        for j, t in enumerate(targets):
            if t in measured:
                values[:, j] = measured[t]
        return torch.tensor(values, dtype=FEATURE_DTYPE)

    # ---- persistence ------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Save the fitted model to the folder ``path`` (created; files inside are replaced).

        The folder format is :mod:`poreml.surrogates.persistence`.

        Returns:
            The folder.
        """
        return write_model(path, self.to_saved())

    def to_saved(self) -> SavedModel:
        """The fitted model as the contents of a saved folder (what :meth:`save` writes;
        :meth:`from_saved` rebuilds it). Composite models save their parts with it."""
        self._check_fitted()
        state = self._fitted_state()
        fitted = {
            "targets": list(self.targets_),
            "feature_columns": list(self.feature_columns_),
            "n_train": int(self.n_train_),
            "n_observed": self.n_observed_,
            "encoder": self.encoder_.to_dict(),
            "target_scaler": self.target_scaler_.to_dict(),
            "domain": self.domain_.to_dict(),
            "model": state.meta,
        }
        tensors = dict(state.tensors)
        if self.domain_.reference is not None:
            tensors[_DOMAIN_REFERENCE] = torch.as_tensor(self.domain_.reference)
        return SavedModel(self.name, self.get_params(deep=False), fitted, tensors, state.artifact)

    @classmethod
    def load(cls, path: str | Path) -> Surrogate:
        """Load a model of this class saved with :meth:`save`.

        Only load trusted, local artifacts: ``estimators.joblib`` is a pickle. To load a saved
        model of any registered class, use :func:`poreml.surrogates.load`.

        Raises:
            ConfigError: the folder holds no poreml surrogate, or one of another model.
        """
        saved = read_model(path)
        if saved.model != cls.name:
            raise ConfigError(
                f"{Path(path)} holds a {saved.model!r} model, not a {cls.__name__}; "
                "load it with poreml.surrogates.load"
            )
        return cls.from_saved(saved)

    @classmethod
    def from_saved(cls, saved: SavedModel) -> Surrogate:
        """Rebuild a fitted model from the contents of a saved folder.

        Args:
            saved: :func:`~poreml.surrogates.persistence.read_model` output of a folder that
                :meth:`save` wrote for this class.
        """
        model = cls(**saved.params)
        fitted = saved.fitted
        model.targets_ = tuple(fitted["targets"])
        model.feature_columns_ = tuple(fitted["feature_columns"])
        model.n_train_ = int(fitted["n_train"])
        model.n_observed_ = {k: int(v) for k, v in fitted["n_observed"].items()}
        model.encoder_ = FeatureEncoder.from_dict(fitted["encoder"])
        model.feature_names_out_ = model.encoder_.names
        model.target_scaler_ = TargetScaler.from_dict(fitted["target_scaler"])
        tensors = dict(saved.tensors)
        reference = tensors.pop(_DOMAIN_REFERENCE, None)
        model.domain_ = DomainStats.from_dict(fitted["domain"], reference)
        model._restore(FittedState(fitted["model"], tensors, saved.artifact))
        return model


def _route_codes(names: np.ndarray) -> np.ndarray:
    """Route names (object array) as float codes (index into ``ROUTES``; NaN for a missing or
    unknown one), one vectorised comparison per route."""
    codes = np.full(len(names), np.nan)
    for code, route in enumerate(ROUTES):
        codes[names == route] = code
    return codes


def _arrays(raw: Mapping[str, Tensor]) -> dict[str, np.ndarray]:
    """Input tensors (:meth:`Surrogate._raw_inputs`) as numpy arrays (views)."""
    return {name: value.numpy() for name, value in raw.items()}


def _float64(values: Tensor) -> np.ndarray:
    """A CPU float64 array of ``values``."""
    return values.detach().cpu().numpy().astype(np.float64, copy=False)


@lru_cache(maxsize=8)
def _normal_quantile(p: float) -> float:
    """The standard normal quantile at ``p`` (the interval half-width in standard deviations)."""
    return NormalDist().inv_cdf(p)


def _numeric(frame: pd.DataFrame, source: str) -> dict[str, np.ndarray]:
    """Measured columns as float arrays (blank = NaN); every non-numeric or infinite cell is
    reported. Values are not checked against the contract's sanity ranges: the virtual lab
    itself reports e.g. BET areas above 3500 m²/g for very open designs."""
    out: dict[str, np.ndarray] = {}
    problems: list[Problem] = []
    for name in frame.columns:
        column = frame[name]
        blank = column.isna() | column.astype(str).str.strip().eq("")
        values = pd.to_numeric(column.where(~blank), errors="coerce").to_numpy(dtype="float64")
        bad = (~blank.to_numpy() & np.isnan(values)) | np.isinf(values)
        for i in np.flatnonzero(bad):
            problems.append(Problem(int(i) + 1, str(name), column.iloc[i], "a finite number"))
        out[str(name)] = values
    if problems:
        raise DataValidationError(problems, source)
    return out
