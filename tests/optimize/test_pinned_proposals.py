"""A short campaign's proposals for a fixed seed, pinned so refactors cannot move them.

The file ``data/pinned_proposals.json`` was written by this same loop (8 space-filling points,
measured on the noise-free-seeded virtual lab, then one model-based batch of 4 with the fast
acquisition settings). A change that alters these numbers changes what the campaign proposes:
regenerate the file only on purpose, and show the campaign benchmark unchanged when you do.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch

from poreml.data.schema import DESIGN_COLUMNS
from poreml.design.config import CampaignConfig
from poreml.optimize.acquisition import AcquisitionSettings
from poreml.optimize.campaign import Campaign
from poreml.virtual_lab import VirtualLab

PINNED = Path(__file__).with_name("data") / "pinned_proposals.json"
CONFIG = Path("experiments/campaign_td_vs_buffering.toml")


def test_short_campaign_proposes_the_pinned_designs() -> None:
    expected = json.loads(PINNED.read_text())
    torch.set_num_threads(1)
    campaign = Campaign(CampaignConfig.from_toml(CONFIG), settings=AcquisitionSettings.fast())
    lab = VirtualLab()
    for k, pinned in enumerate(expected):
        batch = campaign.ask(len(pinned))
        want = pd.DataFrame(pinned)[batch.columns]
        pd.testing.assert_frame_equal(batch, want, check_exact=False, rtol=1e-6, atol=0.0)
        campaign.tell(lab.measure(batch[["candidate_id", *DESIGN_COLUMNS]], seed=k))
    assert campaign.history["strategy"].tolist() == ["sobol", "qlognehvi"]
