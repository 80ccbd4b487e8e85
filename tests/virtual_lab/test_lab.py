"""DataFrame API of the virtual lab: columns, ids, validation, scenarios, prior predictive."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from poreml.data.schema import DESIGN_COLUMNS, DESIGN_DEFAULTS, MEASURED_COLUMNS, ROUTES
from poreml.exceptions import ConfigError, DataValidationError
from poreml.virtual_lab import (
    EXTRA_OUTPUTS,
    LabParams,
    VirtualLab,
    lab_params,
    measure,
    reference_designs,
    simulate,
)


def _designs() -> pd.DataFrame:
    return reference_designs().drop(columns=["candidate_id", "case"])


def test_output_columns_follow_the_contract():
    res = VirtualLab().evaluate(_designs())
    assert list(res.columns) == ["candidate_id", *DESIGN_COLUMNS, *MEASURED_COLUMNS, "feasible"]
    assert res["feasible"].dtype == bool
    assert all(res[c].dtype == np.float64 for c in MEASURED_COLUMNS)
    extra = VirtualLab().measure(_designs(), seed=0, extra=True)
    assert list(extra.columns) == [
        "candidate_id",
        *DESIGN_COLUMNS,
        *MEASURED_COLUMNS,
        "feasible",
        *EXTRA_OUTPUTS,
    ]


def test_candidate_ids_are_generated_or_kept():
    res = VirtualLab().evaluate(_designs())
    assert res["candidate_id"].tolist()[:3] == ["VL-0001", "VL-0002", "VL-0003"]
    kept = VirtualLab().evaluate(reference_designs().drop(columns="case"))
    assert kept["candidate_id"].tolist() == [f"T{i}" for i in range(14)]


def test_blank_or_repeated_candidate_ids_are_rejected():
    df = reference_designs(["T0", "T1", "T2"]).drop(columns="case")
    df.loc[1, "candidate_id"] = None
    df.loc[2, "candidate_id"] = "T0"
    with pytest.raises(DataValidationError) as err:
        VirtualLab().evaluate(df)
    assert len(err.value.problems) == 2


def test_evaluate_matches_the_golden_values_and_the_array_path():
    designs = reference_designs().drop(columns="case")
    res = VirtualLab().evaluate(designs)
    assert res.loc[13, "ice_pct"] == pytest.approx(88.11, rel=1e-3)
    arrays = simulate({c: designs[c].to_numpy() for c in DESIGN_COLUMNS})
    for col in MEASURED_COLUMNS:
        np.testing.assert_array_equal(res[col].to_numpy(), arrays[col])
    pd.testing.assert_frame_equal(res, VirtualLab().measure(designs, noise=False))


def test_columns_left_out_take_the_contract_defaults():
    res = VirtualLab().evaluate(pd.DataFrame({"porosity": [0.3]}))
    for name, default in DESIGN_DEFAULTS.items():
        assert res.loc[0, name] == default
    assert res.loc[0, "tap_density_g_cm3"] == pytest.approx(0.8926, rel=1e-3)  # T13


def test_designs_are_reported_as_requested_not_as_realised():
    df = pd.DataFrame(
        {"route": ["transcription"], "pore_size_nm": [500.0], "si_domain_nm": [200.0]}
    )
    res = VirtualLab().evaluate(df, extra=True)
    assert res.loc[0, "pore_size_nm"] == 500.0 and res.loc[0, "si_domain_nm"] == 200.0
    assert res.loc[0, "pore_size_nm_eff"] == 100.0 and res.loc[0, "si_domain_nm_eff"] == 30.0
    assert not res.loc[0, "feasible"]


def test_values_outside_contract_bounds_but_inside_the_physical_domain_are_simulated():
    df = pd.DataFrame({"carbon_wt_pct": [99.9], "porosity": [0.85], "d50_um": [40.0]})
    res = VirtualLab().evaluate(df)
    assert np.isfinite(res[list(MEASURED_COLUMNS)].to_numpy()).all()


def test_designs_outside_the_physical_domain_are_rejected_with_every_problem():
    df = pd.DataFrame(
        {
            "route": ["bottom_up", "sol_gel", "top_down", "transcription"],
            "porosity": [0.95, 0.3, 0.3, 0.3],
            "pore_size_nm": [20.0, 20.0, 0.0, 20.0],
            "si_domain_nm": [20.0, 20.0, 20.0, -1.0],
            "closed_pore_fraction": [0.5, 0.5, 1.5, np.nan],
        }
    )
    with pytest.raises(DataValidationError) as err:
        VirtualLab().evaluate(df, source="bad.csv")
    cells = {(p.row, p.column) for p in err.value.problems}
    assert {
        (1, "porosity"),
        (2, "route"),
        (3, "pore_size_nm"),
        (3, "closed_pore_fraction"),
        (4, "si_domain_nm"),
        (4, "closed_pore_fraction"),
    } <= cells
    assert "bad.csv" in str(err.value)


def test_unknown_columns_are_rejected_and_predictions_dropped():
    with pytest.raises(DataValidationError, match="porosty"):
        VirtualLab().evaluate(pd.DataFrame({"porosty": [0.3]}))
    res = VirtualLab().evaluate(pd.DataFrame({"porosity": [0.3], "predicted_ice_pct": [90.0]}))
    assert "predicted_ice_pct" not in res.columns


def test_scenarios_and_instances_change_the_lab():
    designs = _designs()
    base = VirtualLab().evaluate(designs)
    no_fec = VirtualLab("no_FEC").evaluate(designs)
    assert (no_fec["retention_pct"] <= base["retention_pct"] + 1e-12).all()
    inst = VirtualLab(instance_seed=3)
    assert inst.params == lab_params("baseline", 3)
    assert inst.scenario == "baseline" and inst.instance_seed == 3
    assert not np.allclose(inst.evaluate(designs)["ice_pct"], base["ice_pct"])
    assert "no_FEC" in repr(VirtualLab("no_FEC"))


def test_a_lab_can_be_built_from_serialised_parameters():
    params = LabParams.from_dict(lab_params("high_loading", 9).to_dict())
    lab = VirtualLab(params=params)
    pd.testing.assert_frame_equal(
        lab.evaluate(_designs()), VirtualLab("high_loading", 9).evaluate(_designs())
    )


def test_unknown_scenario_is_a_config_error():
    with pytest.raises(ConfigError, match="baseline"):
        VirtualLab("nope")


def test_module_level_measure_matches_the_class():
    designs = _designs()
    pd.testing.assert_frame_equal(
        measure(designs, scenario="fast_charge_2C", seed=4),
        VirtualLab("fast_charge_2C").measure(designs, seed=4),
    )


def test_large_batches_are_processed_in_chunks_without_changing_results(uniform_designs):
    x = uniform_designs(30_000, 31)
    frame = pd.DataFrame(x).assign(route=lambda f: np.asarray(ROUTES)[f["route"]])
    res = VirtualLab().evaluate(frame)
    assert len(res) == 30_000
    assert res["candidate_id"].iloc[-1] == "VL-30000"
    tail = VirtualLab().evaluate(frame.iloc[-7:].reset_index(drop=True))
    np.testing.assert_array_equal(
        res[list(MEASURED_COLUMNS)].iloc[-7:].to_numpy(), tail[list(MEASURED_COLUMNS)].to_numpy()
    )


# --- spec section 8.3: prior-predictive check --------------------------------------------------


def _prior_cases(rng: np.random.Generator, n: int) -> dict:
    def uni(lo, hi):
        return rng.uniform(lo, hi, n)

    def log(lo, hi):
        return 10 ** rng.uniform(np.log10(lo), np.log10(hi), n)

    return {
        "PC/Np-Si": (
            {
                "route": "top_down",
                "porosity": 0.20,
                "pore_size_nm": log(10, 200),
                "si_domain_nm": log(20, 200),
                "carbon_wt_pct": uni(20, 60),
                "closed_pore_fraction": uni(0, 0.6),
                "shell_nm": uni(2, 15),
                "d50_um": uni(4, 15),
            },
            {"tap_density_g_cm3": 0.93, "ssa_m2_g": 8.8, "ice_pct": 82.5, "expansion_pct": 60.6},
        ),
        "CNT@Si@C": (
            {
                "route": "bottom_up",
                "pore_size_nm": 20.0,
                "porosity": uni(0.05, 0.3),
                "si_domain_nm": log(20, 100),
                "carbon_wt_pct": uni(30, 70),
                "closed_pore_fraction": uni(0.2, 0.8),
                "shell_nm": uni(2, 10),
                "d50_um": uni(5, 15),
            },
            {"tap_density_g_cm3": 1.2, "retention_pct": 92.0},
        ),
        "AMPSi@C": (
            {
                "route": "top_down",
                "pore_size_nm": log(30, 200),
                "porosity": uni(0.2, 0.5),
                "si_domain_nm": log(50, 200),
                "carbon_wt_pct": uni(5, 20),
                "closed_pore_fraction": uni(0, 0.4),
                "shell_nm": uni(2, 8),
                "d50_um": uni(5, 15),
            },
            {"tap_density_g_cm3": 0.84, "ssa_m2_g": 12.6, "ice_pct": 80.3},
        ),
        "D-Si@RF–CTP": (
            {
                "route": "top_down",
                "pore_size_nm": log(10, 200),
                "porosity": uni(0.1, 0.4),
                "si_domain_nm": log(30, 200),
                "carbon_wt_pct": uni(20, 50),
                "closed_pore_fraction": uni(0.4, 0.9),
                "shell_nm": uni(5, 20),
                "d50_um": uni(5, 15),
            },
            {"tap_density_g_cm3": 0.86, "ssa_m2_g": 3.3, "ice_pct": 82.0},
        ),
        "Mg-thermic pSi + CVD C": (
            {
                "route": "top_down",
                "pore_size_nm": log(10, 100),
                "porosity": uni(0.2, 0.5),
                "si_domain_nm": log(10, 50),
                "carbon_wt_pct": uni(8, 30),
                "closed_pore_fraction": uni(0, 0.5),
                "shell_nm": uni(2, 8),
                "d50_um": uni(3, 10),
            },
            {"tap_density_g_cm3": 0.8, "expansion_pct": 85.0},
        ),
        "MGS graphite–Si": (
            {
                "route": "bottom_up",
                "pore_size_nm": log(20, 200),
                "porosity": uni(0.03, 0.15),
                "si_domain_nm": log(30, 150),
                "carbon_wt_pct": uni(70, 90),
                "closed_pore_fraction": uni(0.2, 0.6),
                "shell_nm": uni(2, 10),
                "d50_um": uni(10, 20),
                "graphitic_fraction": uni(0.7, 0.95),
            },
            {"tap_density_g_cm3": 1.13, "ssa_m2_g": 2.21},
        ),
        "np-Si precursor": (
            {
                "route": "transcription",
                "carbon_wt_pct": 99.9,
                "si_domain_nm": 5.0,
                "closed_pore_fraction": 0.0,
                "shell_nm": 0.0,
                "porosity": uni(0.45, 0.65),
                "pore_size_nm": log(1, 5),
                "d50_um": uni(5, 15),
            },
            {"tap_density_g_cm3": 0.48, "ssa_m2_g": 972.0},
        ),
    }


def test_prior_predictive_check_8_3():
    n = 5000
    cases = _prior_cases(np.random.default_rng(83), n)
    lab = VirtualLab()
    inside = 0
    for k, (fixed_and_sampled, reported) in enumerate(cases.values()):
        frame = pd.DataFrame(
            {c: np.broadcast_to(v, n) for c, v in fixed_and_sampled.items()}
        ).assign(graphitic_fraction=fixed_and_sampled.get("graphitic_fraction", 0.0))
        res = lab.measure(frame, seed=k)
        for col, value in reported.items():
            lo, hi = np.quantile(res[col], [0.05, 0.95])
            assert lo <= value <= hi, f"{col} {value} outside [{lo:.3g}, {hi:.3g}]"
            inside += 1
        if "retention_pct" in reported:  # CNT@Si@C: "< 20 %" swelling
            assert np.quantile(res["electrode_swelling_pct"], 0.05) <= 20.0
            inside += 1
    assert inside == 19
