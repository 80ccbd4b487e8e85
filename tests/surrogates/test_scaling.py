"""Target warps: exact back-transformed quantiles and moments, the boundary rule, and intervals
that stay inside the physical range of every target."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import integrate, special, stats

from poreml.data.schema import COLUMNS, CONTINUOUS_DESIGN_COLUMNS, ROUTES
from poreml.exceptions import DataValidationError
from poreml.surrogates import TARGETS, make
from poreml.surrogates.scaling import (
    DEFAULT_TARGET_TRANSFORMS,
    LOG_FLOOR,
    LOGIT_EPS_PCT,
    TARGET_TRANSFORMS,
    TargetScaler,
)

MU = torch.tensor([-3.0, -0.5, 0.0, 1.2, 4.0], dtype=torch.float64)
SD = torch.tensor([0.05, 0.4, 1.0, 2.5, 5.0], dtype=torch.float64)


def _scaler(transform: str) -> TargetScaler:
    # centre 0, scale 1: model space equals warped space, so scipy's parameters are MU and SD
    return TargetScaler(("t",), (transform,), (0.0,), (1.0,))


def _quad_moments(inverse, mu: float, sd: float) -> tuple[float, float]:
    pdf = stats.norm(mu, sd).pdf
    lo, hi = mu - 12 * sd, mu + 12 * sd
    mean = integrate.quad(lambda t: inverse(t) * pdf(t), lo, hi, epsabs=0, epsrel=1e-12)[0]
    var = integrate.quad(
        lambda t: (inverse(t) - mean) ** 2 * pdf(t), lo, hi, epsabs=0, epsrel=1e-12
    )[0]
    return mean, math.sqrt(var)


@pytest.mark.parametrize("level", [0.5, 0.9, 0.99])
def test_logit_pct_bounds_are_exact_logit_normal_quantiles(level) -> None:
    scaler = _scaler("logit_pct")
    z = stats.norm.ppf(0.5 + level / 2)
    upper = scaler.inverse((MU + z * SD)[:, None])[:, 0].numpy()
    lower = scaler.inverse((MU - z * SD)[:, None])[:, 0].numpy()
    q_hi = 100 * special.expit(stats.norm.ppf(0.5 + level / 2, MU.numpy(), SD.numpy()))
    q_lo = 100 * special.expit(stats.norm.ppf(0.5 - level / 2, MU.numpy(), SD.numpy()))
    np.testing.assert_allclose(upper, q_hi, rtol=1e-12)
    np.testing.assert_allclose(lower, q_lo, rtol=1e-12)


def test_log_bounds_and_moments_are_scipys_log_normal() -> None:
    scaler = _scaler("log")
    mean, std = scaler.moments(MU.numpy()[:, None], SD.numpy()[:, None])
    dist = stats.lognorm(s=SD.numpy(), scale=np.exp(MU.numpy()))
    np.testing.assert_allclose(mean[:, 0], dist.mean(), rtol=1e-12)
    np.testing.assert_allclose(std[:, 0], dist.std(), rtol=1e-10)
    upper = scaler.inverse((MU + 1.6448536269514722 * SD)[:, None])[:, 0].numpy()
    np.testing.assert_allclose(upper, dist.ppf(0.95), rtol=1e-10)


@pytest.mark.parametrize(
    ("name", "inverse"),
    [
        ("logit_pct", lambda t: 100 * special.expit(t)),
        ("softplus", lambda t: np.logaddexp(0.0, t)),
    ],
)
def test_quadrature_moments_match_adaptive_integration(name, inverse) -> None:
    mean, std = _scaler(name).moments(MU.numpy()[:, None], SD.numpy()[:, None])
    for k in range(len(MU)):
        want_mean, want_std = _quad_moments(inverse, float(MU[k]), float(SD[k]))
        assert float(mean[k, 0]) == pytest.approx(want_mean, rel=1e-5)
        assert float(std[k, 0]) == pytest.approx(want_std, rel=1e-5)


def test_moments_are_vectorised_over_any_batch_shape() -> None:
    scaler = TargetScaler(("a", "b"), ("logit_pct", "softplus"), (0.5, 1.0), (2.0, 3.0))
    mu = np.random.default_rng(0).standard_normal((4, 3, 2))
    sd = np.full_like(mu, 0.7)
    mean, std = scaler.moments(mu, sd)
    assert mean.shape == std.shape == mu.shape
    flat_mean, _ = scaler.moments(mu.reshape(-1, 2), sd.reshape(-1, 2))
    np.testing.assert_allclose(mean.reshape(-1, 2), flat_mean, rtol=1e-15)


# ---- the numpy twins of the serving path --------------------------------------------------

# standardised values across each warp's range and beyond: the softplus threshold (20) on
# both sides, exp overflow (|t| > 709), and values at and beyond the warps' boundaries
_T = np.array([-800.0, -40.0, -5.0, -0.3, 0.0, 1e-9, 0.7, 19.999999, 20.0, 20.000001, 35.0, 800.0])
_Y = np.array([-5.4, 0.0, 0.004, 0.01, 0.5, 3.0, 20.0, 55.0, 99.95, 100.0, 1200.0])
_MU = np.repeat([-30.0, -3.0, -0.5, 0.0, 1.2, 4.0, 19.5, 30.0], 6)
_SD = np.tile([1e-6, 0.05, 0.4, 1.0, 2.5, 5.0], 8)


@pytest.mark.parametrize("name", list(TARGET_TRANSFORMS))
def test_each_warps_numpy_twin_gives_the_tensor_versions_numbers(name) -> None:
    warp = TARGET_TRANSFORMS[name]
    y = np.clip(_Y, *warp.support)
    np.testing.assert_allclose(
        warp.forward_array(y), warp.forward(torch.from_numpy(y)).numpy(), rtol=1e-13, atol=0
    )
    np.testing.assert_allclose(
        warp.inverse_array(_T), warp.inverse(torch.from_numpy(_T)).numpy(), rtol=1e-13, atol=0
    )
    var = _SD**2
    mean, variance = warp.moments_array(_MU, var)
    want_mean, want_var = warp.moments(torch.from_numpy(_MU), torch.from_numpy(var))
    np.testing.assert_allclose(mean, want_mean.numpy(), rtol=1e-12, atol=0)
    # a spread below the rounding of the values themselves (a percentage 1e-8 from 100 known
    # to 1e-7 of it) is known to that rounding only: 1e-12 of the mean
    np.testing.assert_array_less(
        np.abs(np.sqrt(variance) - np.sqrt(want_var.numpy())),
        1e-9 * np.sqrt(want_var.numpy()) + 1e-12 * np.abs(mean),
    )


def test_the_scalers_numpy_methods_give_the_tensor_methods_numbers() -> None:
    targets = ("ice_pct", "expansion_pct", "ssa_m2_g", "tap_density_g_cm3", "retention_pct")
    warps = ("logit_pct", "softplus", "log", "none", "logit_pct")
    scaler = TargetScaler(targets, warps, (0.5, 1.0, -0.2, 0.8, 2.0), (2.0, 3.0, 1.5, 0.3, 0.7))
    rng = np.random.default_rng(1)
    y = np.column_stack([rng.uniform(0.0, 100.0, 40), rng.uniform(0.0, 200.0, (40, 4))])
    z = rng.standard_normal((40, 5)) * 3.0
    sd = rng.uniform(0.01, 3.0, (40, 5))
    for idx in (None, [4, 1], [2]):
        cols = list(range(5)) if idx is None else idx
        np.testing.assert_allclose(
            scaler.transform_array(y[:, cols], idx),
            scaler.transform(torch.from_numpy(y[:, cols]), idx).numpy(),
            rtol=1e-13,
        )
        np.testing.assert_allclose(
            scaler.inverse_array(z[:, cols], idx),
            scaler.inverse(torch.from_numpy(z[:, cols]), idx).numpy(),
            rtol=1e-13,
        )
        center, scale = scaler.affine_array(idx)
        want_center, want_scale = scaler.affine(idx, torch.zeros(1, dtype=torch.float64))
        np.testing.assert_array_equal(center, want_center.numpy())
        np.testing.assert_array_equal(scale, want_scale.numpy())
        mean, std = scaler.moments(z[:, cols], sd[:, cols], idx)
        for k, i in enumerate(cols):  # each target through its warp's tensor moments
            t_mu = torch.from_numpy(z[:, i] * scaler.scale[i] + scaler.center[i])
            t_var = torch.from_numpy((sd[:, i] * scaler.scale[i]) ** 2)
            want_mean, want_var = TARGET_TRANSFORMS[warps[i]].moments(t_mu, t_var)
            np.testing.assert_allclose(mean[:, k], want_mean.numpy(), rtol=1e-12)
            np.testing.assert_allclose(std[:, k], want_var.sqrt().numpy(), rtol=1e-10)


def test_boundary_values_are_squeezed_by_the_stated_rule_not_dropped() -> None:
    y = torch.tensor([[100.0, 0.0], [0.0, 0.005], [55.0, 20.0], [99.99, 3.0]], dtype=torch.float64)
    scaler = TargetScaler.fit(y, ["ice_pct", "expansion_pct"], ["logit_pct", "softplus"])
    back = scaler.inverse(scaler.transform(y))
    np.testing.assert_allclose(
        back[:, 0].numpy(), [100 - LOGIT_EPS_PCT, LOGIT_EPS_PCT, 55.0, 100 - LOGIT_EPS_PCT]
    )
    np.testing.assert_allclose(back[:, 1].numpy(), [LOG_FLOOR, LOG_FLOOR, 20.0, 3.0])
    assert torch.isfinite(scaler.transform(y)).all()


@pytest.mark.parametrize("transform", ["log", "softplus"])
def test_negative_readings_of_a_positive_target_are_kept_at_the_floor(transform) -> None:
    y = torch.tensor([[1200.0], [-5.4], [0.0], [3.0]], dtype=torch.float64)
    scaler = TargetScaler.fit(y, ["specific_capacity_mah_g"], [transform])
    back = scaler.inverse(scaler.transform(y))[:, 0].numpy()
    np.testing.assert_allclose(back, [1200.0, LOG_FLOOR, LOG_FLOOR, 3.0], rtol=1e-9)


@pytest.mark.parametrize(("transform", "bad"), [("logit_pct", 100.5), ("logit_pct", -1.0)])
def test_values_outside_a_warps_support_are_reported_by_row_and_column(transform, bad) -> None:
    y = torch.tensor([[50.0], [bad], [60.0]], dtype=torch.float64)
    with pytest.raises(DataValidationError) as err:
        TargetScaler.fit(y, ["retention_pct"], [transform])
    text = str(err.value)
    assert "retention_pct" in text and str(bad) in text and "2" in text


def test_defaults_warp_every_bounded_target_by_its_physics() -> None:
    assert DEFAULT_TARGET_TRANSFORMS["ice_pct"] == DEFAULT_TARGET_TRANSFORMS["retention_pct"]
    assert DEFAULT_TARGET_TRANSFORMS["ice_pct"] == "logit_pct"
    for t in ("tap_density_g_cm3", "ssa_m2_g"):
        assert DEFAULT_TARGET_TRANSFORMS[t] == "log"
    for t in ("expansion_pct", "specific_capacity_mah_g"):
        assert DEFAULT_TARGET_TRANSFORMS[t] == "softplus"
    assert set(DEFAULT_TARGET_TRANSFORMS.values()) <= set(TARGET_TRANSFORMS)


def _extreme_designs() -> pd.DataFrame:
    """Every corner of the contract box for three columns at once, per route, plus the rest at
    their bounds: far outside any training data."""
    rows = []
    for route in ROUTES:
        for k in range(8):
            row: dict[str, object] = {"route": route}
            for j, name in enumerate(CONTINUOUS_DESIGN_COLUMNS):
                lo, hi = COLUMNS[name].bounds
                row[name] = hi if (k >> (j % 3)) & 1 else lo
            rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("name", ["gp", "ensemble", "trees", "ridge"])
def test_intervals_stay_inside_the_physical_range_on_extreme_designs(
    name, fast, train_data
) -> None:
    X, y = train_data
    model = make(name, **fast[name]).fit(X, y)
    table = model.predict_table(_extreme_designs())
    assert not table["in_domain"].all()
    for t in TARGETS:
        lower, upper = table[f"{t}_lower"], table[f"{t}_upper"]
        mean, std = table[f"{t}_mean"], table[f"{t}_std"]
        assert (
            np.isfinite(table[[f"{t}_{s}" for s in ("mean", "std", "lower", "upper")]]).all().all()
        )
        if TARGET_TRANSFORMS[DEFAULT_TARGET_TRANSFORMS[t]] is TARGET_TRANSFORMS["log"]:
            # log-normal: the interval is exp(mu ± z s); its mean exp(mu + s²/2) passes the upper
            # bound only when s > 2 z (heavy tail), which is then what it must be
            z = stats.norm.ppf(0.95)
            mu, s = np.log(np.sqrt(lower * upper)), np.log(upper / lower) / (2 * z)
            np.testing.assert_allclose(mean, np.exp(mu + s**2 / 2), rtol=1e-8)
            assert (mean[s < 2 * z] <= upper[s < 2 * z]).all(), t
            assert (lower <= mean).all(), t
        else:
            assert (lower <= mean).all() and (mean <= upper).all(), t
        assert (std >= 0).all()
        if t in ("ice_pct", "retention_pct"):
            assert (lower >= 0).all() and (upper <= 100).all(), t
        else:
            assert (lower > 0).all(), t
