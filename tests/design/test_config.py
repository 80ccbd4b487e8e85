"""Campaign config: the CONTRACT.md section 3 TOML, key-naming errors, JSON round trip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poreml.data import schema
from poreml.design.config import CampaignConfig
from poreml.design.objectives import Objective, OutcomeConstraint
from poreml.design.parameters import CategoricalParameter, ContinuousParameter, FixedParameter
from poreml.exceptions import ConfigError

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
CONTRACT_TOML = (EXPERIMENTS / "campaign_td_vs_buffering.toml").read_text(encoding="utf-8")


def _load(text: str) -> CampaignConfig:
    return CampaignConfig.from_toml_string(text)


def test_contract_example_loads_into_objects() -> None:
    config = CampaignConfig.from_toml(EXPERIMENTS / "campaign_td_vs_buffering.toml")
    assert (config.name, config.batch_size, config.initial_points, config.seed) == (
        "td-vs-buffering",
        4,
        8,
        0,
    )
    assert (config.surrogate, config.acquisition) == ("gp", "auto")
    assert config.objectives == (
        Objective("tap_density_g_cm3", "maximize", 0.3),
        Objective("expansion_pct", "minimize", 150.0),
    )
    assert config.outcome_constraints == (
        OutcomeConstraint("ice_pct", ">=", 80.0),
        OutcomeConstraint("retention_pct", ">=", 80.0),
        OutcomeConstraint("specific_capacity_mah_g", ">=", 1000.0),
    )
    assert [str(c) for c in config.parameter_constraints] == [
        "porosity * (1 - closed_pore_fraction) <= 0.6"
    ]
    params = {p.name: p for p in config.parameters}
    assert params["pore_size_nm"] == ContinuousParameter("pore_size_nm", (1.0, 1000.0), "log")
    assert params["route"] == CategoricalParameter("route", schema.ROUTES)
    assert params["d50_um"] == FixedParameter("d50_um", 12.0)
    assert "graphitic_fraction" not in params
    assert config.outcome_names == (
        "tap_density_g_cm3",
        "expansion_pct",
        "ice_pct",
        "retention_pct",
        "specific_capacity_mah_g",
    )


def test_unlisted_parameters_are_fixed_at_contract_defaults() -> None:
    config = _load(CONTRACT_TOML)
    by_name = {p.name: p for p in config.all_parameters}
    assert tuple(by_name) == schema.DESIGN_COLUMNS
    assert by_name["graphitic_fraction"] == FixedParameter(
        "graphitic_fraction", schema.DESIGN_DEFAULTS["graphitic_fraction"]
    )
    space = config.search_space()
    assert space.fixed_values["graphitic_fraction"] == schema.DESIGN_DEFAULTS["graphitic_fraction"]
    assert space.feature_names[-1] == "route"
    df = space.sample(config.initial_points, seed=config.seed)
    assert space.contains(df).all()


def test_four_objective_variant_keeps_the_capacity_constraint() -> None:
    config = CampaignConfig.from_toml(EXPERIMENTS / "campaign_4obj.toml")
    assert config.objective_names == (
        "tap_density_g_cm3",
        "expansion_pct",
        "ice_pct",
        "retention_pct",
    )
    assert config.objectives[2] == Objective("ice_pct", "maximize", 80.0)
    assert config.objectives[3] == Objective("retention_pct", "maximize", 80.0)
    assert config.outcome_constraints == (
        OutcomeConstraint("specific_capacity_mah_g", ">=", 1000.0),
    )


@pytest.mark.parametrize(
    "path",
    [EXPERIMENTS / "campaign_td_vs_buffering.toml", EXPERIMENTS / "campaign_4obj.toml"],
    ids=lambda p: p.name,
)
def test_config_round_trips_losslessly_through_json(path: Path) -> None:
    config = CampaignConfig.from_toml(path)
    data = json.loads(json.dumps(config.to_dict()))
    assert data["type"] == "CampaignConfig"
    again = CampaignConfig.from_dict(data)
    assert again == config
    assert again.to_dict() == config.to_dict()
    assert CampaignConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize(
    "path",
    [EXPERIMENTS / "campaign_td_vs_buffering.toml", EXPERIMENTS / "campaign_4obj.toml"],
    ids=lambda p: p.name,
)
def test_config_round_trips_through_toml_text(path: Path) -> None:
    config = CampaignConfig.from_toml(path)
    text = config.to_toml()
    assert text.startswith("[campaign]\n")
    assert CampaignConfig.from_toml_string(text) == config
    assert CampaignConfig.from_toml_string(text).to_toml() == text


def test_optional_campaign_keys_take_defaults_and_can_be_set() -> None:
    text = CONTRACT_TOML.replace("seed = 0\n", 'surrogate = "ensemble"\nacquisition = "qnehvi"\n')
    config = _load(text)
    assert (config.seed, config.surrogate, config.acquisition) == (0, "ensemble", "qnehvi")


def _edit(old: str, new: str) -> str:
    assert old in CONTRACT_TOML, old
    return CONTRACT_TOML.replace(old, new, 1)


ROUTE_VALUES = 'values = ["bottom_up", "top_down", "transcription"]'
PC = '[[parameter_constraints]]\nexpr = "porosity * (1 - closed_pore_fraction) <= 0.6"'


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        (
            _edit("batch_size = 4", "batch_sise = 4"),
            "campaign.batch_sise",
            "did you mean 'batch_size'",
        ),
        (_edit("batch_size = 4", "batch_size = 0"), "campaign.batch_size", "integer in [1, 1000]"),
        (_edit("batch_size = 4", "batch_size = 4.0"), "campaign.batch_size", "got 4.0"),
        (_edit("seed = 0", "seed = -1"), "campaign.seed", "got -1"),
        (_edit("seed = 0", "seed = true"), "campaign.seed", "got True"),
        (_edit("initial_points = 8", "initial_points = '8'"), "campaign.initial_points", "got '8'"),
        (_edit('name = "td-vs-buffering"\n', ""), "campaign", "missing key 'name'"),
        (_edit("seed = 0", 'seed = 0\nsurrogate = "G P"'), "campaign.surrogate", "'G P'"),
        (
            _edit("[parameters.porosity]", "[parameters.porocity]"),
            "parameters.porocity",
            "did you mean 'porosity'",
        ),
        (
            _edit("bounds = [0.0, 0.8]", "bounds = [0.0, 0.95]"),
            "parameters.porosity.bounds",
            "[0, 0.8]",
        ),
        (_edit("bounds = [0.0, 0.8]", "bounds = 0.8"), "parameters.porosity.bounds", "[low, high]"),
        (
            _edit("bounds = [0.0, 0.8]", "bounds = [0.0, 0.8]\nscale = 'log'"),
            "parameters.porosity.bounds",
            "low > 0",
        ),
        (
            _edit('scale = "log"', 'scale = "ln"'),
            "parameters.pore_size_nm.scale",
            "'linear', 'log'",
        ),
        (
            _edit("bounds = [0.0, 0.8]", "bounds = [0.0, 0.8]\nvalues = [1]"),
            "parameters.porosity",
            "exactly one of",
        ),
        (
            _edit("bounds = [0.0, 0.8]", "bound = [0.0, 0.8]"),
            "parameters.porosity.bound",
            "did you mean 'bounds'",
        ),
        (
            _edit("bounds = [0.0, 0.8]", "values = [0.1, 0.2]"),
            "parameters.porosity.values",
            "continuous",
        ),
        (
            _edit("fixed = 12.0", "fixed = 12.0\nscale = 'log'"),
            "parameters.d50_um.scale",
            "only together with bounds",
        ),
        (_edit("fixed = 12.0", "fixed = 40.0"), "parameters.d50_um.fixed", "[2, 25]"),
        (
            _edit(ROUTE_VALUES, 'values = ["top-down"]'),
            "parameters.route.values[0]",
            "did you mean 'top_down'",
        ),
        (
            _edit(ROUTE_VALUES, "bounds = [0, 2]"),
            "parameters.route.bounds",
            "categorical column route",
        ),
        (_edit(ROUTE_VALUES, 'fixed = "sol_gel"'), "parameters.route.fixed", "'transcription'"),
        (
            _edit("[objectives.expansion_pct]", "[objectives.expansion]"),
            "objectives.expansion",
            "did you mean 'expansion_pct'",
        ),
        (
            _edit('direction = "maximize"', 'direction = "max"'),
            "objectives.tap_density_g_cm3.direction",
            "'maximize'",
        ),
        (_edit("threshold = 0.3", ""), "objectives.tap_density_g_cm3", "missing key 'threshold'"),
        (
            _edit("threshold = 0.3", "threshold = 0.3\nweight = 1"),
            "objectives.tap_density_g_cm3.weight",
            "unknown key",
        ),
        (_edit('ice_pct = ">= 80"', "ice_pct = 80"), "outcome_constraints.ice_pct", '">= 80"'),
        (
            _edit('ice_pct = ">= 80"', 'ice_pc = ">= 80"'),
            "outcome_constraints.ice_pc",
            "did you mean 'ice_pct'",
        ),
        (
            _edit("(1 - closed_pore_fraction)", "(1 - closed_pore)"),
            "parameter_constraints[0].expr",
            "did you mean 'closed_pore_fraction'",
        ),
        (
            _edit("<= 0.6", "<= 0.6; import os"),
            "parameter_constraints[0].expr",
            "unexpected character ';'",
        ),
        (_edit('expr = "', 'expression = "'), "parameter_constraints[0].expression", "unknown key"),
        (
            _edit(PC, 'parameter_constraints = "porosity <= 0.6"'),
            "outcome_constraints.parameter_constraints",
            "unknown key",
        ),
        (
            CONTRACT_TOML + '\n[objective.ice_pct]\ndirection = "maximize"\n',
            "objective",
            "did you mean 'objectives'",
        ),
    ],
)
def test_config_error_names_the_toml_key(text: str, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(text)
    message = str(info.value)
    assert message.startswith(key + ":"), message
    assert fragment in message, message
    assert "Fix:" in message, message


def test_missing_objectives_is_an_error() -> None:
    text = CONTRACT_TOML.split("[objectives.tap_density_g_cm3]")[0]
    with pytest.raises(ConfigError, match=r"missing key 'objectives'.*add a \[objectives\] table"):
        _load(text)


def test_invalid_toml_syntax_gives_the_line() -> None:
    with pytest.raises(ConfigError, match=r"invalid TOML: .*line 5"):
        _load(CONTRACT_TOML.replace("seed = 0", "seed = "))


def test_from_toml_prefixes_the_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(CONTRACT_TOML.replace("seed = 0", "seed = -3"), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{path}: campaign\.seed: "):
        CampaignConfig.from_toml(path)
    with pytest.raises(ConfigError, match="cannot read"):
        CampaignConfig.from_toml(tmp_path / "missing.toml")


def test_from_dict_rejects_a_foreign_type_and_unknown_keys() -> None:
    data = _load(CONTRACT_TOML).to_dict()
    with pytest.raises(ConfigError, match="type: expected 'CampaignConfig'"):
        CampaignConfig.from_dict({**data, "type": "SearchSpace"})
    with pytest.raises(ConfigError, match="unknown key 'batchsize'"):
        CampaignConfig.from_dict({**data, "batchsize": 3})
    with pytest.raises(ConfigError, match="invalid JSON"):
        CampaignConfig.from_json("{")


def test_config_without_free_parameters_is_rejected() -> None:
    text = """
[campaign]
name = "nothing-to-do"
batch_size = 1
initial_points = 1
[parameters.route]
values = ["top_down"]
[objectives.ice_pct]
direction = "maximize"
threshold = 80
"""
    with pytest.raises(ConfigError, match="at least one free parameter"):
        _load(text)


@settings(max_examples=30, deadline=None)
@given(
    lows=st.lists(st.floats(0.0, 0.45), min_size=2, max_size=2),
    widths=st.lists(st.floats(0.05, 0.5), min_size=2, max_size=2),
    seed=st.integers(0, 2**31),
    routes=st.sets(st.sampled_from(schema.ROUTES), min_size=1),
)
def test_generated_configs_round_trip(
    lows: list[float], widths: list[float], seed: int, routes: set[str]
) -> None:
    params = (
        ContinuousParameter("porosity", (lows[0] * 0.8, (lows[0] + widths[0]) * 0.8)),
        ContinuousParameter("closed_pore_fraction", (lows[1], lows[1] + widths[1])),
        CategoricalParameter("route", sorted(routes)),
    )
    config = CampaignConfig(
        name="generated",
        batch_size=2,
        initial_points=4,
        seed=seed,
        objectives=(Objective("ice_pct", "maximize", 80.0),),
        parameters=params,
    )
    assert CampaignConfig.from_json(config.to_json()) == config


def test_loading_a_config_does_not_import_torch(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from poreml.design import CampaignConfig\n"
        f"CampaignConfig.from_toml({str(EXPERIMENTS / 'campaign_4obj.toml')!r})\n"
        "assert 'torch' not in sys.modules and 'botorch' not in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert list(tmp_path.iterdir()) == []
