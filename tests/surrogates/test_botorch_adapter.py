"""The BoTorch adapter: posteriors of every model, shapes, units, and a real qLogNEHVI pass."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from botorch.acquisition.multi_objective.logei import (
    qLogNoisyExpectedHypervolumeImprovement,
)
from botorch.acquisition.multi_objective.objective import WeightedMCMultiOutputObjective
from botorch.exceptions.errors import UnsupportedError
from botorch.posteriors import GPyTorchPosterior
from botorch.posteriors.ensemble import EnsemblePosterior
from botorch.posteriors.transformed import TransformedPosterior

from poreml.data.schema import ROUTES
from poreml.exceptions import ConfigError
from poreml.surrogates import make
from poreml.surrogates.botorch_adapter import SurrogateModel
from poreml.surrogates.scaling import PLAIN_TARGET_TRANSFORMS

OUTCOMES = ["tap_density_g_cm3", "expansion_pct", "ice_pct"]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="module", params=["gp", "ensemble", "trees", "ridge", "mean"])
def fitted(request, fast, train_data):
    """Gaussian outcomes in contract units, as the campaign builds its surrogates (the warped
    outcomes of the default settings are tested on their own below)."""
    X, y = train_data
    plain = {"target_transforms": dict(PLAIN_TARGET_TRANSFORMS)}
    return make(request.param, **fast[request.param], **plain).fit(X, y)


def _designs_frame(design: dict[str, torch.Tensor]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {k: v.detach().reshape(-1).numpy() for k, v in design.items() if k != "route"}
    )
    frame.insert(0, "route", [ROUTES[int(c)] for c in design["route"].reshape(-1)])
    return frame


def test_posterior_has_batch_q_and_outcome_dimensions(fitted, decode) -> None:
    model = SurrogateModel(fitted, decode, outcomes=OUTCOMES)
    assert model.num_outputs == 3
    assert model.batch_shape == torch.Size([])
    X = torch.rand(4, 2, 9, dtype=torch.float64)
    posterior = model.posterior(X)
    assert posterior.mean.shape == (4, 2, 3)
    assert posterior.variance.shape == (4, 2, 3)
    assert posterior.rsample(torch.Size([5])).shape == (5, 4, 2, 3)
    assert model.posterior(X, output_indices=[2]).mean.shape == (4, 2, 1)
    assert model.posterior(X[0]).mean.shape == (2, 3)


def test_posterior_mean_is_in_contract_units_and_matches_predict(fitted, decode) -> None:
    model = SurrogateModel(fitted, decode, outcomes=OUTCOMES)
    X = torch.rand(6, 1, 9, dtype=torch.float64)
    posterior = model.posterior(X)
    frame = _designs_frame(decode(X))
    mean, std = fitted.predict(frame, return_std=True, observation_noise=False)
    np.testing.assert_allclose(
        posterior.mean.detach().reshape(6, 3).numpy(), mean[OUTCOMES].to_numpy(), rtol=1e-5
    )
    if not isinstance(posterior, EnsemblePosterior):  # the ensemble's variance is unbiased
        np.testing.assert_allclose(
            posterior.variance.detach().reshape(6, 3).numpy().clip(0) ** 0.5,
            std[OUTCOMES].to_numpy(),
            rtol=1e-4,
            atol=1e-8,
        )


def test_observation_noise_widens_the_posterior(fitted, decode) -> None:
    model = SurrogateModel(fitted, decode, outcomes=OUTCOMES)
    X = torch.rand(3, 2, 9, dtype=torch.float64)
    latent = model.posterior(X).variance
    noisy = model.posterior(X, observation_noise=True).variance
    assert (noisy >= latent * (1 - 1e-9)).all()
    assert (noisy > latent).any()


def test_posterior_types_and_differentiability(fitted, decode) -> None:
    model = SurrogateModel(fitted, decode, outcomes=OUTCOMES)
    posterior = model.posterior(torch.rand(2, 3, 9, dtype=torch.float64))
    expected = {
        "gp": (GPyTorchPosterior, True),
        "ensemble": (EnsemblePosterior, True),
        "trees": (GPyTorchPosterior, False),
        "ridge": (GPyTorchPosterior, False),
        "mean": (GPyTorchPosterior, False),
    }[fitted.name]
    assert isinstance(posterior, expected[0])
    assert model.differentiable is expected[1]


def test_gp_posterior_is_joint_over_the_q_points(train_data, fast, decode) -> None:
    X, y = train_data
    gp = make("gp", **fast["gp"], target_transforms=dict(PLAIN_TARGET_TRANSFORMS)).fit(X, y)
    model = SurrogateModel(gp, decode, outcomes=["ice_pct"])
    base = torch.full((1, 1, 9), 0.5, dtype=torch.float64)
    step = torch.zeros(9, dtype=torch.float64)
    step[:8] = 0.005
    close = torch.cat([base, base + step], dim=1)  # two nearby points, same route
    cov = model.posterior(close).distribution.covariance_matrix[0]
    corr = cov[0, 1] / torch.sqrt(cov[0, 0] * cov[1, 1])
    assert corr > 0.9


def test_log_scale_outcome_gives_positive_samples_with_log_normal_moments(
    train_data, fast, decode
) -> None:
    X, y = train_data
    gp = make("gp", **fast["gp"]).fit(X, y)
    model = SurrogateModel(gp, decode, outcomes=["ssa_m2_g", "ice_pct"])
    Xq = torch.rand(3, 1, 9, dtype=torch.float64)
    posterior = model.posterior(Xq)
    assert isinstance(posterior, TransformedPosterior)
    torch.manual_seed(0)
    samples = posterior.rsample(torch.Size([4000])).detach()
    assert (samples[..., 0] > 0).all()
    mean = gp.predict(_designs_frame(decode(Xq)), observation_noise=False)["ssa_m2_g"]
    np.testing.assert_allclose(posterior.mean[..., 0].detach().reshape(-1), mean, rtol=1e-5)
    np.testing.assert_allclose(samples[..., 0].mean(0).reshape(-1), mean, rtol=0.2)


@pytest.mark.parametrize("name", ["gp", "ensemble"])
def test_qlognehvi_forward_and_backward(name, train_data, fast, decode) -> None:
    X, y = train_data
    surrogate = make(name, **fast[name]).fit(X, y)
    model = SurrogateModel(surrogate, decode, outcomes=OUTCOMES)
    # maximise tap density, minimise expansion; ICE is carried along with zero weight
    objective = WeightedMCMultiOutputObjective(
        torch.tensor([1.0, -1.0], dtype=torch.float64), outcomes=[0, 1]
    )
    acq = qLogNoisyExpectedHypervolumeImprovement(
        model=model,
        ref_point=[0.3, -150.0],
        X_baseline=torch.rand(
            6, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
        ),
        objective=objective,
        prune_baseline=True,
    )
    candidates = torch.rand(5, 2, 9, dtype=torch.float64, requires_grad=True)
    value = acq(candidates)
    assert value.shape == (5,)
    assert torch.isfinite(value).all()
    value.sum().backward()
    assert candidates.grad is not None
    assert torch.isfinite(candidates.grad).all()
    assert candidates.grad[..., :8].abs().sum() > 0


def test_non_differentiable_models_still_serve_qlognehvi_values(train_data, fast, decode) -> None:
    X, y = train_data
    model = SurrogateModel(make("trees", **fast["trees"]).fit(X, y), decode, outcomes=OUTCOMES)
    objective = WeightedMCMultiOutputObjective(
        torch.tensor([1.0, -1.0], dtype=torch.float64), outcomes=[0, 1]
    )
    acq = qLogNoisyExpectedHypervolumeImprovement(
        model=model,
        ref_point=[0.3, -150.0],
        X_baseline=torch.rand(6, 9, dtype=torch.float64),
        objective=objective,
    )
    with torch.no_grad():
        value = acq(torch.rand(7, 1, 9, dtype=torch.float64))
    assert torch.isfinite(value).all()
    assert model.differentiable is False


def test_adapter_rejects_unknown_outcomes_and_incomplete_decoding(train_data, decode) -> None:
    X, y = train_data
    surrogate = make("mean").fit(X, y)
    with pytest.raises(ConfigError, match="outcomes"):
        SurrogateModel(surrogate, decode, outcomes=["colour"])
    partial = SurrogateModel(
        surrogate, lambda X: {k: v for k, v in decode(X).items() if k != "shell_nm"}
    )
    with pytest.raises(ConfigError, match="shell_nm"):
        partial.posterior(torch.rand(2, 1, 9, dtype=torch.float64))
    full = SurrogateModel(surrogate, decode)
    with pytest.raises(UnsupportedError):
        full.posterior(torch.rand(2, 1, 9, dtype=torch.float64), observation_noise=torch.ones(1))


def test_warped_outcomes_give_samples_inside_their_physical_range(train_data, fast, decode):
    X, y = train_data
    gp = make("gp", **fast["gp"]).fit(X, y)  # default warps: logit for ICE, softplus, log
    outcomes = ["ice_pct", "expansion_pct", "tap_density_g_cm3"]
    model = SurrogateModel(gp, decode, outcomes=outcomes)
    Xq = torch.rand(4, 1, 9, dtype=torch.float64)
    posterior = model.posterior(Xq)
    assert isinstance(posterior, TransformedPosterior)
    torch.manual_seed(0)
    samples = posterior.rsample(torch.Size([4000])).detach()
    assert ((samples[..., 0] > 0) & (samples[..., 0] < 100)).all()
    assert (samples[..., 1:] > 0).all()
    mean = gp.predict(_designs_frame(decode(Xq)), observation_noise=False)[outcomes]
    np.testing.assert_allclose(
        posterior.mean.detach().reshape(4, 3).numpy(), mean.to_numpy(), rtol=1e-8
    )
    np.testing.assert_allclose(samples.mean(0).reshape(4, 3).numpy(), mean.to_numpy(), rtol=0.05)
