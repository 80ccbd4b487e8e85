"""Tuning: search-space registry, storage from the settings, shared studies, pruning."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from poreml.data.schema import DESIGN_COLUMNS
from poreml.exceptions import ConfigError
from poreml.surrogates import tuning
from poreml.surrogates.evaluation import virtual_lab_data
from poreml.surrogates.registry import available
from poreml.surrogates.splits import random_groups

TARGETS = ["ice_pct", "tap_density_g_cm3"]


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    frame = virtual_lab_data(40, seed=3)
    return frame[list(DESIGN_COLUMNS)], frame[TARGETS], random_groups(40, 8, seed=0)


@pytest.fixture(autouse=True)
def _quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_every_registered_model_has_a_search_space() -> None:
    assert set(available()) <= set(tuning.SEARCH_SPACES)
    with pytest.raises(ConfigError, match="no tuning search space"):
        tuning.search_space("nope")


def test_storage_setting_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'shared' / 'optuna.db'}"
    monkeypatch.setenv("POREML_OPTUNA_STORAGE", url)
    study = tuning.create_study("poreml-test-study")
    study.enqueue_trial({"x": 1.0})
    again = optuna.load_study(study_name="poreml-test-study", storage=url)
    assert again.study_name == "poreml-test-study"
    assert len(again.trials) == 1
    # the default, without the variable: SQLite under POREML_HOME
    monkeypatch.delenv("POREML_OPTUNA_STORAGE")
    monkeypatch.setenv("POREML_HOME", str(tmp_path / "home"))
    tuning.create_study("poreml-home-study")
    assert (tmp_path / "home" / "optuna.db").is_file()


def test_tuning_runs_trials_and_workers_share_one_study(
    data: tuple[pd.DataFrame, pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    X, y, groups = data
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    progress: list[tuple[int, int]] = []
    first = tuning.tune(
        "trees",
        X,
        y,
        groups,
        n_trials=3,
        n_splits=3,
        storage=url,
        study_name="shared",
        fixed_params={"n_estimators": 20},
        seed=1,
        on_trial=lambda done, total: progress.append((done, total)),
    )
    assert progress == [(1, 3), (2, 3), (3, 3)]
    assert first.trials_run == 3 and first.n_trials == {"COMPLETE": 3}
    assert first.best_params["n_estimators"] == 20  # fixed settings win over the space
    assert {"kind", "min_samples_leaf", "max_features"} <= set(first.best_params)
    assert np.isfinite(first.best_value)
    # a second worker (another seed) joins the same named study
    second = tuning.tune(
        "trees",
        X,
        y,
        groups,
        n_trials=2,
        n_splits=3,
        storage=url,
        study_name="shared",
        fixed_params={"n_estimators": 20},
        seed=2,
    )
    assert sum(second.n_trials.values()) == 5
    assert second.best_value <= first.best_value
    study = optuna.load_study(study_name="shared", storage=url)
    # each completed trial reported its running score after every fold (for the pruner)
    assert all(len(t.intermediate_values) == 3 for t in study.trials)


def test_objective_reports_each_fold_and_obeys_the_pruner(
    data: tuple[pd.DataFrame, pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    X, y, groups = data
    study = tuning.create_study("prune", storage=f"sqlite:///{tmp_path / 'p.db'}")
    assert isinstance(study.pruner, optuna.pruners.MedianPruner)
    objective = tuning.cv_objective("ridge", X, y, groups, n_splits=3)
    # a pruner that prunes everything: the trial stops after its first fold
    strict = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=-1e9))
    strict.optimize(objective, n_trials=1)
    (trial,) = strict.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [0]


def test_models_without_hyperparameters_need_no_study(
    data: tuple[pd.DataFrame, pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    X, y, groups = data
    result = tuning.tune("mean", X, y, groups, storage=f"sqlite:///{tmp_path / 'x.db'}")
    assert result.best_params == {} and result.study_name is None
    assert not (tmp_path / "x.db").exists()


def test_default_study_name_depends_on_the_data(
    data: tuple[pd.DataFrame, pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    X, y, groups = data
    url = f"sqlite:///{tmp_path / 'n.db'}"
    a = tuning.tune("ridge", X, y, groups, n_trials=1, n_splits=2, storage=url)
    b = tuning.tune("ridge", X, y, groups, n_trials=1, n_splits=2, storage=url)
    c = tuning.tune(
        "ridge", X.iloc[:30], y.iloc[:30], groups[:30], n_trials=1, n_splits=2, storage=url
    )
    assert a.study_name == b.study_name != c.study_name
    assert a.study_name.startswith("poreml-ridge-design-")
    assert sum(b.n_trials.values()) == 2


def test_tracker_receives_trial_values_and_best_settings(
    data: tuple[pd.DataFrame, pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    X, y, groups = data

    class Recorder:
        def __init__(self) -> None:
            self.params: dict = {}
            self.metrics: list = []

        def log_params(self, params: dict) -> None:
            self.params.update(params)

        def log_metrics(self, metrics: dict, step: int | None = None) -> None:
            self.metrics.append((dict(metrics), step))

    rec = Recorder()
    tuning.tune(
        "ridge",
        X,
        y,
        groups,
        n_trials=2,
        n_splits=2,
        storage=f"sqlite:///{tmp_path / 't.db'}",
        tracker=rec,  # type: ignore[arg-type]
    )
    assert [step for m, step in rec.metrics if "tune/value" in m] == [0, 1]
    assert rec.params["tune.best.missing_indicators"] in ("auto", "all", "none")
    assert rec.params["tune.storage"].startswith("sqlite:///")


def test_workers_with_their_own_sampler_seed_propose_different_settings(
    data: tuple[pd.DataFrame, pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    X, y, groups = data
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    common = {"n_trials": 2, "n_splits": 2, "storage": url, "fixed_params": {"n_estimators": 10}}
    for name, sampler_seeds in (("same", (None, None)), ("own", (11, 12))):
        for s in sampler_seeds:
            tuning.tune("trees", X, y, groups, study_name=name, seed=0, sampler_seed=s, **common)
    same = optuna.load_study(study_name="same", storage=url).trials
    own = [t.params for t in optuna.load_study(study_name="own", storage=url).trials]
    # one seed: the second worker proposes the first one's settings again, and takes their
    # scores instead of computing them twice
    assert [t.params for t in same[:2]] == [t.params for t in same[2:]]
    assert [t.user_attrs.get("duplicate_of") for t in same] == [None, None, 0, 1]
    assert [t.value for t in same[2:]] == [t.value for t in same[:2]]
    assert own[0] not in own[2:] and own[1] not in own[2:]


def test_a_worker_waits_for_trials_still_running_elsewhere(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="s", storage=url)
    t0 = time.monotonic()
    tuning._await_running_trials(study, seconds=5.0, poll=0.05)
    assert time.monotonic() - t0 < 1.0  # nothing running: no wait
    study.ask()  # another worker's trial, never finished
    t0 = time.monotonic()
    tuning._await_running_trials(study, seconds=0.4, poll=0.05)
    assert 0.4 <= time.monotonic() - t0 < 3.0  # bounded wait
