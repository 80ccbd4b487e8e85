"""The declared vocabulary matches CONTRACT.md section 1."""

from __future__ import annotations

from poreml.data.schema import (
    COLUMNS,
    DESIGN_COLUMNS,
    DESIGN_DEFAULTS,
    MEASURED_COLUMNS,
    ROUTES,
)


def test_design_columns_defaults_and_ranges_follow_the_contract() -> None:
    assert DESIGN_COLUMNS == (
        "route",
        "pore_size_nm",
        "porosity",
        "closed_pore_fraction",
        "carbon_wt_pct",
        "si_domain_nm",
        "shell_nm",
        "d50_um",
        "graphitic_fraction",
    )
    assert DESIGN_DEFAULTS == {
        "route": "transcription",
        "pore_size_nm": 20.0,
        "porosity": 0.3,
        "closed_pore_fraction": 0.5,
        "carbon_wt_pct": 40.0,
        "si_domain_nm": 20.0,
        "shell_nm": 5.0,
        "d50_um": 10.0,
        "graphitic_fraction": 0.0,
    }
    assert COLUMNS["pore_size_nm"].bounds == (0.5, 1000.0)
    assert COLUMNS["porosity"].bounds == (0.0, 0.8)
    assert COLUMNS["carbon_wt_pct"].bounds == (2.0, 90.0)
    assert COLUMNS["si_domain_nm"].bounds == (1.0, 3000.0)
    assert COLUMNS["shell_nm"].bounds == (0.0, 50.0)
    assert COLUMNS["d50_um"].bounds == (2.0, 25.0)
    assert ROUTES == ("bottom_up", "top_down", "transcription")


def test_measured_columns_follow_the_contract() -> None:
    assert MEASURED_COLUMNS == (
        "tap_density_g_cm3",
        "ssa_m2_g",
        "specific_capacity_mah_g",
        "ice_pct",
        "retention_pct",
        "expansion_pct",
        "electrode_swelling_pct",
        "volumetric_capacity_mah_cm3",
        "strain_buffering",
        "electrolyte_uptake_ul_mg",
    )


def test_defaults_lie_inside_bounds() -> None:
    for name, default in DESIGN_DEFAULTS.items():
        col = COLUMNS[name]
        if col.bounds:
            assert col.bounds[0] <= default <= col.bounds[1]
        else:
            assert default in col.categories
