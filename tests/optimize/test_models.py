"""The campaign model: one-hot GPs, feasibility output, outcome sources."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from poreml.design.config import CampaignConfig
from poreml.exceptions import OptimizationError
from poreml.optimize.campaign import Campaign
from poreml.optimize.models import (
    FEASIBLE_OUTPUT,
    fit_campaign_model,
    fit_native_gp,
)
from poreml.virtual_lab import VirtualLab

CONFIG = "experiments/campaign_td_vs_buffering.toml"


@pytest.fixture(scope="module")
def config() -> CampaignConfig:
    return CampaignConfig.from_toml(CONFIG)


def test_native_gp_handles_categories_and_predicts_in_units() -> None:
    gen = torch.Generator().manual_seed(0)
    X = torch.rand(12, 3, generator=gen, dtype=torch.double)
    X[:, 2] = torch.arange(12) % 3
    y = (10.0 * X[:, :1] + 5.0 * X[:, 2:3]).double()
    model = fit_native_gp(X, y, [2], [3], seed=0)
    mean = model.posterior(X.unsqueeze(-2)).mean.squeeze()
    assert torch.allclose(mean, y.squeeze(), atol=1.0)


def _observations(config: CampaignConfig, n: int = 12) -> pd.DataFrame:
    c = Campaign(dataclasses.replace(config, initial_points=100))
    c.tell(VirtualLab().measure(c.ask(n), seed=1))
    return c.observations


def test_campaign_model_has_a_feasibility_output_after_failures(config: CampaignConfig) -> None:
    obs = _observations(config)
    assert obs["feasible"].eq(False).any() and obs["feasible"].eq(True).any()
    fitted = fit_campaign_model(
        obs, config.search_space(), config.outcome_names, feasibility_prior="none"
    )
    assert fitted.outcome_names == (*config.outcome_names, FEASIBLE_OUTPUT)
    assert fitted.sources["tap_density_g_cm3"] == "surrogate:gp"
    assert fitted.sources[FEASIBLE_OUTPUT] == "feasibility-gp"
    X = config.search_space().to_tensor(obs)
    mean, std = fitted.predict(X)
    assert mean.shape == std.shape == (len(obs), len(fitted.outcome_names))
    p = mean[:, fitted.feasibility_index].numpy()
    made = obs["feasible"].to_numpy(dtype=bool)
    assert p[made].mean() > p[~made].mean()  # the feasibility model separates its labels
    assert fitted.diagnostics["tap_density_g_cm3.r2_in_sample"] > 0.5


def test_outcomes_the_surrogate_lacks_get_a_native_gp(config: CampaignConfig) -> None:
    obs = _observations(config)
    outcomes = ("tap_density_g_cm3", "strain_buffering")
    fitted = fit_campaign_model(obs, config.search_space(), outcomes)
    assert fitted.sources["strain_buffering"] == "native-gp"


def test_too_few_measurements_is_an_optimization_error(config: CampaignConfig) -> None:
    obs = _observations(config, n=4)
    obs["ice_pct"] = np.nan
    with pytest.raises(OptimizationError, match="too few"):
        fit_campaign_model(obs, config.search_space(), config.outcome_names)


def test_physics_prior_feasibility_follows_the_route_windows(config: CampaignConfig) -> None:
    space = config.search_space()
    obs = _observations(config, n=4)
    fitted = fit_campaign_model(obs, space, config.outcome_names)  # default: physics prior
    assert fitted.sources[FEASIBLE_OUTPUT] == "feasibility-gp+physics-prior"
    X = space.sample_tensor(256, seed=7)
    truth = VirtualLab().evaluate(space.from_tensor(X))["feasible"].to_numpy(dtype=bool)
    p = fitted.predict(X)[0][:, fitted.feasibility_index].numpy()
    assert (p[truth] > 0.5).mean() > 0.9
    assert (p[~truth] < 0.5).mean() > 0.9
    X.requires_grad_(True)  # the prior is continuous and differentiable
    model = fitted.model.models[-1]  # the feasibility model comes last
    model.prior(X).sum().backward()
    assert torch.isfinite(X.grad).all()


def test_physics_prior_stays_on_the_device_of_its_input(config: CampaignConfig) -> None:
    # The "meta" device stands in for CUDA on a CPU-only machine: a constant made on the CPU
    # and indexed or combined with the input's tensors fails there as it would on the GPU.
    from poreml.optimize.models import PhysicsPriorFeasibilityModel
    from poreml.virtual_lab.params import lab_params

    space = config.search_space()
    model = PhysicsPriorFeasibilityModel(None, space.decode, lab_params())
    X = space.sample_tensor(5, seed=3).to("meta")
    prior = model.prior(X)
    assert prior.device.type == "meta" and prior.shape == (5,)


def test_widened_scales_each_outcomes_std_inside_the_block_only(config: CampaignConfig) -> None:
    obs = _observations(config)
    outcomes = (*config.outcome_names, "strain_buffering")  # one native-GP outcome too
    fitted = fit_campaign_model(obs, config.search_space(), outcomes)
    X = config.search_space().to_tensor(obs.head(5))
    mean0, std0 = fitted.predict(X)
    factors = {"tap_density_g_cm3": 2.0, "ice_pct": 1.5, "strain_buffering": 3.0}
    with fitted.widened(factors):
        mean1, std1 = fitted.predict(X)
    mean2, std2 = fitted.predict(X)
    for j, name in enumerate(fitted.outcome_names):
        torch.testing.assert_close(mean1[:, j], mean0[:, j])
        torch.testing.assert_close(std1[:, j], std0[:, j] * factors.get(name, 1.0))
    assert fitted.sources["strain_buffering"] == "native-gp"
    assert FEASIBLE_OUTPUT in fitted.outcome_names  # never widened (factor 1 above)
    torch.testing.assert_close(std2, std0)  # restored after the block
    torch.testing.assert_close(mean2, mean0)
