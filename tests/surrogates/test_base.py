"""The shared base class: estimator contract of every registered model, encoding, missing
inputs, target handling, domain of applicability, validation and persistence."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

from poreml.data.schema import DESIGN_COLUMNS, DESIGN_DEFAULTS, ROUTES
from poreml.exceptions import ConfigError, DataValidationError, ModelNotFittedError
from poreml.surrogates import TARGETS, Surrogate, available, load, make
from poreml.surrogates.evaluation import virtual_lab_data

MODELS = ["cascade", "ensemble", "gp", "mean", "ridge", "trees"]


def test_every_registered_model_is_covered_by_the_contract_tests() -> None:
    assert available() == MODELS


# ---- estimator contract (every registered model) -------------------------------------------


@pytest.fixture(scope="module", params=MODELS)
def fitted(request, fast, train_data) -> Surrogate:
    X, y = train_data
    return make(request.param, **fast[request.param]).fit(X, y)


@pytest.mark.parametrize("name", MODELS)
def test_fit_returns_self(name, fast, train_data) -> None:
    X, y = train_data
    model = make(name, **fast[name])
    assert model.fit(X, y) is model


@pytest.mark.parametrize("name", MODELS)
def test_using_an_unfitted_model_raises_model_not_fitted(name, test_designs, tmp_path) -> None:
    model = make(name)
    with pytest.raises(ModelNotFittedError, match="fit"):
        model.predict(test_designs)
    with pytest.raises(ModelNotFittedError):
        model.predict_interval(test_designs)
    with pytest.raises(ModelNotFittedError):
        model.in_domain(test_designs)
    with pytest.raises(ModelNotFittedError):
        model.save(tmp_path / "m")


def test_predict_returns_one_column_per_target_with_the_input_index(fitted, test_designs) -> None:
    mean, std = fitted.predict(test_designs, return_std=True)
    for frame in (mean, std):
        assert list(frame.columns) == list(TARGETS)
        assert frame.index.equals(test_designs.index)
        assert np.isfinite(frame.to_numpy()).all()
    assert fitted.predict(test_designs).equals(mean)


def test_std_is_positive_and_measurement_std_is_at_least_latent_std(fitted, test_designs) -> None:
    _, std = fitted.predict(test_designs, return_std=True)
    _, latent = fitted.predict(test_designs, return_std=True, observation_noise=False)
    assert (std.to_numpy() > 0).all()
    assert (latent.to_numpy() >= 0).all()
    assert (std.to_numpy() >= latent.to_numpy() * (1 - 1e-9)).all()


def test_predict_interval_brackets_the_mean(fitted, test_designs) -> None:
    intervals = fitted.predict_interval(test_designs, level=0.9)
    assert list(intervals) == list(TARGETS)
    for frame in intervals.values():
        assert list(frame.columns) == ["mean", "std", "lower", "upper"]
        assert frame.index.equals(test_designs.index)
        assert (frame["lower"] < frame["upper"]).all()
    ice = intervals["ice_pct"]
    assert ((ice["lower"] <= ice["mean"]) & (ice["mean"] <= ice["upper"])).all()
    narrow = fitted.predict_interval(test_designs, level=0.5)["ice_pct"]
    assert (narrow["upper"] - narrow["lower"] < ice["upper"] - ice["lower"]).all()


@pytest.mark.parametrize("name", MODELS)
def test_fitting_twice_with_the_same_seed_gives_identical_predictions(
    name, fast, train_data, test_designs
) -> None:
    X, y = train_data
    first = make(name, random_state=3, **fast[name]).fit(X, y)
    second = make(name, random_state=3, **fast[name]).fit(X, y)
    a_mean, a_std = first.predict(test_designs, return_std=True)
    b_mean, b_std = second.predict(test_designs, return_std=True)
    pd.testing.assert_frame_equal(a_mean, b_mean)
    pd.testing.assert_frame_equal(a_std, b_std)


def test_save_and_load_round_trip_gives_identical_predictions(
    fitted, test_designs, tmp_path: Path
) -> None:
    folder = fitted.save(tmp_path / "model")
    assert (folder / "config.json").is_file()
    restored = load(folder)
    assert type(restored) is type(fitted)
    assert restored.get_params() == fitted.get_params()
    assert restored.targets_ == fitted.targets_
    assert restored.feature_names_out_ == fitted.feature_names_out_
    for obs in (True, False):
        a = fitted.predict(test_designs, return_std=True, observation_noise=obs)
        b = restored.predict(test_designs, return_std=True, observation_noise=obs)
        pd.testing.assert_frame_equal(a[0], b[0])
        pd.testing.assert_frame_equal(a[1], b[1])
    np.testing.assert_array_equal(fitted.in_domain(test_designs), restored.in_domain(test_designs))
    assert type(fitted).load(folder).get_params() == fitted.get_params()


def test_loading_with_the_wrong_model_class_is_refused(fitted, tmp_path: Path) -> None:
    folder = fitted.save(tmp_path / "model")
    other = make("mean" if fitted.name != "mean" else "ridge")
    with pytest.raises(ConfigError, match=r"load it with poreml\.surrogates\.load"):
        type(other).load(folder)


def test_loading_a_folder_without_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no config\.json"):
        load(tmp_path)


@pytest.mark.parametrize("name", MODELS)
def test_get_params_and_set_params_follow_scikit_learn(name) -> None:
    model = make(name)
    params = model.get_params()
    assert {"feature_set", "targets", "random_state", "missing_indicators"} <= set(params)
    assert model.set_params(random_state=7) is model
    assert model.get_params()["random_state"] == 7
    twin = clone(model)
    assert twin is not model and twin.get_params() == model.get_params()


def test_fitted_attributes_end_in_an_underscore(fitted, train_data) -> None:
    X, _ = train_data
    assert fitted.n_train_ == len(X)
    assert fitted.targets_ == TARGETS
    assert fitted.n_observed_ == dict.fromkeys(TARGETS, len(X))
    assert not hasattr(make(fitted.name), "targets_")


# ---- feature encoding -----------------------------------------------------------------------


def test_encoding_logs_log_scale_columns_one_hot_encodes_route_and_standardises(
    train_data,
) -> None:
    X, y = train_data
    model = make("mean").fit(X, y)
    names = model.feature_names_out_
    assert "log10:pore_size_nm" in names and "log10:si_domain_nm" in names
    assert [n for n in names if n.startswith("route=")] == [f"route={r}" for r in ROUTES]
    z = model.encode(X)
    np.testing.assert_allclose(z.mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(), 1.0, atol=1e-12)
    raw = np.log10(X["pore_size_nm"])
    col = z["log10:pore_size_nm"]
    np.testing.assert_allclose(col, (raw - raw.mean()) / raw.std(), atol=1e-12)


def test_tensor_encoding_matches_the_dataframe_encoding(train_data, test_designs) -> None:
    X, y = train_data
    model = make("mean").fit(X, y)
    inputs: dict[str, torch.Tensor] = {
        name: torch.tensor(test_designs[name].to_numpy(dtype=float))
        for name in test_designs.columns
        if name != "route"
    }
    inputs["route"] = torch.tensor([ROUTES.index(r) for r in test_designs["route"]])
    z = model.features_from_tensors(inputs).z.numpy()
    np.testing.assert_allclose(z, model.encode(test_designs).to_numpy(), rtol=1e-12)


def test_descriptor_features_use_tap_density_and_ssa_as_inputs(train_data) -> None:
    X, y = train_data
    X = X.assign(tap_density_g_cm3=y["tap_density_g_cm3"], ssa_m2_g=y["ssa_m2_g"])
    model = make("ridge", feature_set="descriptors").fit(X, y)
    assert "tap_density_g_cm3" not in model.targets_ and "ssa_m2_g" not in model.targets_
    assert {"tap_density_g_cm3", "log10:ssa_m2_g"} <= set(model.feature_names_out_)
    assert list(model.predict(X).columns) == list(model.targets_)


def test_a_log_scale_target_gets_positive_log_normal_intervals(train_data, test_designs) -> None:
    X, y = train_data
    model = make("ridge").fit(X, y)
    assert model.target_scaler_.transforms[TARGETS.index("ssa_m2_g")] == "log"
    ssa = model.predict_interval(test_designs)["ssa_m2_g"]
    assert (ssa["lower"] > 0).all()
    # log-normal: the mean lies above the median, i.e. above the interval's midpoint in logs
    assert (ssa["mean"] > np.sqrt(ssa["lower"] * ssa["upper"])).all()


# ---- missing inputs and missing targets -----------------------------------------------------


def _with_missing(X: pd.DataFrame, column: str, every: int) -> pd.DataFrame:
    X = X.copy()
    X[column] = X[column].astype(object)
    X.loc[X.index[::every], column] = None
    return X


def test_rows_with_missing_design_cells_are_used_with_default_and_indicator(train_data) -> None:
    X, y = train_data
    X = _with_missing(X, "porosity", every=3)
    model = make("ridge").fit(X, y)
    assert model.n_train_ == len(X)
    assert model.n_observed_["ice_pct"] == len(X)
    assert "missing:porosity" in model.feature_names_out_
    assert "missing:shell_nm" not in model.feature_names_out_  # never missing in training
    features = model.encoder_.transform(model._raw_inputs(X, source="X"))
    missing = features.missing["porosity"].numpy()
    assert missing.sum() == len(X[::3])
    np.testing.assert_allclose(
        features.design["porosity"].numpy()[missing], DESIGN_DEFAULTS["porosity"]
    )
    z = model.encode(X)["missing:porosity"].to_numpy()
    assert (z[missing] > 0).all() and (z[~missing] < 0).all()


def test_the_missing_indicator_lets_a_model_learn_what_not_reported_means(train_data) -> None:
    X, _ = train_data
    X = _with_missing(X, "shell_nm", every=2)
    not_reported = X["shell_nm"].isna().to_numpy()
    y = pd.DataFrame({"ice_pct": np.where(not_reported, 70.0, 85.0)})
    model = make("ridge", targets=["ice_pct"]).fit(X, y)
    pred = model.predict(X)["ice_pct"].to_numpy()
    np.testing.assert_allclose(pred[not_reported], 70.0, atol=0.5)
    np.testing.assert_allclose(pred[~not_reported], 85.0, atol=0.5)
    without = make("ridge", targets=["ice_pct"], missing_indicators="none").fit(X, y)
    assert not any(n.startswith("missing:") for n in without.feature_names_out_)
    error_with = np.abs(pred - y["ice_pct"]).mean()
    error_without = np.abs(without.predict(X)["ice_pct"] - y["ice_pct"]).mean()
    assert error_without > 2.0 > 10 * error_with


def test_missing_indicators_all_gives_a_fixed_layout(train_data) -> None:
    X, y = train_data
    model = make("mean", missing_indicators="all").fit(X, y)
    indicators = [n for n in model.feature_names_out_ if n.startswith("missing:")]
    assert len(indicators) == len(model.feature_columns_)


def test_design_columns_left_out_at_predict_time_are_imputed(train_data) -> None:
    X, y = train_data
    model = make("ridge").fit(X, y)
    partial = X.drop(columns=["graphitic_fraction", "d50_um"])
    full = X.assign(
        graphitic_fraction=DESIGN_DEFAULTS["graphitic_fraction"], d50_um=DESIGN_DEFAULTS["d50_um"]
    )
    pd.testing.assert_frame_equal(model.predict(partial), model.predict(full))


def test_rows_with_a_missing_target_are_excluded_for_that_target_only(train_data) -> None:
    X, y = train_data
    y = y.copy()
    y.loc[y.index[:10], "ice_pct"] = np.nan
    y.loc[y.index[5:8], "ssa_m2_g"] = np.nan
    model = make("mean").fit(X, y)
    assert model.n_observed_["ice_pct"] == len(y) - 10
    assert model.n_observed_["ssa_m2_g"] == len(y) - 3
    assert model.n_observed_["retention_pct"] == len(y)
    pred = model.predict(X.iloc[:1])
    assert pred["ice_pct"].iloc[0] == pytest.approx(y["ice_pct"].mean())  # NaN rows skipped
    assert pred["retention_pct"].iloc[0] == pytest.approx(y["retention_pct"].mean())


def test_a_target_with_fewer_than_two_measured_rows_is_refused(train_data) -> None:
    X, y = train_data
    y = y.assign(ice_pct=np.nan)
    y.loc[y.index[0], "ice_pct"] = 80.0
    with pytest.raises(DataValidationError, match="ice_pct"):
        make("mean").fit(X, y)


def test_a_requested_target_absent_from_y_is_refused(train_data) -> None:
    X, y = train_data
    with pytest.raises(ConfigError, match="ice_pct"):
        make("mean").fit(X, y.drop(columns=["ice_pct"]))
    model = make("mean", targets=["retention_pct"]).fit(X, y.drop(columns=["ice_pct"]))
    assert model.targets_ == ("retention_pct",)


# ---- validation -----------------------------------------------------------------------------


def test_bad_input_cells_are_all_reported(train_data) -> None:
    X, y = train_data
    bad = X.copy()
    bad["route"] = bad["route"].astype(object)
    bad.loc[0, "route"] = "sideways"
    bad.loc[1, "porosity"] = 1.5
    with pytest.raises(DataValidationError) as err:
        make("mean").fit(bad, y)
    assert {(p.row, p.column) for p in err.value.problems} == {(1, "route"), (2, "porosity")}


def test_an_unknown_column_is_reported_with_a_suggestion(train_data) -> None:
    X, y = train_data
    with pytest.raises(DataValidationError, match="did you mean 'porosity'"):
        make("mean").fit(X.rename(columns={"porosity": "porosityy"}), y)


def test_non_numeric_target_cells_are_reported(train_data) -> None:
    X, y = train_data
    y = y.astype(object)
    y.loc[3, "ice_pct"] = "eighty"
    with pytest.raises(DataValidationError, match="row 4, column 'ice_pct'"):
        make("mean").fit(X, y)


def test_row_count_mismatch_is_refused(train_data) -> None:
    X, y = train_data
    with pytest.raises(DataValidationError, match="one per row of X"):
        make("mean").fit(X, y.iloc[:-1])


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("feature_set", "everything"),
        ("targets", ["colour"]),
        ("missing_indicators", "some"),
        ("target_transforms", {"ice_pct": "sqrt"}),
        ("domain_margin", -1.0),
    ],
)
def test_invalid_settings_raise_config_error_naming_the_setting(setting, value, train_data) -> None:
    X, y = train_data
    with pytest.raises(ConfigError, match=setting):
        make("mean", **{setting: value}).fit(X, y)


def test_predict_interval_level_must_lie_in_zero_one(train_data) -> None:
    X, y = train_data
    with pytest.raises(ConfigError, match="level"):
        make("mean").fit(X, y).predict_interval(X, level=1.5)


# ---- domain of applicability ----------------------------------------------------------------


def test_in_domain_checks_training_ranges_with_a_margin_and_seen_routes(train_data) -> None:
    X, y = train_data
    top_down = X["route"] != "top_down"
    model = make("mean").fit(X[top_down].reset_index(drop=True), y[top_down].reset_index(drop=True))
    inside = X[top_down].iloc[:3].reset_index(drop=True)
    assert model.in_domain(inside).all()
    lo, hi = X.loc[top_down, "porosity"].min(), X.loc[top_down, "porosity"].max()
    just_outside = inside.assign(porosity=hi + 0.02 * (hi - lo))
    assert model.in_domain(just_outside).all()  # within the 5 % margin
    far = inside.assign(porosity=min(0.9, hi + 0.5 * (hi - lo)))
    assert not model.in_domain(far).any()
    unseen_route = inside.assign(route="top_down")
    assert not model.in_domain(unseen_route).any()
    log_far = inside.assign(pore_size_nm=X["pore_size_nm"].max() * 100)
    assert not model.in_domain(log_far).any()


def test_in_domain_accepts_missing_cells_of_columns_missing_in_training(train_data) -> None:
    X, y = train_data
    model = make("mean").fit(_with_missing(X, "d50_um", every=4), y)
    probe = _with_missing(X.iloc[:4].reset_index(drop=True), "d50_um", every=1)
    assert model.in_domain(probe).all()
    never_missing = _with_missing(X.iloc[:4].reset_index(drop=True), "shell_nm", every=1)
    default_inside = X["shell_nm"].min() <= DESIGN_DEFAULTS["shell_nm"] <= X["shell_nm"].max()
    assert model.in_domain(never_missing).all() == default_inside


def test_in_domain_is_false_for_values_of_a_column_never_observed(train_data) -> None:
    X, y = train_data
    model = make("mean").fit(X.drop(columns=["graphitic_fraction"]), y)
    assert "missing:graphitic_fraction" not in model.feature_names_out_  # constant: no indicator
    assert model.in_domain(X.drop(columns=["graphitic_fraction"]).iloc[:2]).all()
    assert not model.in_domain(X.iloc[:2].assign(graphitic_fraction=0.5)).any()
    assert math.isnan(model.domain_.low["graphitic_fraction"])


def test_prediction_table_has_every_target_with_intervals() -> None:
    data = virtual_lab_data(32, seed=1)
    model = make("ridge").fit(data[list(DESIGN_COLUMNS)], data[list(TARGETS)])
    table = model.predict_table(data[["candidate_id", *DESIGN_COLUMNS]].head(5))
    assert table.columns[0] == "candidate_id"
    for t in TARGETS:
        assert (table[f"{t}_lower"] <= table[f"{t}_upper"]).all()
        assert (table[f"{t}_std"] > 0).all()
    assert table["in_domain"].dtype == bool


@pytest.mark.parametrize("name", ["ridge", "cascade"])
def test_a_frame_validated_upstream_is_read_as_the_checks_read_it(name, fast) -> None:
    data = virtual_lab_data(32, seed=2)
    model = make(name, **fast[name]).fit(data[list(DESIGN_COLUMNS)], data[list(TARGETS)])
    X = virtual_lab_data(9, seed=3)[["candidate_id", *DESIGN_COLUMNS, "ssa_m2_g"]]
    X.loc[[1, 4], "porosity"] = np.nan
    X.loc[2, "route"] = None
    X.loc[[0, 5], "ssa_m2_g"] = np.nan
    checked = model._input_arrays(X, check_input=True)
    unchecked = model._input_arrays(X, check_input=False)
    assert checked.keys() == unchecked.keys()
    for column, values in checked.items():
        assert unchecked[column].dtype == np.float64
        np.testing.assert_array_equal(unchecked[column], values, err_msg=column)
    table = model.predict_table(X)
    fast = model.predict_arrays(X, check_input=False)
    np.testing.assert_array_equal(table["ice_pct_mean"].to_numpy(), fast.mean[:, 0])
    assert table["conditioned_on"].tolist() == fast.conditioned_on.tolist()
