"""Physics-informed GP: the virtual-lab prior mean, its learned correction, noise, groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import r2_score

from poreml.data.schema import ROUTES
from poreml.design.search_space import SearchSpace
from poreml.exceptions import ConfigError
from poreml.surrogates import TARGETS
from poreml.surrogates.gp import (
    FAST_CHUNK_ROWS,
    PACKED_ROOT_ROWS,
    GPSurrogate,
    PhysicsMean,
    _PosteriorCache,
    reference_predictions,
)
from poreml.surrogates.scaling import PLAIN_TARGET_TRANSFORMS
from poreml.virtual_lab.lab import VirtualLab


def test_physics_prior_beats_a_constant_mean_with_eight_noisy_points(lab_data, lab_truth) -> None:
    X, y = lab_data(8, seed=11)
    X_test, truth = lab_truth(500, seed=12)
    physics = GPSurrogate(prior="physics", random_state=0).fit(X, y)
    constant = GPSurrogate(prior="constant", random_state=0).fit(X, y)
    r2_physics = r2_score(truth["ice_pct"], physics.predict(X_test)["ice_pct"])
    r2_constant = r2_score(truth["ice_pct"], constant.predict(X_test)["ice_pct"])
    assert r2_physics > 0.9
    assert r2_physics > r2_constant + 0.3


def test_data_pull_the_mean_toward_the_truth_where_the_physics_is_wrong(lab_truth) -> None:
    # Truth: ICE of a 15 wt % graphite blend in a full cell (scenario full_cell_b15), far from
    # the composite half-cell ICE of the baseline physics used as prior.
    truth_lab = VirtualLab("full_cell_b15")
    designs, _ = lab_truth(40, seed=21)
    y = truth_lab.measure(designs, seed=5)[["ice_pct"]]
    X_test, _ = lab_truth(300, seed=22)
    truth = truth_lab.evaluate(X_test)["ice_pct"]
    prior_only = VirtualLab("baseline").evaluate(X_test)["ice_pct"]
    model = GPSurrogate(scenario="baseline", targets=["ice_pct"]).fit(designs, y)
    constant = GPSurrogate(prior="constant", targets=["ice_pct"]).fit(designs, y)

    def rmse(pred) -> float:
        return float(np.sqrt(np.mean((pred - truth) ** 2)))

    assert rmse(model.predict(X_test)["ice_pct"]) < 0.3 * rmse(prior_only)
    assert rmse(model.predict(X_test)["ice_pct"]) < rmse(constant.predict(X_test)["ice_pct"])
    slope = float(model.models_[0].mean_module.slope.detach())
    assert 0.0 < slope < 0.8  # the learned correction shrinks the too-wide physics range


def test_the_prior_mean_is_the_virtual_lab_prediction(train_data, test_designs) -> None:
    X, y = train_data
    model = GPSurrogate(fit_maxiter=5).fit(X, y)
    features = model.encoder_.transform(model._raw_inputs(test_designs, source="X"))
    physics = model.target_scaler_.inverse(model.physics(features)).numpy()
    expected = VirtualLab().evaluate(test_designs)[list(TARGETS)].to_numpy()
    np.testing.assert_allclose(physics, expected, rtol=1e-9)


def test_physics_mean_is_affine_with_learned_offset_and_slope() -> None:
    mean = PhysicsMean(column=2, num_outputs=1)
    x = torch.tensor([[0.0, 0.0, 1.5], [0.0, 0.0, -1.0]])
    torch.testing.assert_close(mean(x), torch.tensor([1.5, -1.0]))
    names = {n for n, _ in mean.named_parameters()}
    assert names == {"offset", "slope"}
    batched = PhysicsMean(column=1, num_outputs=2)
    x2 = torch.tensor([[[0.0, 1.0, 2.0]], [[0.0, 1.0, 2.0]]])  # (m=2, n=1, D=3)
    torch.testing.assert_close(batched(x2), torch.tensor([[1.0], [2.0]]))


def test_the_fitted_correction_stays_near_identity_when_the_physics_is_right(train_data) -> None:
    X, y = train_data
    model = GPSurrogate().fit(X, y)
    (group_model,) = model.models_
    slope = group_model.mean_module.slope.detach().squeeze(-1)
    assert ((slope > 0.7) & (slope < 1.3)).all()


def test_measurement_std_includes_the_learned_noise(train_data, test_designs) -> None:
    X, y = train_data
    model = GPSurrogate().fit(X, y)
    _, noisy = model.predict(test_designs, return_std=True)
    _, latent = model.predict(test_designs, return_std=True, observation_noise=False)
    assert (noisy.to_numpy() > latent.to_numpy()).all()


def test_targets_measured_on_different_rows_get_their_own_gp(train_data, test_designs) -> None:
    X, y = train_data
    y = y.copy()
    y.loc[y.index[:6], "ssa_m2_g"] = np.nan
    model = GPSurrogate(fit_maxiter=20).fit(X, y)
    ssa = TARGETS.index("ssa_m2_g")
    assert (ssa,) in model.groups_
    assert len(model.groups_) == 2
    assert model.train_inputs_[model.groups_.index((ssa,))].shape[0] == len(y) - 6
    assert np.isfinite(model.predict(test_designs).to_numpy()).all()


def test_leave_one_out_residuals_match_refitting_without_each_row(train_data) -> None:
    X, y = train_data
    y = y.copy()
    y.loc[y.index[:6], "ssa_m2_g"] = np.nan  # two groups: rows differ per target
    model = GPSurrogate(fit_maxiter=20).fit(X, y)
    values = torch.tensor(y[list(model.targets_)].to_numpy(np.float64))
    loo = model.loo_residuals(model.target_scaler_.transform(values))
    assert torch.isnan(loo).equal(torch.isnan(values))
    for group, gp in zip(model.groups_, model.models_, strict=True):
        inputs, size = gp.train_inputs[0], gp.train_targets.shape[-1]
        with torch.no_grad():
            covar = gp.covar_module(inputs).to_dense().reshape(len(group), size, size)
            prior = gp.mean_module(inputs).reshape(len(group), size)
            noise = gp.likelihood.noise.reshape(len(group), 1, 1)
        targets = gp.train_targets.reshape(len(group), -1)
        rows = (~torch.isnan(values[:, group[0]])).nonzero().squeeze(-1)
        n = len(rows)
        for i in range(n):  # the prediction of row i from the other rows, same hyperparameters
            rest = [r for r in range(n) if r != i]
            for k, j in enumerate(group):
                system = covar[k][rest][:, rest] + noise[k] * torch.eye(n - 1, dtype=covar.dtype)
                weights = torch.linalg.solve(system, targets[k, rest] - prior[k, rest])
                predicted = prior[k, i] + covar[k, i, rest] @ weights
                expected = float(targets[k, i] - predicted)
                assert float(loo[rows[i], j]) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_leave_one_out_residuals_need_the_training_targets(train_data) -> None:
    X, y = train_data
    model = GPSurrogate(fit_maxiter=5).fit(X, y)
    values = torch.tensor(y[list(model.targets_)].to_numpy(np.float64))
    with pytest.raises(ValueError, match="not the training targets"):
        model.loo_residuals(model.target_scaler_.transform(values) + 0.5)


def test_constant_prior_has_no_physics_column(train_data) -> None:
    X, y = train_data
    model = GPSurrogate(prior="constant", fit_maxiter=10).fit(X, y)
    assert model.train_inputs_[0].shape[-1] == len(model.feature_names_out_)


@pytest.mark.parametrize(
    ("setting", "value"),
    [("prior", "linear"), ("scenario", "moon_base"), ("fit_maxiter", 0), ("prior_by_route", 1)],
)
def test_invalid_gp_settings_raise_config_error(setting, value, train_data) -> None:
    X, y = train_data
    with pytest.raises(ConfigError, match=setting):
        GPSurrogate(**{setting: value}).fit(X, y)


def test_a_randomised_instance_can_serve_as_prior(train_data, test_designs) -> None:
    X, y = train_data
    model = GPSurrogate(instance_seed=1, fit_maxiter=10).fit(X, y)
    assert np.isfinite(model.predict(test_designs).to_numpy()).all()


def test_per_route_weights_read_the_route_columns() -> None:
    # inputs: 2 feature columns, the physics column, then 3 route one-hot columns
    mean = PhysicsMean(column=2, num_outputs=1, route_column=3, n_routes=3)
    with torch.no_grad():
        mean.route_offset.copy_(torch.tensor([[0.0, 2.0, 0.0]]))
        mean.route_slope.copy_(torch.tensor([[0.0, -1.0, 0.0]]))
    x = torch.tensor([[0.0, 0.0, 1.5, 1.0, 0.0, 0.0], [0.0, 0.0, 1.5, 0.0, 1.0, 0.0]])
    # route 0 keeps the shared weights (0 + 1 * 1.5); route 1: (0 + 2) + (1 - 1) * 1.5
    torch.testing.assert_close(mean(x), torch.tensor([1.5, 2.0]))
    batched = PhysicsMean(column=1, num_outputs=2, route_column=3, n_routes=2)
    with torch.no_grad():
        batched.route_offset.copy_(torch.tensor([[1.0, 0.0], [0.0, 3.0]]))
    x2 = torch.tensor([[[0.0, 1.0, 2.0, 0.0, 1.0]], [[0.0, 1.0, 2.0, 0.0, 1.0]]])  # route 1
    torch.testing.assert_close(batched(x2), torch.tensor([[1.0], [5.0]]))


def test_per_route_weights_learn_where_one_route_departs_from_the_physics(lab_truth) -> None:
    # A lab whose bottom_up ICE sits 6 points above the physics; the other routes match it.
    designs, _ = lab_truth(90, seed=31)
    y = VirtualLab("baseline").measure(designs, seed=6)[["ice_pct"]].copy()
    y.loc[(designs["route"] == ROUTES[0]).to_numpy(), "ice_pct"] += 6.0
    plain = {"target_transforms": dict(PLAIN_TARGET_TRANSFORMS), "random_state": 0}
    model = GPSurrogate(targets=["ice_pct"], prior_by_route=True, **plain).fit(designs, y)
    offsets = model.models_[0].mean_module.route_offset.detach().reshape(-1).numpy()
    points = offsets * model.target_scaler_.scale[0]  # standardised units -> ICE points
    assert 4.0 < points[0] - points[1:].mean() < 8.0  # the departing route's own offset
    assert abs(points[1] - points[2]) < 2.0
    X_test, truth = lab_truth(300, seed=32)
    truth = truth["ice_pct"].to_numpy() + np.where(X_test["route"] == ROUTES[0], 6.0, 0.0)
    shared = GPSurrogate(targets=["ice_pct"], **plain).fit(designs, y)
    err_route = np.abs(model.predict(X_test)["ice_pct"].to_numpy() - truth).mean()
    err_shared = np.abs(shared.predict(X_test)["ice_pct"].to_numpy() - truth).mean()
    assert err_route < 0.9 * err_shared


def test_per_route_weights_survive_a_save_and_load(train_data, test_designs, tmp_path) -> None:
    from poreml.surrogates.gp import reference_predictions

    X, y = train_data
    model = GPSurrogate(prior_by_route=True, fit_maxiter=15).fit(X, y)
    model.save(tmp_path / "m")
    loaded = GPSurrogate.load(tmp_path / "m")
    np.testing.assert_allclose(
        loaded.predict(test_designs).to_numpy(), model.predict(test_designs).to_numpy(), rtol=1e-9
    )
    with reference_predictions():  # the fast path reads the route weights too
        reference = model.predict(test_designs).to_numpy()
    np.testing.assert_allclose(model.predict(test_designs).to_numpy(), reference, rtol=1e-9)


# ---- the serving path ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served_gps(train_data) -> dict[str, GPSurrogate]:
    """GPs of each kind of prior, and one with targets measured on different rows (groups)."""
    X, y = train_data
    sparse = y.copy()
    sparse.loc[:4, "ssa_m2_g"] = np.nan
    sparse.loc[10:13, ["ice_pct", "retention_pct"]] = np.nan
    return {
        "physics": GPSurrogate(fit_maxiter=15).fit(X, y),
        "by_route": GPSurrogate(prior_by_route=True, fit_maxiter=15).fit(X, y),
        "constant": GPSurrogate(prior="constant", fit_maxiter=15).fit(X, y),
        "groups": GPSurrogate(fit_maxiter=15).fit(X, sparse),
    }


def _serving_designs(n: int, seed: int) -> pd.DataFrame:
    """``n`` designs across the contract box and the routes, some cells missing (imputed)."""
    designs = SearchSpace.contract_box().sample(n, seed=seed)
    designs.loc[designs.index[1::4], "porosity"] = np.nan
    designs.loc[designs.index[2::5], "route"] = None
    return designs


@pytest.mark.parametrize("kind", ["physics", "by_route", "constant", "groups"])
@pytest.mark.parametrize("n", [1, PACKED_ROOT_ROWS, PACKED_ROOT_ROWS + 1, FAST_CHUNK_ROWS + 9])
@pytest.mark.parametrize("observation_noise", [True, False])
def test_served_predictions_are_the_reference_paths_numbers(
    served_gps, kind, n, observation_noise, same_predictions
) -> None:
    model = served_gps[kind]
    X = _serving_designs(n, seed=n)
    fast = model.predict_arrays(X, observation_noise=observation_noise)
    with reference_predictions():
        reference = model.predict_arrays(X, observation_noise=observation_noise)
    same_predictions(fast, reference)


def test_reference_predictions_bypass_the_posterior_caches(served_gps, monkeypatch) -> None:
    def unused(*args, **kwargs):
        raise AssertionError("the fast path ran inside reference_predictions()")

    monkeypatch.setattr(_PosteriorCache, "moments", unused)
    X = _serving_designs(3, seed=5)
    with reference_predictions():
        served_gps["physics"].predict_arrays(X)
        served_gps["physics"].predict(X)
    with pytest.raises(AssertionError, match="fast path"):
        served_gps["physics"].predict_arrays(X)


def test_the_fast_moments_of_tensor_features_are_the_reference_paths(served_gps) -> None:
    model = served_gps["by_route"]
    X = _serving_designs(9, seed=6)
    features = model.encoder_.transform(model._raw_inputs(X, source="X"))
    with torch.no_grad():
        fast = model._predict_moments(features, observation_noise=True)
        with reference_predictions():
            reference = model._predict_moments(features, observation_noise=True)
    for got, want in zip(fast, reference, strict=True):
        assert got.dtype == want.dtype == torch.float64
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-9)


def test_the_physics_of_the_serving_path_is_the_tensor_physics(served_gps) -> None:
    model = served_gps["physics"]
    raw = model._raw_inputs(_serving_designs(11, seed=8), source="X")
    features = model.encoder_.transform(raw)
    arrays = model.encoder_.transform_arrays({k: v.numpy() for k, v in raw.items()})
    with torch.no_grad():
        want = model.physics(features).numpy()
    np.testing.assert_allclose(model._physics_arrays(arrays), want, rtol=1e-12, atol=1e-12)


def test_an_exact_gps_root_is_triangular_so_few_rows_read_half_of_it(served_gps) -> None:
    for model in served_gps.values():
        for cache in model._posterior_caches():
            assert cache.arrays.packed_root is not None


def test_warm_up_builds_the_posterior_caches_once(train_data, tmp_path) -> None:
    X, y = train_data
    loaded = GPSurrogate.load(GPSurrogate(fit_maxiter=5).fit(X, y).save(tmp_path / "gp"))
    assert loaded._posterior_caches_ is None
    loaded.warm_up()
    caches = loaded._posterior_caches_
    assert caches is not None and len(caches) == len(loaded.models_)
    loaded.predict_arrays(X.head(2))
    assert loaded._posterior_caches_ is caches
