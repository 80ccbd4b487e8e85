"""Pareto fronts and hypervolumes: directions, eligibility, reference point, model front."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from poreml.design.config import CampaignConfig
from poreml.design.objectives import Objective, OutcomeConstraint
from poreml.design.pareto import pareto_mask
from poreml.optimize.pareto import (
    eligible_mask,
    hypervolume,
    observed_front,
    observed_hypervolume,
    predicted_front,
)

TD = Objective("tap_density_g_cm3", "maximize", 0.3)
EXP = Objective("expansion_pct", "minimize", 150.0)
ICE = OutcomeConstraint("ice_pct", ">=", 80.0)


def _obs(rows: list[tuple[float, float, float, object]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "candidate_id": [f"c{i}" for i in range(len(rows))],
            "tap_density_g_cm3": [r[0] for r in rows],
            "expansion_pct": [r[1] for r in rows],
            "ice_pct": [r[2] for r in rows],
            "feasible": [r[3] for r in rows],
        }
    )


def test_hypervolume_of_two_points_matches_the_area_by_hand() -> None:
    # maximise both; ref (0, 0): union of [0,2]x[0,1] and [0,1]x[0,3] = 2 + 2 = 4
    assert hypervolume(np.array([[2.0, 1.0], [1.0, 3.0]]), [0.0, 0.0]) == pytest.approx(4.0)


def test_duplicated_points_count_once_in_the_hypervolume() -> None:
    Y = np.array([[2.0, 1.0], [1.0, 3.0], [2.0, 1.0]])
    assert hypervolume(Y, [0.0, 0.0]) == pytest.approx(4.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-3, 12), st.integers(-3, 12)).map(lambda t: (t[0] / 4, t[1] / 4)),
        min_size=1,
        max_size=25,
    )
)
def test_two_objective_sweep_matches_botorch(points: list[tuple[float, float]]) -> None:
    # ties and duplicates on the grid; the torch-free sweep is BoTorch's hypervolume
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    Y = torch.tensor(points, dtype=torch.double)
    ref = torch.tensor([0.0, 0.0], dtype=torch.double)
    beyond = Y[(ref < Y).all(dim=-1)]
    expected = 0.0
    if len(beyond):
        front = torch.unique(beyond, dim=0)
        front = front[torch.as_tensor(pareto_mask(front.numpy()))]
        expected = float(Hypervolume(ref_point=ref).compute(front))
    assert hypervolume(np.array(points), [0.0, 0.0]) == pytest.approx(expected, abs=1e-12)


def test_three_objective_hypervolume_is_botorchs_box() -> None:
    assert hypervolume(np.array([[1.0, 2.0, 3.0]]), [0.0, 0.0, 0.0]) == pytest.approx(6.0)
    two = np.array([[1.0, 2.0, 3.0], [2.0, 1.0, 3.0]])
    assert hypervolume(two, [0.0, 0.0, 0.0]) == pytest.approx(6.0 + 6.0 - 3.0)


def test_points_not_beyond_the_reference_add_no_hypervolume() -> None:
    assert hypervolume(np.array([[-1.0, 5.0], [np.nan, 1.0]]), [0.0, 0.0]) == 0.0
    assert hypervolume(np.zeros((0, 2)), [0.0, 0.0]) == 0.0


def test_eligibility_excludes_failed_syntheses_unmeasured_and_violating_rows() -> None:
    df = _obs(
        [
            (1.0, 20.0, 90.0, True),  # ok
            (1.2, 10.0, 90.0, False),  # failed synthesis
            (1.0, np.nan, 90.0, True),  # objective not measured
            (1.0, 20.0, 70.0, True),  # violates ICE >= 80
            (1.0, 20.0, np.nan, None),  # constraint not measured
            (0.9, 30.0, 85.0, None),  # blank flag counts as made
        ]
    )
    assert eligible_mask(df, [TD, EXP], [ICE]).tolist() == [True, False, False, False, False, True]


def test_observed_front_and_hypervolume_in_original_units() -> None:
    df = _obs(
        [
            (1.0, 50.0, 90.0, True),
            (0.5, 10.0, 90.0, True),
            (0.8, 60.0, 90.0, True),  # dominated by the first
            (1.4, 5.0, 90.0, False),  # would dominate everything but failed
            (0.2, 1.0, 90.0, True),  # below the TD threshold: on the front, adds nothing
        ]
    )
    front = observed_front(df, [TD, EXP], [ICE])
    assert front["candidate_id"].tolist() == ["c0", "c1", "c4"]  # best TD first
    assert front["beyond_reference"].tolist() == [True, True, False]
    # (1.0-0.3)*(150-50) + (0.5-0.3)*(50-10) = 70 + 8
    assert observed_hypervolume(df, [TD, EXP], [ICE]) == pytest.approx(78.0)


def test_observed_front_of_nothing_eligible_is_empty() -> None:
    df = _obs([(1.0, 20.0, 50.0, True)])
    front = observed_front(df, [TD, EXP], [ICE])
    assert len(front) == 0
    assert "beyond_reference" in front.columns
    assert observed_hypervolume(df, [TD, EXP], [ICE]) == 0.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 2.0), st.floats(0.0, 200.0)), min_size=1, max_size=12))
def test_adding_a_point_never_lowers_the_hypervolume(points: list[tuple[float, float]]) -> None:
    df = _obs([(td, ex, 90.0, True) for td, ex in points])
    before = observed_hypervolume(df.iloc[:-1], [TD, EXP], [ICE]) if len(df) > 1 else 0.0
    after = observed_hypervolume(df, [TD, EXP], [ICE])
    assert after >= before - 1e-9
    front = observed_front(df, [TD, EXP], [ICE])
    assert observed_hypervolume(front, [TD, EXP], [ICE]) == pytest.approx(after)


class _LinearModel:
    """Posterior mean = a fixed linear map of the encoded inputs (enough for the front)."""

    def __init__(self, W: torch.Tensor, b: torch.Tensor) -> None:
        self.W, self.b = W, b

    def posterior(self, X: torch.Tensor) -> object:
        class _P:
            mean = X @ self.W + self.b

        return _P()


def test_predicted_front_is_non_dominated_and_meets_predicted_constraints() -> None:
    cfg = CampaignConfig.from_toml("experiments/campaign_td_vs_buffering.toml")
    space = cfg.search_space()
    d = space.dim
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(d, 3, generator=gen, dtype=torch.double) * torch.tensor([0.3, 30.0, 5.0])
    b = torch.tensor([1.0, 60.0, 80.0], dtype=torch.double)
    names = ["tap_density_g_cm3", "expansion_pct", "ice_pct"]
    front = predicted_front(
        _LinearModel(W, b), space, [TD, EXP], [ICE], outcome_names=names, n=256, seed=1
    )
    assert len(front) >= 1
    assert (front["predicted_ice_pct_mean"] >= 80.0).all()
    Y = np.stack(
        [front["predicted_tap_density_g_cm3_mean"], -front["predicted_expansion_pct_mean"]], -1
    )
    assert pareto_mask(Y).all()
    assert space.contains(front).all()
