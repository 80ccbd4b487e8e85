"""The prior check: per route, designs tried and how well the virtual-lab physics matched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from poreml.data.schema import DESIGN_COLUMNS, ROUTES
from poreml.design.search_space import SearchSpace
from poreml.optimize.prior_check import prior_metrics, route_report, routes_to_explore
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


def _entry(route: str, tried: int, verdict: str) -> dict:
    return {"route": route, "tried": tried, "verdict": verdict}


def test_an_unconfirmed_route_below_its_floor_gets_a_point_of_the_batch() -> None:
    report = [
        _entry(ROUTES[0], 20, "good"),
        _entry(ROUTES[1], 3, "poor"),
        _entry(ROUTES[2], 1, "no data"),
    ]
    # 24 observed + 4 in the batch: the floor of 0.15 is 4.2 designs per unconfirmed route
    assert routes_to_explore(report, ROUTES, {}, 4, 0.15) == [ROUTES[2]]  # most short first
    assert routes_to_explore(report, ROUTES, {}, 4, 0.15, slots=2) == [ROUTES[2], ROUTES[1]]
    # designs awaiting results count toward the floor
    assert routes_to_explore(report, ROUTES, {ROUTES[2]: 4}, 4, 0.15) == [ROUTES[1]]


def test_a_confirmed_prior_or_a_route_at_its_floor_gets_no_exploration() -> None:
    confirmed = [
        _entry(ROUTES[0], 30, "good"),
        _entry(ROUTES[1], 2, "good"),
        _entry(ROUTES[2], 2, "good"),
    ]
    assert routes_to_explore(confirmed, ROUTES, {}, 4, 0.15) == []
    at_floor = [
        _entry(ROUTES[0], 12, "poor"),
        _entry(ROUTES[1], 12, "fair"),
        _entry(ROUTES[2], 12, "poor"),
    ]
    assert routes_to_explore(at_floor, ROUTES, {}, 4, 0.15) == []


def test_route_exploration_is_off_with_floor_zero_or_one_allowed_route() -> None:
    report = [
        _entry(ROUTES[0], 20, "good"),
        _entry(ROUTES[1], 0, "no data"),
        _entry(ROUTES[2], 0, "no data"),
    ]
    assert routes_to_explore(report, ROUTES, {}, 4, 0.0) == []
    assert routes_to_explore(report, ROUTES[:1], {}, 4, 0.15) == []
    # a route the campaign may not propose is never explored
    assert routes_to_explore(report, ROUTES[:2], {}, 4, 0.15) == [ROUTES[1]]


def test_a_route_whose_syntheses_all_failed_stays_unconfirmed(measured) -> None:
    data = measured.copy()
    data.loc[data["route"] == ROUTES[1], "feasible"] = False
    report = {r["route"]: r for r in route_report(data, OUTCOMES)}
    assert report[ROUTES[1]]["verdict"] == "no data"
    # 64 designs with this batch: a floor of 0.5 is 32 each; transcription (none) comes first
    explore = routes_to_explore(list(report.values()), ROUTES, {}, 4, 0.5, slots=2)
    assert explore == [ROUTES[2], ROUTES[1]]


def _record(mean: float, std: float, measured: float, feasible: bool | None = True):
    from poreml.optimize.state import Observation

    return Observation(
        candidate_id="C",
        source="proposal",
        round=2,
        design={},
        measured={"ice_pct": measured},
        feasible=feasible,
        predicted={"predicted_ice_pct_mean": mean, "predicted_ice_pct_std": std},
    )


def test_widening_is_the_shrunk_coverage_factor_of_the_out_of_sample_record() -> None:
    from poreml.optimize.model_check import Z90, widening

    # |z| of 0.5 .. 4.0: the 90 % quantile is 3.65, a factor 3.65 / 1.645 = 2.22 before
    # shrinking with 8 pseudo-records: 1 + 1.22 * 8 / 16
    z = np.linspace(0.5, 4.0, 8)
    records = [_record(80.0, 2.0, 80.0 + 2.0 * v) for v in z]
    raw = float(np.quantile(z, 0.9)) / Z90
    assert widening(records, ["ice_pct"])["ice_pct"] == pytest.approx(1 + (raw - 1) * 0.5)
    # a calibrated or under-confident record, too few records, failed syntheses: factor 1
    calm = [_record(80.0, 2.0, 80.0 + 0.2 * v) for v in z]
    assert widening(calm, ["ice_pct"]) == {"ice_pct": 1.0}
    assert widening(records[:7], ["ice_pct"]) == {"ice_pct": 1.0}
    failed = [_record(80.0, 2.0, 80.0 + 20.0, feasible=False) for _ in range(20)]
    assert widening(failed, ["ice_pct"]) == {"ice_pct": 1.0}
    # capped
    wild = [_record(80.0, 0.1, 90.0) for _ in range(200)]
    assert widening(wild, ["ice_pct"]) == {"ice_pct": 3.0}
