"""Calibration of the physics prior's constants: recovers a lab's shifted constants, leaves
the published ones where the data agree with them, round-trips with the model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from poreml.data.schema import ROUTES
from poreml.exceptions import ConfigError
from poreml.surrogates.calibration import Calibration, calibrate
from poreml.surrogates.gp import GPSurrogate, reference_predictions
from poreml.virtual_lab.lab import VirtualLab
from poreml.virtual_lab.params import lab_params

TARGETS = ["tap_density_g_cm3", "ice_pct", "retention_pct", "expansion_pct"]


def _shifted_lab() -> VirtualLab:
    """top_down packs denser and traps less Li than the published route table says."""
    base = lab_params()
    routes = replace(base.routes, eta_max=(0.64, 0.70, 0.62), f_trap0=(0.08, 0.03, 0.04))
    return VirtualLab(params=replace(base, routes=routes))


def _rmse(a: pd.Series, b: pd.Series) -> float:
    return float(np.sqrt(np.mean((a.to_numpy() - b.to_numpy()) ** 2)))


@pytest.fixture(scope="module")
def shifted_fit(lab_truth):
    """Published and calibrated GPs on 40 noise-free measurements of the shifted lab."""
    lab = _shifted_lab()
    designs, _ = lab_truth(40, seed=31)
    y = lab.evaluate(designs)[TARGETS]
    published = GPSurrogate(targets=TARGETS, random_state=0).fit(designs, y)
    calibrated = GPSurrogate(targets=TARGETS, calibrate=True, random_state=0).fit(designs, y)
    return lab, published, calibrated


def test_calibration_recovers_the_shifted_route_constants(shifted_fit) -> None:
    _, _, model = shifted_fit
    cal = model.calibration_
    assert cal is not None and cal.rows == 40
    assert cal.params.routes.eta_max[1] == pytest.approx(0.70, rel=0.02)
    assert cal.params.routes.f_trap0[1] == pytest.approx(0.03, rel=0.1)
    # what the data agree with keeps its published value
    assert cal.params.routes.eta_max[0] == pytest.approx(0.64, rel=0.01)
    assert cal.params.routes.f_trap0[0] == pytest.approx(0.08, rel=0.05)
    assert max(abs(v) for v in cal.global_shifts.values()) < 0.05
    assert cal.misfit_after < 0.05 * cal.misfit_before


def test_a_calibrated_prior_predicts_the_shifted_lab(shifted_fit, lab_truth) -> None:
    lab, published, calibrated = shifted_fit
    X_test, _ = lab_truth(400, seed=32)
    truth = lab.evaluate(X_test)
    prior_published = VirtualLab(params=published.lab_params()).evaluate(X_test)
    prior_calibrated = VirtualLab(params=calibrated.lab_params()).evaluate(X_test)
    for target in ("tap_density_g_cm3", "ice_pct"):
        err_cal = _rmse(prior_calibrated[target], truth[target])
        assert err_cal < 0.1 * _rmse(prior_published[target], truth[target]), target
    err_cal = _rmse(calibrated.predict(X_test)["ice_pct"], truth["ice_pct"])
    assert err_cal < 0.5 * _rmse(published.predict(X_test)["ice_pct"], truth["ice_pct"])


def test_calibration_on_noisy_measurements_finds_the_denser_packing(lab_truth) -> None:
    lab = _shifted_lab()
    designs, _ = lab_truth(40, seed=31)
    y = lab.measure(designs, seed=4)[TARGETS]
    model = GPSurrogate(targets=TARGETS, calibrate=True, random_state=0).fit(designs, y)
    assert model.calibration_.params.routes.eta_max[1] == pytest.approx(0.70, rel=0.05)
    X_test, _ = lab_truth(400, seed=32)
    truth = lab.evaluate(X_test)["tap_density_g_cm3"]
    prior = VirtualLab(params=model.lab_params()).evaluate(X_test)["tap_density_g_cm3"]
    published = VirtualLab().evaluate(X_test)["tap_density_g_cm3"]
    assert _rmse(prior, truth) < 0.5 * _rmse(published, truth)


@pytest.mark.parametrize("n", [8, 48])
def test_noisy_measurements_of_the_published_lab_keep_its_constants(lab_data, n) -> None:
    designs, y = lab_data(n, seed=5)
    model = GPSurrogate(targets=TARGETS, calibrate=True, random_state=0).fit(designs, y[TARGETS])
    cal = model.calibration_
    assert not cal.accepted
    assert cal.statistic < cal.threshold
    assert model.lab_params() == lab_params()
    assert cal.misfit_after == cal.misfit_before
    assert cal.summary()["routes"] == {route: {} for route in ROUTES}


def test_noisy_measurements_of_a_shifted_lab_replace_the_constants(lab_truth) -> None:
    designs, _ = lab_truth(40, seed=31)
    y = _shifted_lab().measure(designs, seed=4)[TARGETS]
    cal = GPSurrogate(targets=TARGETS, calibrate=True, random_state=0).fit(designs, y).calibration_
    assert cal.accepted and cal.statistic > cal.threshold
    assert cal.summary()["routes"]["top_down"]["eta_max"] > 1.15


def test_a_calibrated_gp_round_trips(shifted_fit, tmp_path, test_designs) -> None:
    _, _, model = shifted_fit
    loaded = GPSurrogate.load(model.save(tmp_path / "gp"))
    assert loaded.calibration_ == model.calibration_
    pd.testing.assert_frame_equal(loaded.predict(test_designs), model.predict(test_designs))


def test_calibration_record_round_trips_and_rejects_other_records(shifted_fit) -> None:
    cal = shifted_fit[2].calibration_
    assert Calibration.from_dict(cal.to_dict()) == cal
    with pytest.raises(ConfigError, match="Calibration"):
        Calibration.from_dict({"type": "LabParams"})


def test_calibration_without_measurements_is_an_error() -> None:
    with pytest.raises(ConfigError, match="measured targets"):
        calibrate(lambda p: torch.zeros(3, 1), torch.full((3, 1), float("nan")), lab_params())


def test_calibrate_setting_must_be_a_bool() -> None:
    with pytest.raises(ConfigError, match="calibrate"):
        GPSurrogate(calibrate="yes").fit(pd.DataFrame(), pd.DataFrame())


def test_the_serving_fast_path_uses_the_calibrated_constants(shifted_fit, test_designs) -> None:
    _, published, model = shifted_fit
    fast = model.predict_arrays(test_designs)
    with reference_predictions():
        reference = model.predict_arrays(test_designs)
    np.testing.assert_allclose(fast.mean, reference.mean, rtol=1e-9, atol=0)
    np.testing.assert_allclose(fast.std, reference.std, rtol=1e-9, atol=0)
    assert not np.allclose(fast.mean, published.predict_arrays(test_designs).mean)
