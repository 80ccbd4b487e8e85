"""Reference designs of the virtual-lab spec (section 8.1, cases T0-T13).

The reference designs are the verification cases of the spec: T0 is the reference design of
the trend sweeps (section 8.5), T1-T7 the seven literature materials of section 8.2, T8-T12
knowledge anchors (section 8.4) and T13 the contract default design.
"""

from __future__ import annotations

import pandas as pd

from poreml.data.schema import CONTINUOUS_DESIGN_COLUMNS, DESIGN_COLUMNS

__all__ = ["REFERENCE_CASES", "reference_designs"]

# (id, case name, route, pore_size_nm, porosity, closed_pore_fraction, carbon_wt_pct,
#  si_domain_nm, shell_nm, d50_um, graphitic_fraction): spec section 8.1.
REFERENCE_CASES: tuple[tuple[str | float, ...], ...] = (
    ("T0", "R0 reference design", "bottom_up", 30, 0.4, 0.3, 40, 60, 5, 8, 0),
    ("T1", "PC/Np-Si", "top_down", 40, 0.2, 0.3, 50, 50, 5, 7, 0),
    ("T2", "CNT@Si@C", "bottom_up", 20, 0.12, 0.5, 60, 30, 5, 10, 0),
    ("T3", "AMPSi@C", "top_down", 70, 0.3, 0.2, 10, 100, 3, 10, 0),
    ("T4", "D-Si@RF–CTP", "top_down", 50, 0.25, 0.7, 35, 80, 10, 8, 0),
    ("T5", "Mg-thermic pSi + CVD C", "top_down", 30, 0.35, 0.2, 15, 30, 3, 5, 0),
    ("T6", "MGS graphite–Si", "bottom_up", 50, 0.08, 0.4, 85, 60, 5, 15, 0.85),
    ("T7", "np-Si precursor (read as C scaffold)", "transcription", 2.6, 0.55, 0, 99.9, 5, 0, 8, 0),
    ("T8", "CVD-Si in porous C", "transcription", 2, 0.3, 0.95, 50, 5, 8, 8, 0),
    ("T9", "pomegranate (sealed void)", "bottom_up", 40, 0.62, 0.9, 25, 80, 10, 5, 0),
    ("T10", "dense micron Si, 5 % C", "bottom_up", 100, 0.02, 0, 5, 3000, 0, 5, 0),
    ("T11", "bare nano-Si granules", "bottom_up", 25, 0.35, 0, 5, 50, 0, 5, 0),
    ("T12", "graphite", "bottom_up", 50, 0.02, 0.3, 99.9, 50, 0, 15, 1),
    ("T13", "contract default design", "transcription", 20, 0.3, 0.5, 40, 20, 5, 10, 0),
)


def reference_designs(cases: list[str] | None = None) -> pd.DataFrame:
    """Return the reference designs T0-T13 of spec section 8.1.

    Args:
        cases: ids to keep (e.g. ``["T1", "T2"]``), in that order; all when None.

    Returns:
        Frame with ``candidate_id`` (the case id), ``case`` (its name) and the nine design
        columns in contract order; one row per case.
    """
    frame = pd.DataFrame(
        list(REFERENCE_CASES),
        columns=["candidate_id", "case", *DESIGN_COLUMNS],
    )
    frame[list(CONTINUOUS_DESIGN_COLUMNS)] = frame[list(CONTINUOUS_DESIGN_COLUMNS)].astype(float)
    if cases is not None:
        unknown = [c for c in cases if c not in set(frame["candidate_id"])]
        if unknown:
            raise KeyError(f"unknown reference case(s) {unknown}; known: T0 … T13")
        frame = frame.set_index("candidate_id").loc[cases].reset_index()
    return frame.reset_index(drop=True)
