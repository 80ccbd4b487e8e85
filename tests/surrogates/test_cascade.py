"""The cascade surrogate: conditioning on measured tap density and BET area."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from poreml.data.schema import CONTINUOUS_DESIGN_COLUMNS, DESIGN_COLUMNS, MEASURED_COLUMNS, ROUTES
from poreml.design.search_space import SearchSpace
from poreml.exceptions import ConfigError
from poreml.surrogates import load, make
from poreml.surrogates.base import TARGETS
from poreml.surrogates.cascade import CHARACTERISATION, CascadeSurrogate
from poreml.surrogates.evaluation import virtual_lab_data
from poreml.virtual_lab import VirtualLab
from poreml.virtual_lab.noise import add_measurement_noise, perturb_designs

FAST = {"stage1_params": {"fit_maxiter": 40}, "stage2_params": {"fit_maxiter": 40}}
PERFORMANCE = [t for t in TARGETS if t not in CHARACTERISATION]


@pytest.fixture(scope="module")
def lab() -> tuple[CascadeSurrogate, pd.DataFrame]:
    """A cascade fitted on 64 noisy virtual-lab rows, and 40 other measured rows."""
    train = virtual_lab_data(64, seed=0)
    model = make("cascade", random_state=0, **FAST).fit(
        train[list(DESIGN_COLUMNS)], train[list(TARGETS)]
    )
    return model, virtual_lab_data(40, seed=7)


def _with(test: pd.DataFrame, *measured: str) -> pd.DataFrame:
    return test[[*DESIGN_COLUMNS, *measured]].copy()


def test_conditioned_on_lists_the_measured_columns_each_row_carried(lab) -> None:
    model, test = lab
    X = _with(test.head(4), *CHARACTERISATION)
    X.loc[1, "tap_density_g_cm3"] = np.nan
    X.loc[2, "ssa_m2_g"] = np.nan
    X.loc[3, list(CHARACTERISATION)] = np.nan
    table = model.predict_table(X)
    assert table["conditioned_on"].tolist() == [
        "tap_density_g_cm3;ssa_m2_g",
        "ssa_m2_g",
        "tap_density_g_cm3",
        "",
    ]


def test_a_design_only_row_gets_the_stage_2_prediction_unchanged(lab) -> None:
    model, test = lab
    X = _with(test.head(5))
    table = model.predict_table(X)
    inner = model.stage2_.predict_table(X)
    for t in PERFORMANCE:
        for stat in ("mean", "std", "lower", "upper"):
            np.testing.assert_allclose(table[f"{t}_{stat}"], inner[f"{t}_{stat}"], rtol=1e-9)
    assert (table["conditioned_on"] == "").all()


def test_characterisation_targets_come_from_stage_1_whatever_was_measured(lab) -> None:
    model, test = lab
    plain = model.predict_table(_with(test.head(5)))
    measured = model.predict_table(_with(test.head(5), *CHARACTERISATION))
    for t in CHARACTERISATION:
        np.testing.assert_allclose(plain[f"{t}_mean"], measured[f"{t}_mean"])


def test_higher_measured_ssa_predicts_lower_ice(lab) -> None:
    model, test = lab
    X = _with(test, "ssa_m2_g")
    more = X.assign(ssa_m2_g=X["ssa_m2_g"] * 2.0)
    ice = model.predict(X)["ice_pct"].to_numpy()
    ice_more = model.predict(more)["ice_pct"].to_numpy()
    assert (ice_more < ice).all()


def _made_by_the_lab(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Designs the lab made (batch noise), their measured SSA and TD, and the batch's
    noise-free ICE."""
    designs = SearchSpace.contract_box().sample(n, seed)
    lab = VirtualLab()
    rng = np.random.default_rng(seed)
    arrays = {
        "route": pd.Categorical(designs["route"], categories=ROUTES).codes.astype(np.intp),
        **{c: designs[c].to_numpy(np.float64) for c in CONTINUOUS_DESIGN_COLUMNS},
    }
    batch = perturb_designs(arrays, rng, lab.batch_noise)
    made = pd.DataFrame(
        {"route": designs["route"], **{c: batch[c] for c in CONTINUOUS_DESIGN_COLUMNS}}
    )
    truth = lab.evaluate(made, extra=True)
    clean = {c: truth[c].to_numpy(np.float64) for c in MEASURED_COLUMNS}
    measured, _ = add_measurement_noise(
        clean, truth["free_expansion_pct"].to_numpy(np.float64), rng, lab.measurement_noise
    )
    X = designs[list(DESIGN_COLUMNS)].assign(
        tap_density_g_cm3=measured["tap_density_g_cm3"], ssa_m2_g=measured["ssa_m2_g"]
    )
    return X, truth["ice_pct"].to_numpy()


def test_conditioning_on_the_measurement_moves_ice_towards_the_batch(lab) -> None:
    """On powders the lab made (batch noise), knowing SSA and TD lowers the ICE error."""
    model, _ = lab
    X, truth = _made_by_the_lab(200, seed=11)
    design_only = model.predict(X[list(DESIGN_COLUMNS)])["ice_pct"].to_numpy()
    conditioned = model.predict(X)["ice_pct"].to_numpy()
    assert np.abs(conditioned - truth).mean() < 0.95 * np.abs(design_only - truth).mean()


def test_the_link_is_the_covariance_of_the_stages_leave_one_out_residuals(lab) -> None:
    model, _ = lab
    train = virtual_lab_data(64, seed=0)
    X, y = train[list(DESIGN_COLUMNS)], train[list(TARGETS)]
    residuals = []
    for stage in (model.stage1_, model.stage2_):
        values = torch.tensor(y[list(stage.targets_)].to_numpy(np.float64))
        residuals.append(stage.loo_residuals(stage.target_scaler_.transform(values)))
    characterisation = residuals[0][:, [model.stage1_.targets_.index(c) for c in CHARACTERISATION]]
    for j, target in enumerate(model.stage2_.targets_):
        block = torch.cat([characterisation, residuals[1][:, j : j + 1]], dim=1).numpy()
        expected = np.cov(block, rowvar=False)
        assert np.asarray(model.link_[j]) == pytest.approx(expected, rel=1e-9), target
    assert model.link_rows_ == [len(X)] * len(model.stage2_.targets_)


def test_conditioning_narrows_the_ice_interval_on_average(lab) -> None:
    model, test = lab
    plain = model.predict_interval(_with(test))["ice_pct"]
    measured = model.predict_interval(_with(test, *CHARACTERISATION))["ice_pct"]
    width = (measured["upper"] - measured["lower"]).mean()
    assert width < (plain["upper"] - plain["lower"]).mean()


def test_intervals_stay_inside_the_physical_ranges_for_extreme_measurements(lab) -> None:
    model, test = lab
    X = _with(test.head(6), *CHARACTERISATION)
    X["ssa_m2_g"] = [0.0, 0.01, 1.0, 3000.0, 29000.0, 30000.0]
    X["tap_density_g_cm3"] = [0.0, 0.01, 0.5, 1.5, 2.9, 3.0]
    intervals = model.predict_interval(X, level=0.99)
    for t, frame in intervals.items():
        values = frame.to_numpy()
        assert np.isfinite(values).all(), t
        assert (frame["lower"] > 0).all() and (frame["lower"] <= frame["upper"]).all(), t
        if t in ("ice_pct", "retention_pct"):
            assert (frame["upper"] < 100).all(), t


def test_save_and_load_give_identical_conditioned_predictions(lab, tmp_path: Path) -> None:
    model, test = lab
    X = _with(test.head(6), *CHARACTERISATION)
    X.loc[0, "ssa_m2_g"] = np.nan
    model.save(tmp_path / "m")
    back = load(tmp_path / "m")
    assert isinstance(back, CascadeSurrogate)
    pd.testing.assert_frame_equal(back.predict_table(X), model.predict_table(X))
    assert back.link_ == model.link_ and back.link_rows_ == model.link_rows_


def test_models_that_cannot_condition_ignore_measured_columns(lab) -> None:
    _, test = lab
    train = virtual_lab_data(32, seed=1)
    gp = make("gp", fit_maxiter=20).fit(train[list(DESIGN_COLUMNS)], train[list(TARGETS)])
    plain = gp.predict_table(_with(test.head(3)))
    given = gp.predict_table(_with(test.head(3), *CHARACTERISATION, "ice_pct"))
    pd.testing.assert_frame_equal(plain, given)
    assert (given["conditioned_on"] == "").all()


def test_a_descriptors_model_reports_the_descriptors_it_used() -> None:
    train = virtual_lab_data(32, seed=1)
    model = make("ridge", feature_set="descriptors").fit(train, train[PERFORMANCE])
    X = _with(train.head(2), "ssa_m2_g")
    X.loc[1, "ssa_m2_g"] = np.nan
    assert model.predict_table(X)["conditioned_on"].tolist() == ["ssa_m2_g", ""]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"feature_set": "descriptors"}, "feature_set"),
        ({"stage1": "cascade"}, "stage1"),
        ({"stage2": "nope"}, "stage2"),
        ({"stage1_params": {"targets": ["ice_pct"]}}, "set by the cascade"),
        ({"stage2_params": {"n_members": 3}}, "no setting n_members"),
        ({"targets": ["ssa_m2_g"]}, "needs a target besides"),
    ],
)
def test_bad_settings_are_named(params, message) -> None:
    train = virtual_lab_data(16, seed=2)
    with pytest.raises(ConfigError, match=message):
        make("cascade", **params).fit(train[list(DESIGN_COLUMNS)], train[list(TARGETS)])


def test_fit_needs_the_characterisation_columns_in_y() -> None:
    train = virtual_lab_data(16, seed=2)
    with pytest.raises(ConfigError, match="ssa_m2_g"):
        make("cascade", targets=["ice_pct"], **FAST).fit(
            train[list(DESIGN_COLUMNS)], train[["ice_pct", "tap_density_g_cm3"]]
        )


@pytest.mark.parametrize("observation_noise", [True, False])
def test_the_prediction_fast_path_gives_the_reference_paths_numbers(
    lab, observation_noise: bool, same_predictions
) -> None:
    from poreml.surrogates.gp import FAST_CHUNK_ROWS, reference_predictions

    model, _ = lab
    # design-only rows, fully and partly characterised rows, more rows than one fast chunk
    designs = SearchSpace.contract_box().sample(FAST_CHUNK_ROWS + 37, seed=4)
    X = designs[list(DESIGN_COLUMNS)].copy()
    X["ssa_m2_g"] = np.where(np.arange(len(X)) % 3 == 0, np.nan, 40.0 + np.arange(len(X)) % 90)
    X["tap_density_g_cm3"] = np.where(np.arange(len(X)) % 4 == 1, np.nan, 0.7)
    fast = model.predict_arrays(X, observation_noise=observation_noise)
    with reference_predictions():
        ref = model.predict_arrays(X, observation_noise=observation_noise)
    same_predictions(fast, ref)
    # the caches are built once per model and kept
    caches = model.stage2_._posterior_caches()
    model.predict_arrays(X.head(3))
    assert model.stage2_._posterior_caches() is caches


@pytest.mark.parametrize("measured", [(), ("ssa_m2_g",), CHARACTERISATION])
@pytest.mark.parametrize("check_input", [True, False])
def test_one_row_is_predicted_with_the_reference_paths_numbers(
    lab, measured, check_input, same_predictions
) -> None:
    from poreml.surrogates.gp import reference_predictions

    model, test = lab
    for i in range(3):  # three designs, one per route
        row = _with(test.iloc[[i * 7]], *measured)
        fast = model.predict_arrays(row, check_input=check_input)
        with reference_predictions():
            ref = model.predict_arrays(row, check_input=check_input)
        same_predictions(fast, ref)
        assert fast.conditioned_on.tolist() == [";".join(measured)]


def test_the_stages_share_one_evaluation_of_the_physics_per_batch(lab, monkeypatch) -> None:
    from poreml.surrogates import gp

    model, test = lab
    calls: list[int] = []

    def counting(inputs, params, **kwargs):
        calls.append(len(inputs["route"]))
        return simulate(inputs, params, **kwargs)

    simulate = gp.simulate
    monkeypatch.setattr(gp, "simulate", counting)
    model.predict_arrays(_with(test, *CHARACTERISATION))  # measured rows: latent moments too
    assert calls == [len(test)]


def test_stages_with_different_physics_each_evaluate_their_own(
    monkeypatch, same_predictions
) -> None:
    from poreml.surrogates import gp
    from poreml.surrogates.gp import reference_predictions

    train = virtual_lab_data(24, seed=3)
    model = make(
        "cascade",
        stage1_params={"fit_maxiter": 10},
        stage2_params={"fit_maxiter": 10, "instance_seed": 1},
    ).fit(train[list(DESIGN_COLUMNS)], train[list(TARGETS)])
    X = _with(virtual_lab_data(5, seed=4), "ssa_m2_g")
    calls: list[object] = []

    def counting(inputs, params, **kwargs):
        calls.append(params)
        return simulate(inputs, params, **kwargs)

    simulate = gp.simulate
    monkeypatch.setattr(gp, "simulate", counting)
    fast = model.predict_arrays(X)
    assert len(calls) == 2 and calls[0] is not calls[1]
    with reference_predictions():
        same_predictions(fast, model.predict_arrays(X))


def test_the_botorch_moments_are_the_served_design_only_moments(lab) -> None:
    from poreml.surrogates.gp import reference_predictions

    model, test = lab
    X = _with(test.head(6))
    features = model.features_from_tensors(model._raw_inputs(X, source="X"))
    with torch.no_grad():
        mu, sd = model._predict_moments(features, observation_noise=False)
        with reference_predictions():
            want_mu, want_sd = model._predict_moments(features, observation_noise=False)
    np.testing.assert_allclose(mu.numpy(), want_mu.numpy(), rtol=1e-9)
    np.testing.assert_allclose(sd.numpy(), want_sd.numpy(), rtol=1e-9)


def test_predict_table_is_predict_arrays_as_a_frame(lab) -> None:
    model, test = lab
    X = _with(test.head(6), *CHARACTERISATION)
    table = model.predict_table(X)
    arrays = model.predict_arrays(X)
    for j, target in enumerate(arrays.targets):
        np.testing.assert_array_equal(table[f"{target}_lower"].to_numpy(), arrays.lower[:, j])
    np.testing.assert_array_equal(table["domain_distance"].to_numpy(), arrays.domain_distance)
    assert table["in_domain"].tolist() == arrays.in_domain.tolist()


def test_stages_without_leave_one_out_residuals_link_through_in_sample_ones(lab) -> None:
    _, test = lab
    train = virtual_lab_data(40, seed=0)
    model = make("cascade", stage1="trees", stage2="ridge", random_state=0).fit(
        train[list(DESIGN_COLUMNS)], train[list(TARGETS)]
    )
    assert model.link_rows_ == [40] * len(PERFORMANCE)
    measured = model.predict(_with(test, *CHARACTERISATION))["ice_pct"].to_numpy()
    design_only = model.predict(_with(test))["ice_pct"].to_numpy()
    assert np.isfinite(measured).all()
    assert not np.allclose(measured, design_only)


def test_a_characterised_rows_moments_follow_the_link_formula(lab) -> None:
    model, test = lab
    X = _with(test.head(2), *CHARACTERISATION)
    X.loc[1, "tap_density_g_cm3"] = np.nan  # row 1 carries BET area only
    s1, s2 = model.stage1_, model.stage2_
    raw = model._input_arrays(X, check_input=True)
    features = model.encoder_.transform_arrays(raw)
    mu, sd = model._raw_moments(raw, features, True)
    mu1, _ = s1._raw_moments(raw, features, True)
    _, lat1 = s1._raw_moments(raw, features, False)
    mu2, sd2 = s2._raw_moments(raw, features, True)
    _, lat2 = s2._raw_moments(raw, features, False)
    idx = [s1.targets_.index(c) for c in CHARACTERISATION]
    given = torch.tensor(np.nan_to_num(X[list(CHARACTERISATION)].to_numpy(), nan=1.0))
    residual = s1.target_scaler_.transform(given, idx).numpy() - mu1[:, idx]
    for row, cols in ((0, [0, 1]), (1, [1])):
        for j, target in enumerate(s2.targets_):
            cov = np.array(model.link_[j])
            w = np.linalg.solve(cov[np.ix_(cols, cols)] + 1e-9 * np.eye(len(cols)), cov[-1, cols])
            explained = min(max(float(w @ cov[-1, cols]) / cov[-1, -1], 0.0), 1.0)
            mean = mu2[row, j] + residual[row, cols] @ w
            noise = sd2[row, j] ** 2 - lat2[row, j] ** 2
            var = lat2[row, j] ** 2 + np.sum((lat1[row, idx][cols] * w) ** 2)
            var += noise * (1.0 - explained)
            k = model.targets_.index(target)
            a, b = s2.target_scaler_.center[j], s2.target_scaler_.scale[j]
            c, scale = model.target_scaler_.center[k], model.target_scaler_.scale[k]
            assert mu[row, k] == pytest.approx((mean * b + a - c) / scale, rel=1e-12)
            assert sd[row, k] == pytest.approx(np.sqrt(var) * b / scale, rel=1e-12)
