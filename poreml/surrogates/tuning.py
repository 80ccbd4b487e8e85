"""Hyperparameter tuning of the registered surrogates with Optuna, against grouped CV.

Each model name has a search-space function in :data:`SEARCH_SPACES` (``trial -> settings``);
adding a model's space is one decorated function (:func:`register_search_space`). The
objective (:func:`cv_objective`) is grouped K-fold cross-validation
(:func:`~poreml.surrogates.evaluation.grouped_splits`): groups are the ``reference`` of real
rows, or random groups for virtual-lab rows. The score of a fold is the mean over targets of
the standardised Gaussian negative log-likelihood of its held-out rows (``nll``; ``rmse`` is the
alternative), so tuning rewards calibrated uncertainty, not only accuracy. The running mean is
reported after each fold and a :class:`~optuna.pruners.MedianPruner` stops trials that are
already worse than the median of earlier trials at the same fold.

Studies are named and live in the storage of the settings (``POREML_OPTUNA_STORAGE``; default
``sqlite:///<POREML_HOME>/optuna.db``, any SQLAlchemy URL such as PostgreSQL works), opened with
``load_if_exists=True``: several processes or machines running :func:`tune` with the same study
name and storage share one study. Give each worker its own ``seed`` so their first (random)
trials differ.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna
import pandas as pd

from poreml.exceptions import ConfigError, PoremlError
from poreml.settings import get_settings
from poreml.surrogates.base import Surrogate
from poreml.surrogates.evaluation import fit_fold
from poreml.surrogates.metrics import gaussian_nll
from poreml.surrogates.registry import get, make
from poreml.surrogates.splits import grouped_splits
from poreml.tracker import Tracker

__all__ = [
    "SEARCH_SPACES",
    "TuningResult",
    "create_study",
    "cv_objective",
    "default_study_name",
    "register_search_space",
    "search_space",
    "tune",
]

SearchSpaceFn = Callable[[optuna.Trial], dict[str, Any]]
Metric = Literal["nll", "rmse"]

SEARCH_SPACES: dict[str, SearchSpaceFn] = {}
"""Search-space function of each model name (``trial -> settings``)."""


def register_search_space(name: str) -> Callable[[SearchSpaceFn], SearchSpaceFn]:
    """Decorator: register the search space of the surrogate registered as ``name``.

    The function receives an :class:`optuna.Trial` and returns keyword settings for
    :func:`poreml.surrogates.registry.make`; it must only use ``trial.suggest_*`` so the same
    study can be resumed anywhere.
    """

    def decorator(fn: SearchSpaceFn) -> SearchSpaceFn:
        SEARCH_SPACES[name] = fn
        return fn

    return decorator


def search_space(name: str) -> SearchSpaceFn:
    """The search-space function of model ``name``.

    Raises:
        ConfigError: no space is registered for ``name`` (the message lists those that are).
    """
    try:
        return SEARCH_SPACES[name]
    except KeyError:
        raise ConfigError(
            f"no tuning search space for surrogate {name!r}; spaces exist for "
            f"{', '.join(sorted(SEARCH_SPACES))}. Register one with "
            "@register_search_space(name) in poreml/surrogates/tuning.py."
        ) from None


# ---- search spaces -------------------------------------------------------------------------


@register_search_space("mean")
def _mean_space(trial: optuna.Trial) -> dict[str, Any]:
    """The mean predictor has no hyperparameters."""
    return {}


@register_search_space("gp")
def _gp_space(trial: optuna.Trial) -> dict[str, Any]:
    """GP: kernel and noise are fitted by marginal likelihood; tune the model structure."""
    return {
        "prior": trial.suggest_categorical("prior", ["physics", "constant"]),
        "missing_indicators": trial.suggest_categorical(
            "missing_indicators", ["auto", "all", "none"]
        ),
    }


@register_search_space("cascade")
def _cascade_space(trial: optuna.Trial) -> dict[str, Any]:
    """Cascade of GPs: the prior of each stage and the missing-value encoding."""
    return {
        "stage1_params": {
            "prior": trial.suggest_categorical("stage1_prior", ["physics", "constant"])
        },
        "stage2_params": {
            "prior": trial.suggest_categorical("stage2_prior", ["physics", "constant"])
        },
        "missing_indicators": trial.suggest_categorical(
            "missing_indicators", ["auto", "all", "none"]
        ),
    }


@register_search_space("ridge")
def _ridge_space(trial: optuna.Trial) -> dict[str, Any]:
    """Bayesian ridge fits its own regularisation; tune how missing inputs are encoded."""
    return {
        "missing_indicators": trial.suggest_categorical(
            "missing_indicators", ["auto", "all", "none"]
        )
    }


@register_search_space("trees")
def _trees_space(trial: optuna.Trial) -> dict[str, Any]:
    """Random forest / extra trees: forest kind, size and split settings."""
    return {
        "kind": trial.suggest_categorical("kind", ["random_forest", "extra_trees"]),
        "n_estimators": trial.suggest_int("n_estimators", 50, 400, step=50),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 10),
        "max_features": trial.suggest_float("max_features", 0.3, 1.0),
    }


@register_search_space("ensemble")
def _ensemble_space(trial: optuna.Trial) -> dict[str, Any]:
    """Deep ensemble: network shape and optimiser settings (members and epochs stay fixed)."""
    width = trial.suggest_categorical("width", [32, 64, 128])
    depth = trial.suggest_int("depth", 1, 3)
    return {
        "hidden_sizes": (width,) * depth,
        "lr": trial.suggest_float("lr", 3e-4, 1e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128]),
        "bootstrap": trial.suggest_categorical("bootstrap", [True, False]),
    }


# ---- objective -----------------------------------------------------------------------------


def _fold_score(
    model: Surrogate, X: pd.DataFrame, y: pd.DataFrame, scale: Mapping[str, float], metric: str
) -> float:
    """Mean over targets of the standardised held-out score of one fold (lower is better)."""
    mean, std = model.predict(X, return_std=True)
    scores = []
    for t in model.targets_:
        obs = y[t].to_numpy(dtype=float)
        keep = ~np.isnan(obs)
        if not keep.any():
            continue
        mu = mean[t].to_numpy(dtype=float)[keep]
        sd = std[t].to_numpy(dtype=float)[keep]
        s = scale[t]
        if metric == "nll":
            scores.append(float(np.mean(gaussian_nll(obs[keep], mu, sd))) - math.log(s))
        else:
            scores.append(float(np.sqrt(np.mean((obs[keep] - mu) ** 2))) / s)
    return float(np.mean(scores)) if scores else math.nan


def cv_objective(
    model: str,
    X: pd.DataFrame,
    y: pd.DataFrame,
    groups: Sequence[Any] | np.ndarray,
    *,
    n_splits: int = 5,
    metric: Metric = "nll",
    fixed_params: Mapping[str, Any] | None = None,
    fold_seed: int = 0,
    min_train_rows: int = 2,
) -> Callable[[optuna.Trial], float]:
    """The Optuna objective of :func:`tune`: grouped K-fold CV score of one trial's settings.

    Args:
        model: registry name.
        X: inputs; ``y``: targets (NaN = not measured), aligned by position.
        groups: group of each row; one group is never split between training and test.
        n_splits: folds.
        metric: ``nll`` (standardised Gaussian NLL) or ``rmse`` (RMSE / sd of the target).
        fixed_params: settings that are not tuned (e.g. ``feature_set``, ``device``).
        fold_seed: seed of the fold assignment (the same for every trial).
        min_train_rows: fewest measured rows a target needs in a training fold.

    Returns:
        ``objective(trial) -> score`` (lower is better). It reports the running mean after
        each fold and raises :class:`optuna.TrialPruned` when the pruner says so. Settings
        already scored in the study (by this worker or another) are not scored again: the
        trial takes that score and records ``duplicate_of`` (the earlier trial's number).
    """
    if metric not in ("nll", "rmse"):
        raise ConfigError(f"metric: expected 'nll' or 'rmse' (got {metric!r})")
    space = search_space(model)
    X = X.reset_index(drop=True)
    y = y.reset_index(drop=True).astype("float64")
    targets = [t for t in y.columns if y[t].notna().sum() >= 2]
    scale = {t: float(np.nanstd(y[t].to_numpy(dtype=float), ddof=1)) or 1.0 for t in targets}
    splits = grouped_splits(np.asarray(groups), n_splits, seed=fold_seed)
    fixed = dict(fixed_params or {})

    def objective(trial: optuna.Trial) -> float:
        params = {**space(trial), **fixed}
        trial.set_user_attr("params", _jsonable(params))
        earlier = _same_settings_scored(trial)
        if earlier is not None:
            trial.set_user_attr("duplicate_of", earlier.number)
            return float(earlier.value)  # type: ignore[arg-type]
        scores: list[float] = []
        for k, (tr, te) in enumerate(splits):

            def factory(targets: Sequence[str]) -> Surrogate:
                return make(model, **{**params, "targets": list(targets)})

            fitted = fit_fold(factory, X.iloc[tr], y.iloc[tr], targets, min_train_rows)
            if fitted is None:
                continue
            score = _fold_score(fitted, X.iloc[te], y.iloc[te], scale, metric)
            if not math.isnan(score):
                scores.append(score)
            running = float(np.mean(scores)) if scores else math.inf
            trial.report(running, step=k)
            if trial.should_prune():
                raise optuna.TrialPruned(f"fold {k}: running score {running:.4g}")
        if not scores:
            raise ConfigError("no fold had a target with enough measured rows to score")
        return float(np.mean(scores))

    return objective


def _same_settings_scored(
    trial: optuna.Trial, wait: float = 600.0, poll: float = 1.0
) -> optuna.trial.FrozenTrial | None:
    """An earlier trial of the study with ``trial``'s settings and a score, or None.

    A trial with the same settings still running in another worker is waited for (at most
    ``wait`` seconds); if it fails or the wait runs out, this trial scores the settings itself.
    """
    study = trial.study
    deadline = time.monotonic() + wait
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING)
    while True:
        same = [
            t
            for t in study.get_trials(deepcopy=False, states=states)
            if t.number < trial.number and t.params == trial.params
        ]
        done = [t for t in same if t.state == optuna.trial.TrialState.COMPLETE]
        if done:
            return min(done, key=lambda t: t.number)
        if not same or time.monotonic() > deadline:
            return None
        time.sleep(poll)


# ---- studies -------------------------------------------------------------------------------


def default_study_name(model: str, feature_set: str, data_digest: str) -> str:
    """``poreml-<model>-<feature_set>-<first 12 hex of data_digest>``: workers tuning the same
    model on the same data find the same study."""
    return f"poreml-{model}-{feature_set}-{data_digest[:12]}"


def _storage_url(storage: str | None) -> str:
    url = storage or get_settings().resolved_optuna_storage
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    return url


def _masked(url: str) -> str:
    """The storage URL without its password (for logs)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL (e.g. a journal file path)
        return url


def create_study(
    study_name: str,
    *,
    storage: str | None = None,
    seed: int | None = 0,
    n_startup_trials: int = 5,
    n_warmup_steps: int = 1,
) -> optuna.Study:
    """Create or open the named minimisation study in the configured storage.

    Args:
        study_name: the study's name (shared by every worker of one tuning job).
        storage: SQLAlchemy URL; default ``get_settings().resolved_optuna_storage``.
        seed: TPE sampler seed (give each worker its own); None for fresh entropy.
        n_startup_trials: trials completed before the median pruner prunes.
        n_warmup_steps: folds reported before a trial can be pruned.

    Returns:
        The study (``load_if_exists=True``: an existing study of that name is opened).
    """
    url = _storage_url(storage)
    return optuna.create_study(
        study_name=study_name,
        storage=url,
        load_if_exists=True,
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps
        ),
    )


@dataclass(frozen=True)
class TuningResult:
    """What :func:`tune` did.

    Attributes:
        model: registry name.
        best_params: tuned settings of the best trial (plus the fixed ones), for ``make``.
        best_value: its CV score (lower is better); NaN when nothing was tuned.
        metric: ``nll`` or ``rmse``.
        study_name: the study (None when the model has no hyperparameters).
        storage: storage URL, password hidden.
        n_trials: trials in the study after this call (all workers), by state.
        trials_run: trials this call ran.
    """

    model: str
    best_params: dict[str, Any]
    best_value: float
    metric: str
    study_name: str | None
    storage: str | None
    n_trials: dict[str, int] = field(default_factory=dict)
    trials_run: int = 0


def tune(
    model: str,
    X: pd.DataFrame,
    y: pd.DataFrame,
    groups: Sequence[Any] | np.ndarray,
    *,
    n_trials: int = 20,
    timeout: float | None = None,
    n_splits: int = 5,
    metric: Metric = "nll",
    fixed_params: Mapping[str, Any] | None = None,
    study_name: str | None = None,
    storage: str | None = None,
    seed: int | None = 0,
    sampler_seed: int | None = None,
    wait_for_others: float = 120.0,
    tracker: Tracker | None = None,
    on_trial: Callable[[int, int], None] | None = None,
) -> TuningResult:
    """Tune the settings of surrogate ``model`` by grouped cross-validation.

    Args:
        model: registry name with a search space (:data:`SEARCH_SPACES`).
        X: inputs (design columns, blank cells allowed; descriptor columns for that feature
            set).
        y: target columns, NaN where not measured, aligned with ``X`` by position.
        groups: group of each row (``reference`` for real data,
            :func:`~poreml.surrogates.evaluation.random_groups` for virtual-lab data).
        n_trials: trials to run in this call (the study may hold more, from other workers).
        timeout: stop starting new trials after this many seconds.
        n_splits: CV folds.
        metric: objective (:func:`cv_objective`).
        fixed_params: settings passed to every trial unchanged (``feature_set``, ``device``…).
        study_name: study to create or join (default: :func:`default_study_name` of the data).
        storage: SQLAlchemy URL (default: the settings' Optuna storage).
        seed: fold seed, and sampler seed unless ``sampler_seed`` is given.
        sampler_seed: seed of this worker's sampler. Workers sharing one study must share
            ``seed`` (the same folds, so their scores compare) but need their own
            ``sampler_seed``, or they propose the same settings in the same order.
        wait_for_others: after its own trials, wait up to this many seconds for trials that
            other workers are still running in the study, so every worker reports (and fits
            with) the best over all of them; 0 to take the best known at once.
        tracker: logs the study, the value of each trial (``tune/value``, step = trial
            number) and the best settings (``tune.best.*``) in the open run.
        on_trial: progress callback ``(trials_done_in_this_call, n_trials)``.

    Returns:
        The :class:`TuningResult` (best settings include ``fixed_params``).

    Raises:
        ConfigError: unknown model or space, bad settings, or every trial failed.
    """
    get(model)  # fail early on an unknown name
    space = search_space(model)
    fixed = dict(fixed_params or {})
    probe = optuna.trial.FixedTrial({})
    try:
        empty = space(probe) == {}
    except ValueError:  # the space suggests something: FixedTrial has no value for it
        empty = False
    if empty:
        return TuningResult(model, fixed, math.nan, metric, None, None)
    if n_trials < 1:
        raise ConfigError(f"n_trials: expected an integer >= 1 (got {n_trials!r})")
    if study_name is None:
        study_name = default_study_name(
            model, str(fixed.get("feature_set", "design")), _data_key(X, y)
        )
    study = create_study(
        study_name, storage=storage, seed=seed if sampler_seed is None else sampler_seed
    )
    objective = cv_objective(
        model,
        X,
        y,
        groups,
        n_splits=n_splits,
        metric=metric,
        fixed_params=fixed,
        fold_seed=0 if seed is None else seed,
    )
    done = 0

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        nonlocal done
        done += 1
        if tracker is not None and trial.value is not None:
            tracker.log_metrics({"tune/value": trial.value}, step=trial.number)
        if on_trial is not None:
            on_trial(done, n_trials)

    study.optimize(
        objective,
        n_trials=n_trials,
        timeout=timeout,
        callbacks=[callback],
        catch=(PoremlError, RuntimeError, FloatingPointError),
        gc_after_trial=False,
    )
    _await_running_trials(study, wait_for_others)
    states = pd.Series([t.state.name for t in study.trials]).value_counts().to_dict()
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise ConfigError(
            f"study {study_name!r}: no trial completed ({states}); check the data and settings "
            "(a failed trial's error is in the Optuna log)."
        )
    best = study.best_trial
    params = {**dict(best.user_attrs.get("params", best.params)), **fixed}
    result = TuningResult(
        model=model,
        best_params=params,
        best_value=float(best.value),
        metric=metric,
        study_name=study_name,
        storage=_masked(_storage_url(storage)),
        n_trials={str(k): int(v) for k, v in states.items()},
        trials_run=done,
    )
    if tracker is not None:
        tracker.log_params(
            {
                "tune.study": study_name,
                "tune.storage": result.storage,
                "tune.metric": metric,
                "tune.trials_run": done,
                **{f"tune.best.{k}": v for k, v in params.items()},
            }
        )
        tracker.log_metrics({f"tune/best_{metric}": result.best_value})
    return result


def _await_running_trials(study: optuna.Study, seconds: float, poll: float = 0.5) -> None:
    """Wait (at most ``seconds``) until no trial of ``study`` is running in another worker."""
    deadline = time.monotonic() + max(seconds, 0.0)
    running = (optuna.trial.TrialState.RUNNING,)
    while study.get_trials(deepcopy=False, states=running) and time.monotonic() < deadline:
        time.sleep(poll)


def _data_key(X: pd.DataFrame, y: pd.DataFrame) -> str:
    """sha256 hex of the values and column names of ``X`` and ``y`` (names the default study)."""
    frame = pd.concat([X.reset_index(drop=True), y.reset_index(drop=True)], axis=1)
    h = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out
