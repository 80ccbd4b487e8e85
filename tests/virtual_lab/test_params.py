"""Parameters as data: defaults, scenarios, randomised instances, JSON round trip (spec 3, 5, 7)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from poreml.exceptions import ConfigError
from poreml.virtual_lab import (
    SCENARIOS,
    GlobalParams,
    LabParams,
    MaterialConstants,
    RouteTable,
    RouteWindows,
    get_scenario,
    lab_params,
    randomised_instance,
)
from poreml.virtual_lab.params import RANDOMISATION


def _matches_rounded(value: float, text: str) -> bool:
    """Whether ``value`` rounds to the spec's printed ``text`` (same number of decimals)."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    return round(value, decimals) == float(text)


def test_seed_one_instance_reproduces_spec_7():
    p = randomised_instance(1)
    expected_globals = {
        "eps_si": "2.8535",
        "u0": "0.9665",
        "delta1_nm": "6.865",
        "q_c": "1.1538",
        "b_breath": "0.8118",
        "chi": "0.1308",
        "lam_star": "0.7139",
        "k_f": "0.0097",
        "k_s": "0.0068",
        "kappa_el": "0.2528",
        "lam_hc": "0.3507",
    }
    for name, text in expected_globals.items():
        assert _matches_rounded(getattr(p.globals, name), text), name
    expected_routes = {
        "eta_max": ("0.66", "0.5014", "0.605"),
        "kappa_max": ("0.7442", "0.7658", "0.9054"),
        "s0": ("0.2871", "0.0889", "0.6735"),
        "f_trap0": ("0.0801", "0.0768", "0.0486"),
        "t_ox_nm": ("1.3956", "1.3317", "0.0377"),
        "t_crit_nm": ("146.12", "281.59", "1032.57"),
    }
    for name, texts in expected_routes.items():
        values = getattr(p.routes, name)
        assert all(_matches_rounded(v, t) for v, t in zip(values, texts, strict=True)), name
    assert p.routes.eta_max[0] == 0.66  # capped
    assert p.instance_seed == 1


def test_randomised_instances_respect_ranges_caps_and_fixed_columns():
    base = LabParams()
    for seed in range(40):
        p = randomised_instance(seed)
        for name, lo, hi in RANDOMISATION.uniform:
            assert lo <= getattr(p.globals, name) <= hi
        for name, cap in RANDOMISATION.route_factors:
            assert max(getattr(p.routes, name)) <= cap
        assert p.routes.r0 == base.routes.r0
        assert p.routes.beta_sigma == base.routes.beta_sigma
        assert p.windows == base.windows
        assert p.materials == base.materials
        assert p.globals.w_lam == base.globals.w_lam  # not randomised


def test_randomised_instance_is_deterministic_and_seed_dependent():
    assert randomised_instance(3) == randomised_instance(3)
    assert randomised_instance(3) != randomised_instance(4)
    with pytest.raises(ConfigError, match="non-negative"):
        randomised_instance(-1)


def test_scenario_overrides_win_over_the_instance():
    p = lab_params("no_FEC", instance_seed=1)
    assert (p.globals.delta1_nm, p.globals.q_c, p.globals.b_breath) == (11.0, 1.2, 1.5)
    inst = randomised_instance(1)
    assert p.globals.eps_si == inst.globals.eps_si  # the other globals stay random
    assert p.globals.chi == inst.globals.chi
    assert p.routes == inst.routes
    assert p.scenario == "no_FEC" and p.instance_seed == 1


def test_scenario_registry_matches_spec_5_1():
    assert list(SCENARIOS) == [
        "baseline",
        "no_FEC",
        "full_cell_b15",
        "fast_charge_2C",
        "high_loading",
    ]
    assert dict(SCENARIOS["baseline"].overrides) == {}
    assert dict(SCENARIOS["no_FEC"].overrides) == {"delta1_nm": 11.0, "q_c": 1.2, "b_breath": 1.5}
    assert dict(SCENARIOS["full_cell_b15"].overrides) == {
        "lam_hc": 1.0,
        "q_c": 0.5,
        "blend_retention": True,
    }
    assert dict(SCENARIOS["fast_charge_2C"].overrides) == {
        "tau_s": 1800.0,
        "rate_fac": 1.5,
        "q_c": 0.8,
    }
    assert dict(SCENARIOS["high_loading"].overrides) == {
        "p0": 0.30,
        "kappa_el": 0.20,
        "k_s": 0.012,
        "a_am": 0.90,
    }
    assert lab_params("baseline") == LabParams()


def test_unknown_scenario_lists_the_allowed_names():
    with pytest.raises(ConfigError) as err:
        get_scenario("noFEC")
    for name in SCENARIOS:
        assert name in str(err.value)
    with pytest.raises(ConfigError):
        lab_params("turbo")


def test_scenario_rejects_unknown_overrides():
    from poreml.virtual_lab import Scenario

    with pytest.raises(ConfigError, match="q_cc"):
        Scenario("bad", "typo", {"q_cc": 1.0})


def test_parameters_are_frozen():
    p = LabParams()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.globals.q_c = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        SCENARIOS["no_FEC"].overrides["q_c"] = 2.0  # type: ignore[index]


@pytest.mark.parametrize(
    "params",
    [
        LabParams(),
        lab_params("full_cell_b15"),
        lab_params("high_loading", instance_seed=7),
    ],
)
def test_lab_params_round_trip_through_json(params):
    text = json.dumps(params.to_dict())
    data = json.loads(text)
    assert data["type"] == "LabParams"
    assert data["globals"]["type"] == "GlobalParams"
    assert LabParams.from_dict(data) == params


@pytest.mark.parametrize(
    "record", [MaterialConstants(), GlobalParams(), RouteTable(), RouteWindows()]
)
def test_each_record_round_trips(record):
    assert type(record).from_dict(json.loads(json.dumps(record.to_dict()))) == record


def test_from_dict_reports_bad_records():
    with pytest.raises(ConfigError, match="GlobalParams"):
        GlobalParams.from_dict({"type": "RouteTable"})
    with pytest.raises(ConfigError, match="unknown GlobalParams key"):
        GlobalParams.from_dict({"qc": 1.0})
    with pytest.raises(ConfigError, match="one value per route"):
        RouteTable.from_dict({"eta_max": [0.6, 0.6]})
    with pytest.raises(ConfigError, match="expected a number"):
        GlobalParams.from_dict({"q_c": "fast"})
    with pytest.raises(ConfigError, match="true/false"):
        GlobalParams.from_dict({"blend_retention": 1})
    with pytest.raises(ConfigError, match="unknown LabParams key"):
        LabParams.from_dict({"type": "LabParams", "noise": {}})


def test_from_dict_keeps_defaults_for_keys_left_out():
    p = GlobalParams.from_dict({"type": "GlobalParams", "q_c": 0.9})
    assert p == dataclasses.replace(GlobalParams(), q_c=0.9)
