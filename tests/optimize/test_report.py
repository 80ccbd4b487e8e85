"""Campaign plots are PNG files drawn without a display."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from poreml.design.config import CampaignConfig
from poreml.optimize.campaign import Campaign
from poreml.optimize.report import pareto_plot, write_reports

CONFIG = "experiments/campaign_td_vs_buffering.toml"


def test_reports_are_png_files(tmp_path: Path) -> None:
    c = Campaign(CampaignConfig.from_toml(CONFIG))
    batch = c.ask(3)
    c.tell(
        pd.DataFrame(
            {
                "candidate_id": batch["candidate_id"],
                "tap_density_g_cm3": [1.0, 0.8, 1.2],
                "expansion_pct": [40.0, 10.0, 5.0],
                "ice_pct": [90.0, 90.0, 90.0],
                "retention_pct": [90.0, 70.0, 90.0],
                "specific_capacity_mah_g": [1200.0, 1200.0, 1200.0],
                "feasible": [True, True, False],
            }
        )
    )
    paths = write_reports(c.observations, c.hypervolume_trace, c.config, tmp_path)
    assert [p.name for p in paths] == ["pareto.png", "hypervolume.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pareto_plot_marks_the_three_kinds_of_points() -> None:
    cfg = CampaignConfig.from_toml(CONFIG)
    obs = pd.DataFrame(
        {
            "tap_density_g_cm3": [1.0, 0.9, 1.3],
            "expansion_pct": [40.0, 30.0, 5.0],
            "ice_pct": [90.0, 60.0, 90.0],
            "retention_pct": [90.0, 90.0, 90.0],
            "specific_capacity_mah_g": [1200.0, 1200.0, 1200.0],
            "feasible": [True, True, False],
        }
    )
    fig = pareto_plot(obs, cfg.objectives, cfg.outcome_constraints)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert {"meets constraints", "violates / not measured", "failed synthesis"} <= set(labels)
    assert "Pareto front (1)" in labels
