"""scikit-learn baselines: forest with OOB noise, Bayesian ridge, training mean."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from poreml.exceptions import ConfigError
from poreml.surrogates import TARGETS
from poreml.surrogates.trees import MeanSurrogate, RidgeSurrogate, TreesSurrogate


@pytest.mark.parametrize("kind", ["random_forest", "extra_trees"])
def test_forest_std_combines_tree_spread_and_oob_noise(kind, train_data, test_designs) -> None:
    X, y = train_data
    model = TreesSurrogate(kind=kind, n_estimators=30).fit(X, y)
    assert len(model.estimators_) == len(TARGETS)
    assert all(v > 0 for v in model.noise_var_)
    _, total = model.predict(test_designs, return_std=True)
    _, latent = model.predict(test_designs, return_std=True, observation_noise=False)
    # in standardised units: total² = latent² + OOB noise variance
    scale = np.array(model.target_scaler_.scale)
    none = [i for i, t in enumerate(model.target_scaler_.transforms) if t == "none"]
    expected = np.sqrt(latent.to_numpy() ** 2 + np.array(model.noise_var_) * scale**2)
    np.testing.assert_allclose(total.to_numpy()[:, none], expected[:, none], rtol=1e-9)


def test_forest_learns_a_simple_trend(lab_data, lab_truth) -> None:
    X, y = lab_data(150, seed=41)
    X_test, truth = lab_truth(200, seed=42)
    pred = TreesSurrogate(n_estimators=50).fit(X, y).predict(X_test)
    assert np.corrcoef(pred["tap_density_g_cm3"], truth["tap_density_g_cm3"])[0, 1] > 0.7


def test_forest_with_very_few_rows_still_predicts(train_data, test_designs) -> None:
    X, y = train_data
    model = TreesSurrogate(n_estimators=5).fit(X.iloc[:3], y.iloc[:3])
    assert np.isfinite(model.predict(test_designs, return_std=True)[1].to_numpy()).all()


def test_unknown_forest_kind_raises_config_error(train_data) -> None:
    X, y = train_data
    with pytest.raises(ConfigError, match="kind"):
        TreesSurrogate(kind="boosted").fit(X, y)


def test_ridge_recovers_a_linear_function_with_small_noise(train_data) -> None:
    X, _ = train_data
    y = pd.DataFrame({"ice_pct": 60 + 30 * X["porosity"] + 0.2 * X["carbon_wt_pct"]})
    # linear in contract units, so modelled there (the default logit warp would bend it)
    model = RidgeSurrogate(targets=["ice_pct"], target_transforms={"ice_pct": "none"}).fit(X, y)
    mean, std = model.predict(X, return_std=True)
    np.testing.assert_allclose(mean["ice_pct"], y["ice_pct"], atol=0.05)
    assert (std["ice_pct"] < 0.1).all()
    _, latent = model.predict(X, return_std=True, observation_noise=False)
    assert (latent["ice_pct"] <= std["ice_pct"]).all()


def test_mean_baseline_predicts_the_training_mean_and_std(train_data, test_designs) -> None:
    X, y = train_data
    model = MeanSurrogate(targets=["ice_pct", "retention_pct"]).fit(X, y)
    mean, std = model.predict(test_designs, return_std=True)
    np.testing.assert_allclose(mean["ice_pct"], y["ice_pct"].mean())
    np.testing.assert_allclose(std["retention_pct"], y["retention_pct"].std())
    _, latent = model.predict(test_designs, return_std=True, observation_noise=False)
    np.testing.assert_allclose(latent["ice_pct"], y["ice_pct"].std() / np.sqrt(len(y)))
