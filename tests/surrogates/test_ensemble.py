"""Deep ensemble: vectorised members, masked NLL, devices, pre-training and fine-tuning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import r2_score

from poreml.exceptions import ConfigError
from poreml.surrogates import TARGETS
from poreml.surrogates.ensemble import BatchedMLP, EnsembleSurrogate, resolve_device

SMALL = {"n_members": 3, "hidden_sizes": (16, 16), "epochs": 40, "patience": 10}


def test_batched_members_match_their_own_sequential_evaluation() -> None:
    net = BatchedMLP(4, (5, 8, 3), torch.Generator().manual_seed(0))
    x = torch.randn(7, 5)
    out = net(x)
    assert out.shape == (4, 7, 3)
    for m in range(4):
        h = torch.nn.functional.silu(x @ net.weights[0][m] + net.biases[0][m])
        torch.testing.assert_close(out[m], h @ net.weights[1][m] + net.biases[1][m])
    assert not torch.allclose(out[0], out[1])  # independent initialisation


def test_cuda_requested_without_cuda_falls_back_to_cpu_with_a_warning(
    monkeypatch, train_data
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    X, y = train_data
    with pytest.warns(UserWarning, match="CUDA is not available"):
        model = EnsembleSurrogate(device="cuda", **SMALL).fit(X, y)
    assert model.device_ == torch.device("cpu")
    assert model.net_.weights[0].device.type == "cpu"
    assert np.isfinite(model.predict(X).to_numpy()).all()


def test_device_auto_and_environment_setting(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("POREML_DEVICE", "cpu")
    assert resolve_device(None) == torch.device("cpu")
    with pytest.raises(ConfigError, match="device"):
        resolve_device("tpu")


def test_pretraining_on_the_virtual_lab_then_fine_tuning_beats_fine_tuning_alone(
    lab_data, lab_truth
) -> None:
    # Real rows come from a randomised instance (the "real" physics differs from the lab's).
    X_lab, _ = lab_truth(1500, seed=31)
    _, y_lab = lab_truth(1500, seed=31)
    X, y = lab_data(20, seed=32, instance_seed=3)
    X_test, truth = lab_truth(400, seed=33, instance_seed=3)
    settings = {"n_members": 4, "hidden_sizes": (32, 32), "epochs": 120, "patience": 20}
    alone = EnsembleSurrogate(random_state=0, **settings).fit(X, y)
    tuned = EnsembleSurrogate(random_state=0, warm_start=True, **settings)
    tuned.pretrain(X_lab, y_lab).fit(X, y)
    assert tuned.pretrained_
    r2_alone = r2_score(truth["ice_pct"], alone.predict(X_test)["ice_pct"])
    r2_tuned = r2_score(truth["ice_pct"], tuned.predict(X_test)["ice_pct"])
    assert r2_tuned > 0.8
    assert r2_tuned > r2_alone + 0.2
    assert tuned.n_train_ == len(X)  # the domain is that of the real rows


def test_fit_after_pretrain_without_warm_start_warns(train_data) -> None:
    X, y = train_data
    model = EnsembleSurrogate(**SMALL).pretrain(X, y)
    with pytest.warns(UserWarning, match="discards the pre-trained weights"):
        model.fit(X, y)


def test_warm_start_keeps_the_encoding_and_continues_from_the_weights(train_data) -> None:
    X, y = train_data
    model = EnsembleSurrogate(warm_start=True, **SMALL).fit(X, y)
    encoder = model.encoder_
    before = [w.detach().clone() for w in model.net_.weights]
    model.fit(X.iloc[:12], y.iloc[:12])
    assert model.encoder_ is encoder
    assert model.n_train_ == 12
    assert any(not torch.equal(b, w) for b, w in zip(before, model.net_.weights, strict=True))


def test_fine_tuning_accepts_rows_with_missing_design_cells(train_data) -> None:
    X, y = train_data
    model = EnsembleSurrogate(warm_start=True, **SMALL).pretrain(X, y)
    real = X.iloc[:10].copy()
    real["porosity"] = real["porosity"].astype(object)
    real.loc[real.index[:4], "porosity"] = None
    model.fit(real, y.iloc[:10])
    assert "missing:porosity" in model.feature_names_out_
    assert np.isfinite(model.predict(real).to_numpy()).all()


def test_missing_targets_are_masked_out_of_the_loss(train_data) -> None:
    X, y = train_data
    y = y.copy()
    y.loc[y.index[::2], "ice_pct"] = np.nan
    y.loc[y.index[1::3], "expansion_pct"] = np.nan
    model = EnsembleSurrogate(**SMALL).fit(X, y)
    assert model.n_observed_["ice_pct"] == len(y) // 2
    assert np.isfinite(model.predict(X).to_numpy()).all()


def test_member_spread_gives_epistemic_uncertainty(train_data, test_designs) -> None:
    X, y = train_data
    model = EnsembleSurrogate(**SMALL).fit(X, y)
    _, latent = model.predict(test_designs, return_std=True, observation_noise=False)
    _, total = model.predict(test_designs, return_std=True)
    assert (latent.to_numpy() > 0).all()
    assert (total.to_numpy() > latent.to_numpy()).all()


@pytest.mark.parametrize("bootstrap", [True, False])
def test_early_stopping_ends_training_before_the_epoch_limit(bootstrap, train_data) -> None:
    X, y = train_data
    model = EnsembleSurrogate(
        n_members=2, hidden_sizes=(64, 64), epochs=3000, patience=5, bootstrap=bootstrap
    ).fit(X, y)
    assert model.n_epochs_ < 3000


def test_nothing_random_escapes_the_seed(train_data, test_designs) -> None:
    X, y = train_data
    torch.manual_seed(123)
    a = EnsembleSurrogate(random_state=5, **SMALL).fit(X, y).predict(test_designs)
    torch.manual_seed(456)
    b = EnsembleSurrogate(random_state=5, **SMALL).fit(X, y).predict(test_designs)
    c = EnsembleSurrogate(random_state=6, **SMALL).fit(X, y).predict(test_designs)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


@pytest.mark.parametrize(
    ("setting", "value"),
    [("n_members", 0), ("hidden_sizes", ()), ("lr", 0.0), ("validation_fraction", 1.5)],
)
def test_invalid_ensemble_settings_raise_config_error(setting, value, train_data) -> None:
    X, y = train_data
    with pytest.raises(ConfigError, match=setting):
        EnsembleSurrogate(**{**SMALL, setting: value}).fit(X, y)


def test_all_targets_are_learned_by_one_network(train_data) -> None:
    X, y = train_data
    model = EnsembleSurrogate(**SMALL).fit(X, y)
    assert model.net_.sizes[-1] == 2 * len(TARGETS)
