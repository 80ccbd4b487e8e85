"""The domain of applicability: neighbour distance in the standardised feature space, calibrated
on held-out training rows, with the training ranges and seen routes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from poreml.data.schema import CONTINUOUS_DESIGN_COLUMNS, DESIGN_COLUMNS
from poreml.surrogates import TARGETS, load, make
from poreml.surrogates.domain import NEIGHBORS, QUANTILE
from poreml.surrogates.evaluation import virtual_lab_data
from poreml.surrogates.features import LOG_FEATURES

CHAMPION = Path(__file__).resolve().parents[2] / "models" / "champion"
"""The shipped model: a cascade of GPs on 256 virtual-lab rows (seed 0)."""


@pytest.fixture(scope="module")
def champion():
    return load(CHAMPION)


@pytest.fixture(scope="module")
def champion_training() -> pd.DataFrame:
    """The champion's training designs, rebuilt as ``poreml train --n 256 --seed 0`` draws them."""
    return virtual_lab_data(256, seed=0)[list(DESIGN_COLUMNS)]


def _trained_value(model, name: str, which: str) -> float:
    value = getattr(model.domain_, which)[name]
    return 10.0**value if name in LOG_FEATURES else value


def _far_corner(model, route: str) -> pd.DataFrame:
    """Every continuous design column at its largest trained value: inside the training box."""
    row = {name: _trained_value(model, name, "high") for name in CONTINUOUS_DESIGN_COLUMNS}
    return pd.DataFrame([{"route": route, **row}])


def test_the_champion_was_calibrated_on_its_own_training_rows(champion, champion_training):
    encoded = champion.encode(champion_training).to_numpy()
    np.testing.assert_allclose(champion.domain_.reference, encoded, rtol=1e-10, atol=1e-12)
    assert champion.domain_.neighbors == NEIGHBORS and champion.domain_.quantile == QUANTILE


def test_a_far_corner_inside_the_training_box_is_out_of_domain(champion, champion_training):
    for route in sorted(set(champion_training["route"])):
        corner = _far_corner(champion, route)
        for name in CONTINUOUS_DESIGN_COLUMNS:  # inside the bounding box, column by column
            assert champion_training[name].min() <= corner[name].iloc[0]
            assert corner[name].iloc[0] <= champion_training[name].max() * (1 + 1e-12)
        assert champion.domain_distance(corner)[0] > 1.0
        assert not champion.in_domain(corner)[0]
        table = champion.predict_table(corner)
        assert table["domain_distance"].iloc[0] > 1.0 and not table["in_domain"].iloc[0]


def test_at_least_95_percent_of_fresh_training_like_designs_are_in_domain(champion):
    fresh = virtual_lab_data(1000, seed=1)[list(DESIGN_COLUMNS)]
    assert champion.in_domain(fresh).mean() >= 0.95
    assert (champion.domain_distance(fresh) <= 1.0).mean() >= 0.95


def _range_ratio(model, X: pd.DataFrame) -> np.ndarray:
    """Largest excursion of a column from its widened training range's centre (1 = edge)."""
    dom, worst = model.domain_, np.zeros(len(X))
    for name in CONTINUOUS_DESIGN_COLUMNS:
        v = X[name].to_numpy(float)
        v = np.log10(v) if name in LOG_FEATURES else v
        lo, hi = dom.low[name], dom.high[name]
        worst = np.maximum(worst, np.abs(v - (lo + hi) / 2) / ((0.5 + dom.margin) * (hi - lo)))
    return worst


def test_domain_distance_is_the_larger_of_neighbour_distance_and_range_ratio(
    champion, champion_training
):
    fresh = virtual_lab_data(300, seed=2)[list(DESIGN_COLUMNS)]
    far = fresh.assign(porosity=0.9, pore_size_nm=1e4)  # outside the trained ranges
    X = pd.concat([fresh, far], ignore_index=True)
    index = NearestNeighbors(n_neighbors=NEIGHBORS).fit(
        champion.encode(champion_training).to_numpy()
    )
    knn = index.kneighbors(champion.encode(X).to_numpy())[0].mean(axis=1)
    expected = np.maximum(knn / champion.domain_.threshold, _range_ratio(champion, X))
    got = champion.domain_distance(X)
    np.testing.assert_allclose(got, expected, rtol=1e-8)  # the ranges carry a 1e-9 pad
    # monotone in the neighbour distance: never below it, and it alone decides past the box
    assert (got >= knn / champion.domain_.threshold - 1e-12).all()
    assert (got[len(fresh) :] > 1).all() and not champion.in_domain(far).any()


def test_moving_away_from_the_data_raises_the_distance_past_one(champion, champion_training):
    start = champion_training.iloc[[0]].reset_index(drop=True)
    corner = _far_corner(champion, str(start["route"].iloc[0]))
    steps = []
    for t in np.linspace(0.0, 1.0, 6):
        row = start.copy()
        for name in CONTINUOUS_DESIGN_COLUMNS:
            a, b = start[name].iloc[0], corner[name].iloc[0]
            row[name] = a * (b / a) ** t if name in LOG_FEATURES else a + t * (b - a)
        steps.append(row)
    distance = champion.domain_distance(pd.concat(steps, ignore_index=True))
    assert distance[0] < 1.0 < distance[-1]


def test_training_rows_count_as_in_domain_and_the_threshold_follows_the_quantile(train_data):
    X, y = train_data
    model = make("ridge").fit(X, y)
    dom = model.domain_
    reference = dom.reference
    k = min(NEIGHBORS, len(X) - 1)
    dist = NearestNeighbors(n_neighbors=k + 1).fit(reference).kneighbors(reference)[0]
    held_out = dist[:, 1:].mean(axis=1)
    expected = np.quantile(held_out, QUANTILE) * (1 + model.domain_margin)
    assert dom.threshold == pytest.approx(expected, rel=1e-12)
    assert (held_out / dom.threshold <= 1.0).mean() >= QUANTILE
    assert model.in_domain(X).mean() >= QUANTILE


def test_a_wider_margin_widens_the_threshold(train_data):
    X, y = train_data
    narrow = make("mean", domain_margin=0.0).fit(X, y)
    wide = make("mean", domain_margin=0.5).fit(X, y)
    assert wide.domain_.threshold == pytest.approx(1.5 * narrow.domain_.threshold)


def test_fewer_training_rows_than_neighbours_still_calibrate(train_data):
    X, y = train_data
    model = make("mean").fit(X.iloc[:3], y.iloc[:3])
    assert model.domain_.neighbors == 2
    assert np.isfinite(model.domain_distance(X)).all()


def test_domain_distance_round_trips_through_save_and_load(train_data, test_designs, tmp_path):
    X, y = train_data
    model = make("ridge").fit(X, y)
    folder = model.save(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    assert config["fitted"]["domain"]["threshold"] == model.domain_.threshold
    assert "domain.reference" in torch.load(folder / "tensors.pt", weights_only=True)
    loaded = load(folder)
    np.testing.assert_array_equal(loaded.domain_.reference, model.domain_.reference)
    np.testing.assert_array_equal(
        loaded.domain_distance(test_designs), model.domain_distance(test_designs)
    )
    pd.testing.assert_frame_equal(
        loaded.predict_table(test_designs), model.predict_table(test_designs)
    )


def test_a_model_saved_with_training_ranges_only_loads_with_the_box_rule(
    champion, champion_training, tmp_path
):
    folder = champion.save(tmp_path / "old")
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    for key in ("neighbors", "quantile", "threshold"):
        del config["fitted"]["domain"][key]
    config_path.write_text(json.dumps(config))
    tensors = torch.load(folder / "tensors.pt", weights_only=True)
    del tensors["domain.reference"]
    torch.save(tensors, folder / "tensors.pt")

    old = load(folder)
    assert old.domain_.threshold is None and old.domain_.reference is None
    route = str(champion_training["route"].iloc[0])
    corner = _far_corner(champion, route)
    # the box rule it was saved with: a corner of the box is inside, beyond the margin is not
    assert old.in_domain(corner)[0] and old.domain_distance(corner)[0] <= 1.0
    lo, hi = champion_training["porosity"].min(), champion_training["porosity"].max()
    beyond = corner.assign(porosity=min(hi + 0.2 * (hi - lo), 0.9))
    assert not old.in_domain(beyond)[0] and old.domain_distance(beyond)[0] > 1.0
    pd.testing.assert_frame_equal(
        old.predict(champion_training.head(5)), champion.predict(champion_training.head(5))
    )


def test_every_target_of_the_champion_uses_its_physical_warp(champion):
    transforms = dict(zip(champion.targets_, champion.target_scaler_.transforms, strict=True))
    assert transforms == {
        "ice_pct": "logit_pct",
        "retention_pct": "logit_pct",
        "expansion_pct": "softplus",
        "tap_density_g_cm3": "log",
        "ssa_m2_g": "log",
        "specific_capacity_mah_g": "softplus",
    }
    assert set(transforms) == set(TARGETS)


def test_small_batches_brute_force_and_large_ones_the_index_agree(champion, monkeypatch):
    from poreml.design.search_space import SearchSpace
    from poreml.surrogates import domain

    X = SearchSpace.contract_box().sample(300, seed=11)[list(DESIGN_COLUMNS)]
    indexed = champion.domain_distance(X)  # 300 rows > BRUTE_FORCE_ROWS: the index
    monkeypatch.setattr(domain, "BRUTE_FORCE_ROWS", 10_000)
    brute = champion.domain_distance(X)
    np.testing.assert_allclose(brute, indexed, rtol=1e-12)
    single = np.concatenate([champion.domain_distance(X.iloc[[i]]) for i in range(5)])
    np.testing.assert_allclose(single, indexed[:5], rtol=1e-12)
