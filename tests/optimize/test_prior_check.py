"""The prior check: per route, designs tried and how well the virtual-lab physics matched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from poreml.data.schema import DESIGN_COLUMNS, ROUTES
from poreml.design.search_space import SearchSpace
from poreml.optimize.prior_check import prior_metrics, route_report
from poreml.virtual_lab import VirtualLab

OUTCOMES = ("tap_density_g_cm3", "expansion_pct", "ice_pct", "retention_pct")


@pytest.fixture(scope="module")
def measured() -> pd.DataFrame:
    """60 noisy baseline virtual-lab results of the contract box (routes cycled)."""
    designs = SearchSpace.contract_box().sample(60, seed=5)
    designs["route"] = [ROUTES[i % 2] for i in range(60)]  # no third-route data
    designs.insert(0, "candidate_id", [f"C{i:03d}" for i in range(60)])
    out = VirtualLab("baseline").measure(designs, seed=3)
    return out.astype({"feasible": object})


def test_a_lab_that_is_the_prior_gets_a_good_verdict_on_every_tried_route(measured) -> None:
    report = {r["route"]: r for r in route_report(measured, OUTCOMES)}
    assert [r for r in report] == list(ROUTES)
    for route in ROUTES[:2]:
        entry = report[route]
        assert entry["tried"] == 30
        assert entry["made"] + entry["failed"] == 30
        assert entry["verdict"] == "good", entry
        assert entry["feasibility_agreement"] >= 0.9
    untried = report[ROUTES[2]]
    assert (untried["tried"], untried["verdict"], untried["misfit"]) == (0, "no data", None)


def test_a_route_the_prior_gets_wrong_is_flagged_and_only_that_one(measured) -> None:
    shifted = measured.copy()
    wrong = (shifted["route"] == ROUTES[0]).to_numpy()
    spread = shifted["ice_pct"].std()
    shifted.loc[wrong, "ice_pct"] += 3 * spread  # the lab's ICE is far above the physics there
    shifted.loc[wrong, "expansion_pct"] *= 0.4
    shifted.loc[wrong, "tap_density_g_cm3"] += 0.5
    report = {r["route"]: r for r in route_report(shifted, OUTCOMES)}
    assert report[ROUTES[0]]["verdict"] == "poor"
    assert report[ROUTES[0]]["outcomes"]["ice_pct"]["bias"] > 2 * spread
    assert report[ROUTES[1]]["verdict"] == "good"


def test_failed_syntheses_count_but_train_no_residual(measured) -> None:
    data = measured.copy()
    data["feasible"] = [False if i < 4 else v for i, v in enumerate(data["feasible"])]
    entry = route_report(data, OUTCOMES)[0]
    made = data[(data["route"] == ROUTES[0]) & (data["feasible"] != False)]  # noqa: E712
    assert entry["failed"] >= 2
    assert entry["outcomes"]["ice_pct"]["n"] == int(made["ice_pct"].notna().sum())


def test_metrics_flatten_the_report_for_a_tracking_run(measured) -> None:
    metrics = prior_metrics(route_report(measured, OUTCOMES))
    assert metrics[f"prior.{ROUTES[0]}.tried"] == 30.0
    assert 0.0 <= metrics[f"prior.{ROUTES[1]}.misfit"] < 0.5
    assert f"prior.{ROUTES[2]}.misfit" not in metrics  # no data: no point in the series
    assert np.isfinite(list(metrics.values())).all()


def test_no_observations_report_every_route_without_data() -> None:
    empty = pd.DataFrame(columns=[*DESIGN_COLUMNS, "feasible", *OUTCOMES])
    assert [r["verdict"] for r in route_report(empty, OUTCOMES)] == ["no data"] * len(ROUTES)
