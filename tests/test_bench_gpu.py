"""``experiments/bench_gpu.py`` on tiny sizes on the CPU: result structure and the no-CUDA line."""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

from poreml.optimize.acquisition import AcquisitionSettings

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "bench_gpu.py"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gpu"] = module  # dataclasses look their module up while loading
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_gpu", None)


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def small_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short GP hyperparameter fits: the tests check structure, not model quality."""
    import poreml.optimize.models as models

    monkeypatch.setattr(models, "fit_native_gp", functools.partial(models.fit_native_gp, maxiter=5))


def _tiny(bench: ModuleType) -> object:
    return bench.Plan(
        ensemble_rows=(64, 128),
        cpu_max_rows=64,
        epochs=2,
        members=2,
        batch_size=32,
        observations=10,
        acq_points=(8, 16),
        cpu_max_points=8,
        acq_batch=4,
        q=1,
        settings=AcquisitionSettings(num_restarts=2, raw_samples=8, mc_samples=8, maxiter=2),
        seed=0,
    )


@pytest.mark.usefixtures("no_cuda")
def test_devices_without_cuda_fall_back_to_the_cpu_and_say_so(bench: ModuleType) -> None:
    for requested in ("all", "cuda"):
        devices, lines = bench.choose_devices(requested)
        assert devices == ["cpu"]
        assert lines[0] == bench.NO_CUDA_LINE
    assert bench.choose_devices("cpu") == (["cpu"], ["CPU only (--device cpu)"])


@pytest.mark.usefixtures("no_cuda", "small_fits")
def test_tiny_run_records_cpu_figures_and_the_no_cuda_line(bench: ModuleType) -> None:
    results = bench.run_benchmark(_tiny(bench), "all")
    assert results["devices"] == ["cpu"]
    assert bench.NO_CUDA_LINE in results["device_lines"]
    assert len(results["load_average_before"]) == len(results["load_average_after"]) == 3

    ens = results["ensemble"]
    assert [(r["device"], r["rows"], r["epochs"]) for r in ens["rows"]] == [("cpu", 64, 2)]
    assert ens["rows"][0]["rows_per_second"] > 0 and "speedup" not in ens["rows"][0]
    assert len(ens["skipped"]) == 1 and ens["skipped"][0].startswith("cpu: 128 rows skipped")

    acq = results["acquisition"]
    assert acq["model"] == "campaign" and not acq["errors"]
    assert acq["outputs"][-1] == "feasible"
    assert [(r["device"], r["points"]) for r in acq["evaluations"]] == [("cpu", 8)]
    assert acq["evaluations"][0]["finite"] == 8
    assert acq["skipped"][0].startswith("cpu: N = 16 skipped")
    [suggest] = acq["suggest"]
    assert suggest["device"] == "cpu" and suggest["q"] == 1 and suggest["seconds"] > 0
    assert suggest["candidates_shape"] == [1, 7]

    results["command"] = "python experiments/bench_gpu.py --test"
    text = bench.report(results)
    assert f"**{bench.NO_CUDA_LINE}**" in text
    assert "| cpu | 64 | 2 |" in text and "suggest-equivalent" in text


@pytest.mark.usefixtures("no_cuda", "small_fits")
def test_a_model_that_fails_on_a_device_is_replaced_by_plain_botorch(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = bench._acq_on_device

    def fail_for_the_campaign_model(device: str, model: object, *args: object) -> object:
        if type(model).__name__ != "ModelListGP":  # the campaign model is a ModelList
            raise RuntimeError("Expected all tensors to be on the same device")
        return real(device, model, *args)

    monkeypatch.setattr(bench, "_acq_on_device", fail_for_the_campaign_model)
    acq = bench.run_benchmark(_tiny(bench), "cpu", parts=("acquisition",))["acquisition"]
    assert acq["campaign_model"]["errors"] == {
        "cpu": "RuntimeError: Expected all tensors to be on the same device"
    }
    assert acq["model"] == "plain-botorch" and not acq["errors"]
    assert [r["device"] for r in acq["suggest"]] == ["cpu"]
