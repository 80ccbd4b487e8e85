"""The search space: DataFrame <-> tensor encoding, constraints in BoTorch form, Sobol sampling."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from botorch.acquisition import AcquisitionFunction
from botorch.optim import optimize_acqf_mixed
from botorch.optim.parameter_constraints import evaluate_feasibility
from torch import Tensor

from poreml.data import schema
from poreml.design.expressions import Inequality, parse_inequality
from poreml.design.parameters import CategoricalParameter, ContinuousParameter, FixedParameter
from poreml.design.search_space import SearchSpace
from poreml.exceptions import ConfigError, DataValidationError

NAMES = schema.CONTINUOUS_DESIGN_COLUMNS
PORE_VOLUME = "porosity * (1 - closed_pore_fraction) <= 0.6"


def _ineq(text: str) -> Inequality:
    return parse_inequality(text, NAMES)


@pytest.fixture(scope="module")
def contract_space() -> SearchSpace:
    """The search space of CONTRACT.md section 3."""
    return SearchSpace(
        [
            ContinuousParameter("pore_size_nm", (1.0, 1000.0), "log"),
            ContinuousParameter("porosity", (0.0, 0.8)),
            ContinuousParameter("closed_pore_fraction", (0.0, 1.0)),
            ContinuousParameter("carbon_wt_pct", (5.0, 90.0)),
            ContinuousParameter("si_domain_nm", (1.0, 3000.0), "log"),
            ContinuousParameter("shell_nm", (0.0, 50.0)),
            CategoricalParameter("route", ["bottom_up", "top_down", "transcription"]),
            FixedParameter("d50_um", 12.0),
        ],
        [_ineq(PORE_VOLUME)],
    )


def _random_designs(space: SearchSpace, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for p in space.parameters:
        if isinstance(p, ContinuousParameter):
            lo, hi = p.bounds
            if p.scale == "log":
                data[p.name] = 10 ** rng.uniform(math.log10(lo), math.log10(hi), n)
            else:
                data[p.name] = rng.uniform(lo, hi, n)
        elif isinstance(p, CategoricalParameter):
            data[p.name] = rng.choice(p.values, n)
        else:
            data[p.name] = [p.value] * n
    return pd.DataFrame(data)[list(schema.DESIGN_COLUMNS)]


# -- encoding -------------------------------------------------------------------------------


def test_encoding_layout_puts_continuous_first_and_route_code_last(
    contract_space: SearchSpace,
) -> None:
    space = contract_space
    assert space.feature_names == (
        "pore_size_nm",
        "porosity",
        "closed_pore_fraction",
        "carbon_wt_pct",
        "si_domain_nm",
        "shell_nm",
        "route",
    )
    assert space.dim == 7
    assert space.continuous_dims == [0, 1, 2, 3, 4, 5]
    assert space.categorical_dims == [6]
    assert space.categories == {"route": schema.ROUTES}
    torch.testing.assert_close(
        space.bounds,
        torch.tensor([[0.0] * 7, [1.0] * 6 + [2.0]], dtype=torch.double),
    )
    assert space.fixed_features_list() == [{6: 0.0}, {6: 1.0}, {6: 2.0}]
    assert space.fixed_values["d50_um"] == 12.0
    assert space.fixed_values["graphitic_fraction"] == schema.DESIGN_DEFAULTS["graphitic_fraction"]


def test_log_parameters_are_encoded_in_log10_space(contract_space: SearchSpace) -> None:
    df = contract_space.sample(3, seed=0)
    df["pore_size_nm"] = [1.0, math.sqrt(1000.0), 1000.0]
    df["route"] = ["bottom_up", "top_down", "transcription"]
    X = contract_space.to_tensor(df)
    assert X.shape == (3, 7) and X.dtype == torch.double
    torch.testing.assert_close(X[:, 0], torch.tensor([0.0, 0.5, 1.0], dtype=torch.double))
    assert X[:, 6].tolist() == [0.0, 1.0, 2.0]


def test_dataframe_tensor_dataframe_round_trip(contract_space: SearchSpace) -> None:
    df = _random_designs(contract_space, 50, seed=1)
    X = contract_space.to_tensor(df)
    assert ((X[:, :6] >= 0) & (X[:, :6] <= 1)).all()
    back = contract_space.from_tensor(X)
    assert list(back.columns) == list(schema.DESIGN_COLUMNS)
    assert back["route"].tolist() == df["route"].tolist()
    for name in schema.CONTINUOUS_DESIGN_COLUMNS:
        np.testing.assert_allclose(back[name], df[name].astype(float), rtol=1e-12, err_msg=name)


def test_tensor_dataframe_tensor_round_trip(contract_space: SearchSpace) -> None:
    X = contract_space.sample_tensor(64, seed=3)
    torch.testing.assert_close(contract_space.to_tensor(contract_space.from_tensor(X)), X)


def test_from_tensor_fills_fixed_columns_clips_and_rounds_codes(
    contract_space: SearchSpace,
) -> None:
    X = torch.tensor([[-0.1, 1.2, 0.5, 0.5, 1.0, 0.0, 1.4], [0.5] * 6 + [7.0]])
    df = contract_space.from_tensor(X)
    assert df["pore_size_nm"].iloc[0] == 1.0
    assert df["porosity"].iloc[0] == 0.8
    assert df["si_domain_nm"].iloc[0] == 3000.0
    assert df["route"].tolist() == ["top_down", "transcription"]
    assert (df["d50_um"] == 12.0).all()
    assert (df["graphitic_fraction"] == schema.DESIGN_DEFAULTS["graphitic_fraction"]).all()
    assert df.dtypes["porosity"] == np.float64


def test_from_tensor_rejects_bad_shapes_and_nan(contract_space: SearchSpace) -> None:
    with pytest.raises(DataValidationError, match=r"shape \(n, 7\)"):
        contract_space.from_tensor(torch.zeros(7))
    with pytest.raises(DataValidationError, match="row 2"):
        contract_space.from_tensor(torch.tensor([[0.5] * 7, [math.nan] * 7]))


def test_to_tensor_reports_every_bad_cell(contract_space: SearchSpace) -> None:
    df = contract_space.sample(3, seed=0)
    df.loc[0, "route"] = "sol_gel"
    df.loc[1, "pore_size_nm"] = 0.0
    df.loc[2, "porosity"] = np.nan
    with pytest.raises(DataValidationError) as info:
        contract_space.to_tensor(df)
    problems = {(p.row, p.column) for p in info.value.problems}
    assert problems == {(1, "route"), (2, "pore_size_nm"), (3, "porosity")}
    with pytest.raises(DataValidationError, match="shell_nm"):
        contract_space.to_tensor(df.drop(columns="shell_nm"))


def test_out_of_bounds_outside_data_is_encoded_outside_the_cube(
    contract_space: SearchSpace,
) -> None:
    df = contract_space.sample(1, seed=0).assign(carbon_wt_pct=2.0)
    X = contract_space.to_tensor(df)
    assert X[0, 3].item() == pytest.approx((2.0 - 5.0) / 85.0)
    assert not contract_space.contains(df)[0]


def test_contains_checks_bounds_categories_fixed_values_and_constraints(
    contract_space: SearchSpace,
) -> None:
    base = contract_space.sample(1, seed=0)
    rows = [
        base,
        base.assign(porosity=0.8, closed_pore_fraction=0.0),  # violates the constraint
        base.assign(porosity=0.8, closed_pore_fraction=0.25),  # on the boundary
        base.assign(shell_nm=60.0),
        base.assign(route="sol_gel"),
        base.assign(d50_um=10.0),  # differs from the fixed value
        base.assign(carbon_wt_pct=np.nan),
    ]
    df = pd.concat(rows, ignore_index=True)
    assert contract_space.contains(df).tolist() == [True, False, True, False, False, False, False]
    # fixed columns may be left out
    assert contract_space.contains(base.drop(columns=["d50_um", "graphitic_fraction"])).all()


# -- constraints ----------------------------------------------------------------------------


def _linear_space() -> SearchSpace:
    return SearchSpace(
        [
            ContinuousParameter("carbon_wt_pct", (5.0, 90.0)),
            ContinuousParameter("shell_nm", (0.0, 50.0)),
            ContinuousParameter("porosity", (0.0, 0.8)),
        ],
        [_ineq("carbon_wt_pct + 10*shell_nm >= 20"), _ineq("porosity + 0.01 * d50_um <= 0.5")],
    )


def test_linear_constraint_is_converted_to_botorch_form_on_the_cube() -> None:
    space = _linear_space()
    assert space.nonlinear_inequality_constraints is None
    (idx1, coef1, rhs1), (idx2, coef2, rhs2) = space.inequality_constraints
    assert space.feature_names == ("porosity", "carbon_wt_pct", "shell_nm")  # contract order
    # carbon = 5 + 85 u1, shell = 50 u2: 85 u1 + 500 u2 >= 15
    assert idx1.tolist() == [1, 2] and idx1.dtype == torch.long
    torch.testing.assert_close(coef1, torch.tensor([85.0, 500.0], dtype=torch.double))
    assert rhs1 == pytest.approx(15.0)
    # porosity = 0.8 u0, d50_um fixed at its default: -0.8 u0 >= 0.01 * d50 - 0.5
    d50 = schema.DESIGN_DEFAULTS["d50_um"]
    assert idx2.tolist() == [0]
    torch.testing.assert_close(coef2, torch.tensor([-0.8], dtype=torch.double))
    assert rhs2 == pytest.approx(0.01 * d50 - 0.5)


def test_point_on_the_linear_boundary_is_exactly_at_rhs() -> None:
    space = _linear_space()
    (idx, coef, rhs), _ = space.inequality_constraints
    boundary = pd.DataFrame({"carbon_wt_pct": [10.0], "shell_nm": [1.0], "porosity": [0.1]})
    X = space.to_tensor(boundary)
    assert (X[0, idx] * coef).sum().item() == pytest.approx(rhs, abs=1e-12)
    assert space.contains(boundary)[0]
    inside = boundary.assign(shell_nm=1.5)
    outside = boundary.assign(shell_nm=0.5)
    assert (space.to_tensor(inside)[0, idx] * coef).sum().item() > rhs
    assert (space.to_tensor(outside)[0, idx] * coef).sum().item() < rhs
    assert space.contains(pd.concat([inside, outside])).tolist() == [True, False]


def test_botorch_feasibility_agrees_with_contains() -> None:
    space = _linear_space()
    X = torch.rand(
        500, 1, space.dim, generator=torch.Generator().manual_seed(0), dtype=torch.double
    )
    botorch_ok = evaluate_feasibility(X, inequality_constraints=space.inequality_constraints)
    assert botorch_ok.tolist() == space.contains(space.from_tensor(X[:, 0])).tolist()
    assert 0 < botorch_ok.sum() < 500


def test_linear_constraint_over_a_log_parameter_becomes_nonlinear() -> None:
    space = SearchSpace(
        [
            ContinuousParameter("pore_size_nm", (1.0, 1000.0), "log"),
            ContinuousParameter("si_domain_nm", (1.0, 3000.0), "log"),
        ],
        [_ineq("pore_size_nm <= 2 * si_domain_nm")],
    )
    assert space.inequality_constraints is None
    ((fn, intrapoint),) = space.nonlinear_inequality_constraints
    assert intrapoint is True
    x = torch.tensor([0.5, 0.5], dtype=torch.double, requires_grad=True)  # 31.6 nm, 54.8 nm
    value = fn(x)
    assert value.shape == ()
    assert value.item() == pytest.approx(2 * 3000**0.5 - 1000**0.5)
    value.backward()
    assert torch.isfinite(x.grad).all()
    batch = torch.rand(4, 3, 2, dtype=torch.double, generator=torch.Generator().manual_seed(1))
    assert fn(batch).shape == (4, 3)


def test_nonlinear_callable_matches_contains(contract_space: SearchSpace) -> None:
    X = torch.rand(400, 1, 7, generator=torch.Generator().manual_seed(2), dtype=torch.double)
    X[..., 6] = (X[..., 6] * 3).floor()
    ok = evaluate_feasibility(
        X,
        inequality_constraints=contract_space.inequality_constraints,
        nonlinear_inequality_constraints=contract_space.nonlinear_inequality_constraints,
    )
    assert ok.tolist() == contract_space.contains(contract_space.from_tensor(X[:, 0])).tolist()
    assert 0 < ok.sum() < 400


def test_constraint_on_fixed_columns_only_is_checked_at_construction() -> None:
    free = [ContinuousParameter("porosity", (0.0, 0.8))]
    SearchSpace(free, [_ineq("d50_um <= 20")])  # satisfied by the default: harmless
    with pytest.raises(ConfigError, match=r"parameter_constraints\[0\]\.expr: .*violate"):
        SearchSpace(free, [_ineq("d50_um >= 20")])


def test_space_without_free_parameter_is_rejected() -> None:
    with pytest.raises(ConfigError, match="at least one free parameter"):
        SearchSpace([CategoricalParameter("route", ["top_down"])])


def test_single_valued_category_is_fixed_not_encoded() -> None:
    space = SearchSpace(
        [ContinuousParameter("porosity", (0.0, 0.8)), CategoricalParameter("route", ["top_down"])]
    )
    assert space.feature_names == ("porosity",)
    assert space.fixed_features_list() == []
    assert (space.sample(4, seed=0)["route"] == "top_down").all()


# -- sampling -------------------------------------------------------------------------------


def test_sobol_samples_satisfy_the_contract_constraint(contract_space: SearchSpace) -> None:
    df = contract_space.sample(200, seed=0)
    assert len(df) == 200
    assert (df["porosity"] * (1 - df["closed_pore_fraction"]) <= 0.6).all()
    assert contract_space.contains(df).all()
    assert (df["porosity"] * (1 - df["closed_pore_fraction"]) > 0.5).any()  # fills the space


def test_sobol_samples_spread_routes_evenly(contract_space: SearchSpace) -> None:
    counts = contract_space.sample(10, seed=4)["route"].value_counts()
    assert set(counts.index) == set(schema.ROUTES)
    assert counts.max() - counts.min() <= 1


def test_sampling_is_reproducible_per_seed(contract_space: SearchSpace) -> None:
    a = contract_space.sample_tensor(16, seed=7)
    torch.testing.assert_close(a, contract_space.sample_tensor(16, seed=7))
    assert not torch.equal(a, contract_space.sample_tensor(16, seed=8))
    assert contract_space.sample_tensor(0, seed=0).shape == (0, 7)


def test_sampling_a_nearly_empty_region_is_a_config_error() -> None:
    space = SearchSpace(
        [
            ContinuousParameter("porosity", (0.0, 0.8)),
            ContinuousParameter("closed_pore_fraction", (0.0, 1.0)),
        ],
        [_ineq("porosity * closed_pore_fraction >= 0.7999999")],
    )
    with pytest.raises(ConfigError, match=r"parameter_constraints: .*feasible among"):
        space.sample(5, seed=0)


def test_samples_work_as_initial_conditions_for_botorch_mixed_optimisation(
    contract_space: SearchSpace,
) -> None:
    class PushAgainstConstraint(AcquisitionFunction):
        """Prefers high porosity and open pores: the optimum lies on the constraint."""

        def __init__(self) -> None:
            torch.nn.Module.__init__(self)

        def forward(self, X: Tensor) -> Tensor:
            return (X[..., 1] - X[..., 2] - 0.1 * X[..., 6]).sum(dim=-1)

    space = contract_space
    X, _ = optimize_acqf_mixed(
        PushAgainstConstraint(),
        bounds=space.bounds,
        q=1,
        num_restarts=2,
        fixed_features_list=space.fixed_features_list(),
        inequality_constraints=space.inequality_constraints,
        nonlinear_inequality_constraints=space.nonlinear_inequality_constraints,
        batch_initial_conditions=space.sample_tensor(2, seed=0).unsqueeze(1),
    )
    df = space.from_tensor(X)
    assert space.contains(df).all()
    assert df["route"].iloc[0] == "bottom_up"
    assert df["porosity"].iloc[0] * (1 - df["closed_pore_fraction"].iloc[0]) == pytest.approx(
        0.6, abs=1e-4
    )


# -- serialisation --------------------------------------------------------------------------


def test_search_space_round_trips_through_json(contract_space: SearchSpace) -> None:
    data = json.loads(json.dumps(contract_space.to_dict()))
    assert data["type"] == "SearchSpace"
    assert data["constraints"] == [PORE_VOLUME]
    again = SearchSpace.from_dict(data)
    assert again == contract_space
    torch.testing.assert_close(again.sample_tensor(8, seed=0), contract_space.sample_tensor(8, 0))


# -- decode -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def campaign_space() -> SearchSpace:
    """The search space of the two-objective example campaign (route free, d50 fixed)."""
    from poreml.design.config import CampaignConfig

    return CampaignConfig.from_toml("experiments/campaign_td_vs_buffering.toml").search_space()


def test_decoder_matches_the_search_space_transform(campaign_space: SearchSpace) -> None:
    space = campaign_space
    X = space.sample_tensor(16, seed=3)
    decoded = space.decode(X.unsqueeze(0))  # b x q x d → b x q
    frame = space.from_tensor(X)
    for name in schema.CONTINUOUS_DESIGN_COLUMNS:
        np.testing.assert_allclose(decoded[name][0].numpy(), frame[name].to_numpy(), rtol=1e-9)
    codes = decoded["route"][0].long().tolist()
    assert [schema.ROUTES[c] for c in codes] == frame["route"].tolist()


def test_decoder_is_differentiable_in_the_continuous_columns(campaign_space: SearchSpace) -> None:
    space = campaign_space
    X = space.sample_tensor(2, seed=0).requires_grad_(True)
    out = space.decode(X)
    out["pore_size_nm"].sum().backward()
    assert X.grad is not None and X.grad.abs().sum() > 0


def test_decode_keeps_batch_shapes_and_fills_fixed_columns(campaign_space: SearchSpace) -> None:
    space = campaign_space
    X = space.sample_tensor(6, seed=1)
    for batch in (X[0], X, X.reshape(2, 3, space.dim)):
        out = space.decode(batch)
        assert list(out) == list(schema.DESIGN_COLUMNS)
        assert all(v.shape == batch.shape[:-1] and v.dtype == X.dtype for v in out.values())
        assert (out["d50_um"] == 12.0).all()


def test_decode_gives_contract_route_codes_when_only_some_routes_are_allowed() -> None:
    space = SearchSpace(
        [
            ContinuousParameter("porosity", (0.0, 0.8)),
            CategoricalParameter("route", ["top_down", "transcription"]),
        ]
    )
    X = torch.tensor([[0.5, 0.0], [0.5, 1.0]], dtype=torch.double)
    assert space.decode(X)["route"].tolist() == [1.0, 2.0]
    only = SearchSpace(
        [ContinuousParameter("porosity", (0.0, 0.8)), FixedParameter("route", "bottom_up")]
    )
    assert space.decode(X)["porosity"].tolist() == pytest.approx([0.4, 0.4])
    assert only.decode(X[:, :1])["route"].tolist() == [0.0, 0.0]


# -- the contract box and the one sampler -----------------------------------------------------
def test_contract_box_frees_every_design_column_at_its_contract_bounds() -> None:
    space = SearchSpace.contract_box()
    assert space.feature_names == (*schema.CONTINUOUS_DESIGN_COLUMNS, "route")
    assert space.constraints == () and space.fixed_values == {}
    assert space.categories == {"route": schema.ROUTES}
    for p in space.parameters:
        col = schema.COLUMNS[p.name]
        if isinstance(p, ContinuousParameter):
            assert p.bounds == col.bounds
            assert p.scale == ("log" if col.log_scale else "linear")


def test_contract_box_samples_fill_the_contract_box() -> None:
    space = SearchSpace.contract_box()
    d = space.sample(64, seed=0)
    assert list(d.columns) == list(schema.DESIGN_COLUMNS)
    counts = d["route"].value_counts()
    assert set(counts.index) == {"bottom_up", "top_down", "transcription"}
    assert counts.min() >= 18
    assert d["pore_size_nm"].between(0.5, 1000).all()
    assert (np.log10(d["pore_size_nm"]) < 0.5).any()  # log scale reaches the small pores
    assert d["porosity"].between(0, 0.8).all()
    continuous = list(schema.CONTINUOUS_DESIGN_COLUMNS)
    head = space.sample(16, 0)
    # nested prefixes (continuous columns; routes are balanced within each call instead)
    pd.testing.assert_frame_equal(head[continuous], d.head(16)[continuous])
    assert head["route"].value_counts().max() - head["route"].value_counts().min() <= 1
    pd.testing.assert_frame_equal(space.sample(16, 0), head)  # deterministic
    assert not space.sample(16, 1).equals(head)  # seed sensitive


@pytest.mark.parametrize("n", [1, 8, 32])
def test_contract_box_samples_are_stratified_at_powers_of_two(n: int) -> None:
    frame = SearchSpace.contract_box().sample(n, seed=3)
    assert list(frame.columns) == list(schema.DESIGN_COLUMNS) and len(frame) == n
    for name in schema.CONTINUOUS_DESIGN_COLUMNS:
        col = schema.COLUMNS[name]
        lo, hi = col.bounds
        values = frame[name].to_numpy()
        assert ((values >= lo) & (values <= hi)).all()
        u = (np.log(values / lo) / np.log(hi / lo)) if col.log_scale else (values - lo) / (hi - lo)
        strata = np.floor(u * n).astype(int)
        assert sorted(strata) == list(range(n)), name  # one point per stratum


@pytest.mark.parametrize("n", [1, 7, 30])
def test_contract_box_samples_balance_the_routes_and_stay_in_bounds(n: int) -> None:
    frame = SearchSpace.contract_box().sample(n, seed=3)
    assert len(frame) == n
    counts = frame["route"].value_counts()
    assert set(counts.index) <= set(schema.ROUTES)
    assert counts.max() - (counts.min() if len(counts) == 3 else 0) <= 1
    for name in schema.CONTINUOUS_DESIGN_COLUMNS:
        lo, hi = schema.COLUMNS[name].bounds
        assert frame[name].between(lo, hi).all(), name


def test_contract_box_sampler_is_seeded_and_refuses_a_negative_size() -> None:
    space = SearchSpace.contract_box()
    a, b = space.sample(12, 1), space.sample(12, 1)
    assert a.equals(b)
    assert not a.equals(space.sample(12, 2))
    assert len(space.sample(0, 0)) == 0
    with pytest.raises(ValueError):
        space.sample(-1, 0)
