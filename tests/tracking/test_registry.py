"""Model logging as pyfunc, registration and champion promotion on the declared metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poreml.data.schema import DESIGN_COLUMNS
from poreml.exceptions import ConfigError, DataValidationError
from poreml.surrogates.base import TARGETS
from poreml.tracking import MlflowTracker, register_surrogate
from poreml.tracking.artifacts import load_pyfunc, load_uri
from poreml.tracking.registry import (
    CHAMPION_ALIAS,
    HELDOUT_TAG,
    RegistryError,
    current_champion,
    metric_higher_is_better,
    resolve_model_uri,
)


def _register(
    tracker: MlflowTracker,
    model_dir: Path,
    example: pd.DataFrame,
    value: float,
    name: str,
    *,
    heldout: str = "set-a",
    **kwargs: object,
):
    with tracker.start_run(f"train-{value}"):
        tracker.set_tags({HELDOUT_TAG: heldout})
        return register_surrogate(
            tracker,
            model_dir,
            example,
            targets=list(TARGETS),
            metric="mean_nll_std",
            value=value,
            name=name,
            **kwargs,
        )


def test_alias_moves_only_when_the_new_model_is_better(
    store: Path, model_dir: Path, vl_data: pd.DataFrame
) -> None:
    tracker = MlflowTracker()
    example = vl_data[list(DESIGN_COLUMNS)].head(3)
    name = "poreml-surrogate-promotion"
    first = _register(tracker, model_dir, example, 0.50, name)
    assert (first.version, first.promoted, first.previous_version) == ("1", True, None)
    worse = _register(tracker, model_dir, example, 0.70, name)
    assert (worse.version, worse.promoted, worse.champion_version) == ("2", False, "1")
    assert worse.previous_value == pytest.approx(0.50)
    assert str(current_champion(tracker.client, name).version) == "1"
    better = _register(tracker, model_dir, example, 0.30, name)
    assert (better.promoted, better.champion_version) == (True, "3")
    assert str(current_champion(tracker.client, name).version) == "3"
    run = tracker.client.get_run(better.run_id)
    assert run.data.metrics["mean_nll_std"] == pytest.approx(0.30)
    assert run.data.tags["poreml.promoted"] == "true"


def test_scores_on_another_heldout_set_do_not_promote_unless_forced(
    store: Path, model_dir: Path, vl_data: pd.DataFrame
) -> None:
    tracker = MlflowTracker()
    example = vl_data[list(DESIGN_COLUMNS)].head(3)
    name = "poreml-surrogate-heldout"
    _register(tracker, model_dir, example, 0.5, name, heldout="set-a")
    other = _register(tracker, model_dir, example, 0.1, name, heldout="set-b")
    assert not other.promoted and "another held-out set" in other.reason
    forced = _register(tracker, model_dir, example, 0.9, name, heldout="set-b", force=True)
    assert forced.promoted and forced.reason.startswith("forced")
    assert str(current_champion(tracker.client, name).version) == forced.version


def test_pyfunc_loads_and_predicts_every_target_with_intervals(
    store: Path, model_dir: Path, vl_data: pd.DataFrame
) -> None:
    tracker = MlflowTracker()
    name = "poreml-surrogate-pyfunc"
    _register(tracker, model_dir, vl_data[list(DESIGN_COLUMNS)].head(3), 0.4, name)
    pyfunc = load_pyfunc(f"models:/{name}@{CHAMPION_ALIAS}")
    designs = vl_data[["candidate_id", *DESIGN_COLUMNS]].head(4)
    out = pyfunc.predict(designs)
    expected = [f"{t}_{s}" for t in TARGETS for s in ("mean", "std", "lower", "upper")]
    assert list(out.columns) == [
        "candidate_id",
        *expected,
        "conditioned_on",
        "domain_distance",
        "in_domain",
    ]
    assert out["candidate_id"].tolist() == designs["candidate_id"].tolist()
    for t in TARGETS:
        assert (out[f"{t}_lower"] <= out[f"{t}_mean"]).all()
        assert (out[f"{t}_mean"] <= out[f"{t}_upper"]).all()
    narrow = pyfunc.predict(designs, params={"level": 0.5})
    t = TARGETS[0]
    assert (
        (narrow[f"{t}_upper"] - narrow[f"{t}_lower"]) < (out[f"{t}_upper"] - out[f"{t}_lower"])
    ).all()
    # a subset of columns is enough: the rest take their contract defaults
    partial = pyfunc.predict(pd.DataFrame({"route": ["bottom_up"], "porosity": [0.3]}))
    assert len(partial) == 1 and np.isfinite(partial[f"{t}_mean"]).all()
    with pytest.raises(DataValidationError, match="porosity"):
        pyfunc.predict(pd.DataFrame({"route": ["bottom_up"], "porosity": [1.5]}))
    surrogate = load_uri(f"models:/{name}@{CHAMPION_ALIAS}").surrogate
    direct = surrogate.predict(designs[list(DESIGN_COLUMNS)])
    np.testing.assert_allclose(direct[t].to_numpy(), out[f"{t}_mean"].to_numpy())


def test_metric_directions() -> None:
    assert metric_higher_is_better("mean_r2") is True
    assert metric_higher_is_better("mean_nll_std") is False
    assert metric_higher_is_better("real/gp/ice_pct/mae") is False
    assert metric_higher_is_better("weird", override=True) is True
    with pytest.raises(ConfigError, match="direction unknown"):
        metric_higher_is_better("weird")


def test_non_finite_metric_is_refused(store: Path, model_dir: Path, vl_data: pd.DataFrame) -> None:
    tracker = MlflowTracker()
    with tracker.start_run("nan"), pytest.raises(ConfigError, match="finite"):
        register_surrogate(
            tracker,
            model_dir,
            vl_data[list(DESIGN_COLUMNS)].head(2),
            targets=list(TARGETS),
            metric="mean_nll_std",
            value=float("nan"),
            name="poreml-surrogate-nan",
        )


def test_a_fresh_champion_score_on_the_same_rows_decides_the_promotion(
    store: Path, model_dir: Path, vl_data: pd.DataFrame
) -> None:
    tracker = MlflowTracker()
    example = vl_data[list(DESIGN_COLUMNS)].head(3)
    name = "poreml-surrogate-rescored"
    _register(tracker, model_dir, example, 0.5, name, heldout="set-a")
    asked: list[str] = []

    def champion_scores(value: float | None):
        def score(version: str) -> float | None:
            asked.append(version)
            return value

        return score

    # the champion's logged 0.5 was on another set; re-scored on these rows it gets 0.8
    better = _register(
        tracker, model_dir, example, 0.6, name, heldout="set-b", score_champion=champion_scores(0.8)
    )
    assert (better.promoted, better.previous_value, asked) == (True, pytest.approx(0.8), ["1"])
    assert "same held-out rows" in better.reason
    run = tracker.client.get_run(better.run_id)
    assert run.data.metrics["champion_mean_nll_std"] == pytest.approx(0.8)
    worse = _register(
        tracker, model_dir, example, 0.6, name, heldout="set-b", score_champion=champion_scores(0.4)
    )
    assert (worse.promoted, worse.champion_version, asked[-1]) == (False, "2", "2")
    unscorable = _register(
        tracker, model_dir, example, 0.1, name, score_champion=champion_scores(float("nan"))
    )
    assert not unscorable.promoted and "cannot be scored" in unscorable.reason
    assert str(current_champion(tracker.client, name).version) == "2"


def test_alias_uris_resolve_to_the_version_the_alias_names(
    store: Path, model_dir: Path, vl_data: pd.DataFrame
) -> None:
    tracker = MlflowTracker()
    name = "poreml-surrogate-resolve"
    first = _register(tracker, model_dir, vl_data[list(DESIGN_COLUMNS)].head(3), 0.5, name)
    pinned = resolve_model_uri(f"models:/{name}@{CHAMPION_ALIAS}")
    assert pinned == f"models:/{name}/{first.version}"
    for unchanged in (f"models:/{name}/1", "runs:/abc/model", "/some/folder"):
        assert resolve_model_uri(unchanged) == unchanged
    with pytest.raises(RegistryError, match="alias 'nope'"):
        resolve_model_uri(f"models:/{name}@nope")
