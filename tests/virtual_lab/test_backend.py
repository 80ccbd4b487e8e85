"""One copy of the physics on numpy and torch: agreement, dtype/device, gradients (spec 10)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from poreml.data.schema import CONTINUOUS_DESIGN_COLUMNS, MEASURED_COLUMNS
from poreml.virtual_lab import lab_params, simulate

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread: under pytest-xdist the workers already use every core, and
    oversubscribed OpenMP barriers make small torch ops orders of magnitude slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


SETTINGS = [
    ("baseline", None),
    ("no_FEC", None),
    ("full_cell_b15", None),
    ("fast_charge_2C", None),
    ("high_loading", None),
    ("baseline", 5),
    ("full_cell_b15", 2),
]


def _to_torch(x: dict[str, np.ndarray], dtype, device="cpu", grad=False) -> dict:
    out = {}
    for k, v in x.items():
        if k == "route":
            out[k] = torch.as_tensor(v, device=device)
        else:
            out[k] = torch.tensor(v, dtype=dtype, device=device, requires_grad=grad)
    return out


@pytest.mark.parametrize(("scenario", "instance"), SETTINGS)
def test_torch_float64_matches_numpy(scenario, instance, uniform_designs):
    x = uniform_designs(10_000, 11)
    params = lab_params(scenario, instance)
    ref = simulate(x, params, extra=True)
    out = simulate(_to_torch(x, torch.float64), params, extra=True)
    assert set(out) == set(ref)
    for col, want in ref.items():
        got = out[col]
        assert isinstance(got, torch.Tensor)
        if col == "feasible":
            assert got.dtype == torch.bool
            np.testing.assert_array_equal(got.numpy(), want)
        else:
            assert got.dtype == torch.float64
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-300, err_msg=col)


def test_torch_float32_is_within_two_percent(uniform_designs):
    x = uniform_designs(20_000, 12)
    # numpy reference at the float32-rounded inputs, so only the arithmetic differs
    x32 = {k: v if k == "route" else v.astype(np.float32).astype(np.float64) for k, v in x.items()}
    for scenario in ("baseline", "full_cell_b15"):
        ref = simulate(x32, lab_params(scenario))
        out = simulate(_to_torch(x, torch.float32), lab_params(scenario))
        for col in MEASURED_COLUMNS:
            assert out[col].dtype == torch.float32
            np.testing.assert_allclose(
                out[col].double().numpy(), ref[col], rtol=0.02, atol=1e-4, err_msg=col
            )
        np.testing.assert_array_equal(out["feasible"].numpy(), ref["feasible"])


def test_dtype_and_device_come_from_the_first_floating_input():
    x = {
        "route": torch.tensor([0, 1, 2]),
        "porosity": torch.tensor([0.1, 0.2, 0.3], dtype=torch.float32),
        "pore_size_nm": np.array([10.0, 20.0, 30.0]),  # numpy and scalars mix in
        "d50_um": 8.0,
    }
    out = simulate(x)
    assert out["ice_pct"].dtype == torch.float32
    assert out["ice_pct"].device == x["porosity"].device
    assert out["ice_pct"].shape == (3,)
    only_route = simulate({"route": torch.tensor([0, 2])})
    assert only_route["ice_pct"].dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda_when_inputs_are_on_cuda(uniform_designs):
    x = uniform_designs(4096, 13)
    ref = simulate(x, extra=True)
    out = simulate(_to_torch(x, torch.float64, device="cuda"), extra=True)
    for col, want in ref.items():
        assert out[col].device.type == "cuda"
        got = out[col].cpu().numpy()
        if col == "feasible":
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-300, err_msg=col)


def test_numpy_users_do_not_import_torch():
    code = (
        "import sys, numpy as np, pandas as pd\n"
        "import poreml.virtual_lab as vl\n"
        "vl.simulate({'porosity': np.array([0.2, 0.3])})\n"
        "vl.VirtualLab().measure(pd.DataFrame({'porosity': [0.3]}), seed=0)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- gradients -------------------------------------------------------------------------------

# Interior points (away from the non-smooth points listed in spec section 10).
GRAD_DESIGNS = [
    ("bottom_up", 30.0, 0.40, 0.30, 40.0, 60.0, 5.0, 8.0, 0.10),  # T0
    ("top_down", 50.0, 0.25, 0.70, 35.0, 80.0, 10.0, 8.0, 0.20),  # T4
    ("transcription", 20.0, 0.30, 0.50, 40.0, 20.0, 5.0, 10.0, 0.30),  # T13
    ("bottom_up", 80.0, 0.55, 0.80, 25.0, 120.0, 12.0, 6.0, 0.50),
]
GRAD_OUTPUTS = (
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


def _design_tensors(row: tuple) -> dict:
    route, *values = row
    x = {"route": route}
    for name, value in zip(CONTINUOUS_DESIGN_COLUMNS, values, strict=True):
        x[name] = torch.tensor(value, dtype=torch.float64, requires_grad=True)
    return x


@pytest.mark.parametrize("row", GRAD_DESIGNS)
def test_autograd_matches_central_finite_differences(row):
    x = _design_tensors(row)
    out = simulate(x)
    for col in GRAD_OUTPUTS:
        grads = torch.autograd.grad(
            out[col],
            [x[n] for n in CONTINUOUS_DESIGN_COLUMNS],
            retain_graph=True,
            allow_unused=True,
        )
        for name, grad in zip(CONTINUOUS_DESIGN_COLUMNS, grads, strict=True):
            base = {k: (v.detach().item() if k != "route" else v) for k, v in x.items()}
            h = 1e-6 * max(abs(base[name]), 1e-3)
            up = simulate({**base, name: base[name] + h})[col]
            down = simulate({**base, name: base[name] - h})[col]
            fd = (up - down) / (2 * h)
            got = 0.0 if grad is None else grad.item()
            assert got == pytest.approx(fd, rel=1e-4, abs=1e-6 * max(1.0, abs(float(up)))), (
                f"d {col} / d {name}"
            )


def test_strain_buffering_rises_with_porosity_for_si_rich_designs():
    x = _design_tensors(("bottom_up", 60.0, 0.3, 0.5, 20.0, 100.0, 5.0, 8.0, 0.0))
    (grad,) = torch.autograd.grad(simulate(x)["strain_buffering"], [x["porosity"]])
    assert grad.item() > 0


def test_tap_density_gradient_in_porosity_is_minus_eta_times_skeletal_density():
    x = _design_tensors(GRAD_DESIGNS[0])
    out = simulate(x, extra=True)
    (grad,) = torch.autograd.grad(out["tap_density_g_cm3"], [x["porosity"]])
    rho_p = out["particle_density_g_cm3"].item()
    eta = out["tap_density_g_cm3"].item() / rho_p
    rho_s = rho_p / (1.0 - x["porosity"].item())
    assert grad.item() == pytest.approx(-eta * rho_s, rel=1e-12)


def test_bet_area_falls_with_pore_size_for_open_mesopores():
    x = _design_tensors(("bottom_up", 10.0, 0.4, 0.0, 40.0, 60.0, 5.0, 8.0, 0.0))
    (grad,) = torch.autograd.grad(simulate(x)["ssa_m2_g"], [x["pore_size_nm"]])
    assert grad.item() < 0


def test_batched_gradients_have_the_input_shape(uniform_designs):
    x = _to_torch(uniform_designs(256, 14), torch.float64, grad=True)
    total = sum(simulate(x)[col].sum() for col in GRAD_OUTPUTS)
    total.backward()
    for name in CONTINUOUS_DESIGN_COLUMNS:
        assert x[name].grad is not None and x[name].grad.shape == (256,)
        assert torch.isfinite(x[name].grad).all()


def test_gradient_is_zero_where_the_route_window_clips():
    # bottom_up clips d to [5, 1000] nm (R1): outside the window d has no effect
    x = _design_tensors(("bottom_up", 2.0, 0.4, 0.0, 40.0, 60.0, 5.0, 8.0, 0.0))
    out = simulate(x)
    (grad,) = torch.autograd.grad(out["ssa_m2_g"], [x["pore_size_nm"]])
    assert grad.item() == 0.0
    assert not out["feasible"].item()


def test_route_constants_given_as_tensors_carry_their_gradients() -> None:
    """Calibration passes route constants as tensors; the physics differentiates through them."""
    from types import SimpleNamespace

    base = lab_params()
    eta = torch.tensor(base.routes.eta_max, dtype=torch.float64, requires_grad=True)
    params = SimpleNamespace(
        materials=base.materials,
        globals=base.globals,
        routes=SimpleNamespace(
            **{**vars(base.routes), "eta_max": tuple(eta.unbind(0))},
        ),
        windows=base.windows,
    )
    porosity = torch.tensor([0.3, 0.3, 0.5], dtype=torch.float64)
    design = {"route": torch.tensor([0, 1, 1]), "porosity": porosity}
    tap = simulate(design, params)["tap_density_g_cm3"]
    reference = simulate({k: v.numpy() for k, v in design.items()}, base)["tap_density_g_cm3"]
    np.testing.assert_allclose(tap.detach().numpy(), reference, rtol=1e-12)
    tap.sum().backward()
    # tap density is proportional to the route's packing ceiling: d(tap)/d(eta) = tap / eta
    expected = [reference[0] / eta[0].item(), (reference[1] + reference[2]) / eta[1].item(), 0.0]
    np.testing.assert_allclose(eta.grad.numpy(), expected, rtol=1e-9)
