"""Acquisition optimisation: exact categories, parameter constraints, settings round trip."""

from __future__ import annotations

import pytest
import torch
from botorch.acquisition import AcquisitionFunction
from botorch.models import SingleTaskGP

from poreml.design.config import CampaignConfig
from poreml.exceptions import ConfigError
from poreml.optimize.acquisition import (
    AcquisitionSettings,
    IndependentPoints,
    optimize_acquisition,
    resolve_strategy,
)

CONFIG = "experiments/campaign_td_vs_buffering.toml"


class _PushIntoTheConstraint(AcquisitionFunction):
    """Larger for high porosity, low closed fraction and the top_down route: its box optimum
    (porosity 0.8, closed 0) breaks ``porosity * (1 - closed_pore_fraction) <= 0.6``."""

    def __init__(self, porosity_dim: int, closed_dim: int, route_dim: int) -> None:
        model = SingleTaskGP(torch.rand(3, 1, dtype=torch.double), torch.rand(3, 1).double())
        super().__init__(model=model)
        self.p, self.c, self.r = porosity_dim, closed_dim, route_dim

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        x = X[..., 0, :]
        bonus = (x[..., self.r] - 1.0).abs().neg()  # best at code 1 (top_down)
        return 2.0 * x[..., self.p] - x[..., self.c] + bonus


def test_proposals_satisfy_a_nonlinear_constraint_whose_box_optimum_breaks_it() -> None:
    space = CampaignConfig.from_toml(CONFIG).search_space()
    names = list(space.feature_names)
    acqf = _PushIntoTheConstraint(
        names.index("porosity"), names.index("closed_pore_fraction"), names.index("route")
    )
    X, values = optimize_acquisition(
        lambda pending, i: acqf, space, 3, AcquisitionSettings.fast(), seed=0
    )
    assert X.shape == (3, space.dim)
    slack = space.evaluate_constraints(X)
    assert (slack >= -1e-9).all()
    assert slack.abs().min() < 1e-3  # the optimum sits on the constraint
    routes = X[:, names.index("route")]
    assert torch.equal(routes, routes.round())  # categories never relaxed
    assert (routes == 1.0).all()
    assert len(values) == 3


def test_independent_points_sums_single_point_values() -> None:
    space = CampaignConfig.from_toml(CONFIG).search_space()
    names = list(space.feature_names)
    acqf = _PushIntoTheConstraint(
        names.index("porosity"), names.index("closed_pore_fraction"), names.index("route")
    )
    X = space.sample_tensor(5, seed=1)
    total = IndependentPoints(acqf)(X.unsqueeze(0))
    assert total.shape == (1,)
    assert total.item() == pytest.approx(acqf(X.unsqueeze(-2)).sum().item())


def test_auto_strategy_switches_to_parego_above_four_objectives() -> None:
    assert resolve_strategy("auto", 2) == "qlognehvi"
    assert resolve_strategy("auto", 4) == "qlognehvi"
    assert resolve_strategy("auto", 5) == "qlognparego"
    with pytest.raises(ConfigError, match=r"campaign\.acquisition"):
        resolve_strategy("ei", 2)


def test_settings_round_trip_and_validate() -> None:
    s = AcquisitionSettings(num_restarts=3, raw_samples=32)
    assert AcquisitionSettings.from_dict(s.to_dict()) == s
    with pytest.raises(ConfigError, match="raw_samples"):
        AcquisitionSettings(num_restarts=64, raw_samples=8)
    with pytest.raises(ConfigError, match="spray_std"):
        AcquisitionSettings(spray_std=0.0)
    for value in (-0.1, 0.6, True):
        with pytest.raises(ConfigError, match="route_floor"):
            AcquisitionSettings(route_floor=value)
    with pytest.raises(ConfigError, match="prior_by_route"):
        AcquisitionSettings(prior_by_route="yes")
    with pytest.raises(ConfigError, match="calibrate_prior"):
        AcquisitionSettings(calibrate_prior=1)


def test_a_held_route_keeps_its_point_on_that_route() -> None:
    space = CampaignConfig.from_toml(CONFIG).search_space()
    names = list(space.feature_names)
    route = names.index("route")
    acqf = _PushIntoTheConstraint(
        names.index("porosity"), names.index("closed_pore_fraction"), route
    )
    held = [None, {route: 2.0}]  # the acquisition prefers top_down (1); point 2 explores 2
    X, _ = optimize_acquisition(
        lambda pending, i: acqf, space, 2, AcquisitionSettings.fast(), seed=0, held=held
    )
    assert X[:, route].tolist() == [1.0, 2.0]
    assert (space.evaluate_constraints(X) >= -1e-9).all()
    assert X[1, names.index("porosity")] > 0.5  # still optimised within its route
