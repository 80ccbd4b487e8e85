"""Deterministic physics of the virtual lab: realisation R1-R4 (with E0) and equations E1-E40.

The equations are written once, elementwise and closed-form, against the small array namespace
of :mod:`poreml.virtual_lab.backend`, so the same code runs on numpy arrays (float64) and on
torch tensors (float32 / float64, CPU or GPU, differentiable in the eight continuous inputs).
There are no Python loops over designs and no per-design branches: route tables are looked up
with the integer route array and ``where`` / ``minimum`` / ``maximum`` / ``clip`` replace
branches (spec section 10).

The array core assumes inputs inside the physical domain of spec section 2.1 (d, t_Si, D > 0,
t_c ≥ 0, φ ∈ [0, 0.9], f_cl, f_gr ∈ [0, 1], w_C ∈ [0, 1], finite values, valid route codes);
the DataFrame boundary (:mod:`poreml.virtual_lab.lab`) checks it.

Symbols follow the spec: d pore size (nm), φ porosity, f_cl closed share, w_C carbon mass
fraction, t_Si Si-domain size (nm), t_c shell (nm), D d50 (µm), f_gr graphitic share.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from poreml.data.schema import DESIGN_COLUMNS, DESIGN_DEFAULTS, MEASURED_COLUMNS, ROUTES
from poreml.exceptions import DataValidationError, Problem
from poreml.virtual_lab.backend import Backend, backend_for, is_tensor
from poreml.virtual_lab.params import GlobalParams, LabParams, MaterialConstants

__all__ = [
    "CONTRACT_OUTPUTS",
    "EXTRA_OUTPUTS",
    "blend_at_swelling_cap",
    "realise",
    "simulate",
]

CONTRACT_OUTPUTS: tuple[str, ...] = MEASURED_COLUMNS
"""Measured contract columns produced by :func:`simulate` (same order as the schema)."""

EXTRA_OUTPUTS: tuple[str, ...] = (
    "blend_volumetric_capacity_mah_cm3",
    "blend_composite_fraction",
    "blend_si_wt_pct",
    "b15_volumetric_capacity_mah_cm3",
    "b15_swelling_pct",
    "particle_density_g_cm3",
    "free_expansion_pct",
    "pore_usage_efficiency",
    "fracture_probability",
    "clogged_pore_fraction",
    "closed_pore_fraction_eff",
    "shell_nm_eff",
    "si_mass_fraction",
    "sio2_mass_fraction",
    "si_utilisation",
    "sei_loss_fraction",
    "k_frac_per_cycle",
    "k_swell_per_cycle",
    "electrode_porosity",
    "pore_size_nm_eff",
    "si_domain_nm_eff",
    "carbon_wt_pct_eff",
    "strain_buffering_unclipped",
)
"""Additional outputs of spec section 2.4 (``extra=True``), plus the unclipped S of E19."""

_BLEND_OUTPUTS = frozenset(
    {
        "blend_volumetric_capacity_mah_cm3",
        "blend_composite_fraction",
        "blend_si_wt_pct",
        "b15_volumetric_capacity_mah_cm3",
        "b15_swelling_pct",
    }
)

NUMPY_CHUNK = 8192
"""Designs per pass of the numpy path (temporaries stay in the CPU cache)."""

_LN10 = math.log(10.0)

# Route-table columns gathered in one lookup each (see _physics and _realise).
_ROUTE_COLUMNS = (
    "eta_max",
    "r0",
    "t_ox_nm",
    "t_crit_nm",
    "f_trap0",
    "kappa_max",
    "beta_sigma",
    "s0",
)
_WINDOW_COLUMNS = (
    "d_lo_nm",
    "d_hi_nm",
    "t_lo_nm",
    "t_hi_nm",
    "wc_hi",
    "skeleton",
    "phi_feasible_max",
)


def simulate(
    inputs: Mapping[str, Any],
    params: LabParams | None = None,
    *,
    extra: bool = False,
) -> dict[str, Any]:
    """Evaluate the noise-free virtual lab on arrays or tensors (spec sections 2.2 and 4).

    Args:
        inputs: design columns by contract name (``route``, ``pore_size_nm``, ``porosity``,
            ``closed_pore_fraction``, ``carbon_wt_pct`` (wt %), ``si_domain_nm``, ``shell_nm``,
            ``d50_um``, ``graphitic_fraction``); each a scalar, a numpy array or a torch tensor,
            broadcast elementwise to a common shape ``(*batch)``. ``route`` holds integer codes
            (index into :data:`~poreml.data.schema.ROUTES`) or route names. Columns left out
            take their contract defaults. Values must lie in the physical domain (spec 2.1).
        params: the parameter set (default: baseline, default constants).
        extra: also return the additional outputs of spec section 2.4 (:data:`EXTRA_OUTPUTS`).

    Returns:
        Dict of arrays / tensors of shape ``(*batch)``: the measured contract columns
        (:data:`CONTRACT_OUTPUTS`, in contract units, ``strain_buffering`` clipped to [0, 1]),
        ``feasible`` (bool, rule R4) and, with ``extra``, :data:`EXTRA_OUTPUTS`. With torch
        inputs the outputs are tensors with the dtype and device of the first floating input
        and carry autograd history.

    Raises:
        DataValidationError: for an unknown input name or an unknown route name.
    """
    keys = (*CONTRACT_OUTPUTS, "feasible", *(EXTRA_OUTPUTS if extra else ()))
    return _evaluate(inputs, params or LabParams(), keys=keys)


def feasibility(inputs: Mapping[str, Any], params: LabParams | None = None) -> Any:
    """The ``feasible`` flag of rule R4 alone (no physics), for arrays or tensors.

    Args:
        inputs: design columns as for :func:`simulate`.
        params: parameter set (only its route windows and E0 constants are used).

    Returns:
        Boolean array / tensor of the broadcast input shape.
    """
    return realise(inputs, params)["feasible"]


def realise(inputs: Mapping[str, Any], params: LabParams | None = None) -> dict[str, Any]:
    """What the route makes of a requested design (rules R1-R4 with E0), no physics.

    The same values as :func:`simulate`'s ``pore_size_nm_eff``, ``si_domain_nm_eff``,
    ``carbon_wt_pct_eff`` and ``feasible`` at a fraction of the cost (the campaign's
    feasibility prior evaluates it inside every acquisition call).

    Args:
        inputs: design columns as for :func:`simulate`.
        params: parameter set (only its route windows and E0 constants are used).

    Returns:
        Those four outputs, arrays / tensors of the broadcast input shape (differentiable in
        the continuous inputs for torch).
    """
    params = params or LabParams()
    xp = backend_for(inputs.values())
    d, t, w_c, feasible = _realise(xp, _prepare(xp, inputs), params)
    return {
        "pore_size_nm_eff": d,
        "si_domain_nm_eff": t,
        "carbon_wt_pct_eff": 100.0 * w_c,
        "feasible": feasible,
    }


def _evaluate(inputs: Mapping[str, Any], params: LabParams, *, keys: tuple[str, ...]) -> dict:
    """Run the physics and return the outputs named in ``keys``."""
    xp = backend_for(inputs.values())
    x = _prepare(xp, inputs)
    blends = params.globals.blend_retention or any(k in _BLEND_OUTPUTS for k in keys)
    shape = x["route"].shape
    size = int(np.prod(shape))
    if xp.name != "numpy" or size <= NUMPY_CHUNK:
        res = _physics(xp, x, params, blends=blends)
        return {k: res[k] for k in keys}
    # numpy: work through cache-sized flat chunks (bounded temporaries, ~2-3x faster than
    # one pass over 10^5-10^6 designs), writing into preallocated outputs.
    flat = {k: np.ravel(v) for k, v in x.items()}
    out: dict[str, np.ndarray] = {}
    n_chunks = -(-size // NUMPY_CHUNK)
    edges = np.linspace(0, size, n_chunks + 1).astype(int)  # equal chunks, none tiny
    for start, stop in itertools.pairwise(edges):
        part = slice(start, stop)
        res = _physics(xp, {k: v[part] for k, v in flat.items()}, params, blends=blends)
        if not out:
            out = {k: np.empty(size, dtype=res[k].dtype) for k in keys}
        for k in keys:
            out[k][part] = res[k]
    return {k: v.reshape(shape) for k, v in out.items()}


def _prepare(xp: Backend, inputs: Mapping[str, Any]) -> dict[str, Any]:
    unknown = [k for k in inputs if k not in DESIGN_COLUMNS]
    if unknown:
        raise DataValidationError(
            [
                Problem(None, k, "unknown input", "a design column: " + ", ".join(DESIGN_COLUMNS))
                for k in unknown
            ],
            source="simulate()",
        )
    route = inputs.get("route", DESIGN_DEFAULTS["route"])
    route = xp.asindex(_route_codes(route))
    floats = [
        xp.asarray(inputs.get(name, DESIGN_DEFAULTS[name]))
        for name in DESIGN_COLUMNS
        if name != "route"
    ]
    arrays = xp.broadcast(route, *floats)
    return dict(zip(DESIGN_COLUMNS, arrays, strict=True))


def _route_codes(route: Any) -> Any:
    """Map route names to integer codes; integer arrays and tensors pass through.

    Raises:
        DataValidationError: for an unknown route name or an integer code outside 0-2.
    """
    if is_tensor(route):
        return route
    arr = np.asarray(route)
    if arr.dtype.kind in "USO":
        codes = {name: i for i, name in enumerate(ROUTES)}
        flat = arr.ravel().tolist()
        bad = sorted({str(v) for v in flat if v not in codes})
        if bad:
            raise DataValidationError(
                [Problem(None, "route", b, "one of " + ", ".join(ROUTES)) for b in bad],
                source="simulate()",
            )
        return np.asarray([codes[v] for v in flat], dtype=np.intp).reshape(arr.shape)
    if arr.size and (arr.min() < 0 or arr.max() >= len(ROUTES)):
        bad_codes = sorted({int(v) for v in arr.ravel() if not 0 <= v < len(ROUTES)})
        raise DataValidationError(
            [
                Problem(None, "route", b, f"a route code 0-{len(ROUTES) - 1} or a route name")
                for b in bad_codes
            ],
            source="simulate()",
        )
    return arr


def _softplus(xp: Backend, x: Any, s: float) -> Any:
    """sp(x) = s·ln(1 + e^(x/s)), computed stably as s·log1p(e^(−|x|/s)) + max(x, 0)."""
    return s * xp.log1p(xp.exp(xp.abs(x) * (-1.0 / s))) + xp.maximum(x, 0.0)


def _buffered(xp: Backend, free: Any, buffer: Any, resid: float, s: float) -> Any:
    """sp(free − buffer) + resid·min(free, buffer): the expansion balance of E18/E21/E32/E40."""
    return _softplus(xp, free - buffer, s) + resid * xp.minimum(free, buffer)


def _realise(xp: Backend, x: Mapping[str, Any], p: LabParams) -> tuple[Any, Any, Any, Any]:
    """R1-R4 with E0 (spec section 2.2): the realised d', t_Si', w_C' and ``feasible``."""
    m, w = p.materials, p.windows
    r, phi = x["route"], x["porosity"]
    d_req = x["pore_size_nm"]
    t_req = x["si_domain_nm"]
    w_c_req = x["carbon_wt_pct"] * 0.01  # unit conversion at the boundary (§11)
    d_lo, d_hi, t_lo, t_hi, wc_hi, skel, phi_max = xp.take_rows(
        [getattr(w, c) for c in _WINDOW_COLUMNS], r
    )
    # E0: carbon skeleton of the transcription route (≥ 25 vol % of the particle).
    skel_c = w.skeleton_vol_frac * m.rho_c_am
    solid_si = xp.maximum((1.0 - w.skeleton_vol_frac) - phi, w.skeleton_min_solid)
    wc_min = skel_c / (skel_c + solid_si * m.rho_si)
    d = xp.clip(d_req, d_lo, d_hi)  # R1
    t = xp.clip(t_req, t_lo, t_hi)  # R2
    w_c = xp.minimum(xp.maximum(w_c_req, skel * wc_min), wc_hi)  # R3: lower bound first
    # R4: |ln(d'/d)| < tol, written |d' − d| < tol·d (equal to second order in tol) so that it
    # also holds in float32, where d·e^(±tol) rounds to d.
    tol = w.tolerance
    feasible = (
        (xp.abs(d - d_req) < tol * d_req)
        & (xp.abs(t - t_req) < tol * t_req)
        & (xp.abs(w_c - w_c_req) < tol)
        & (phi < phi_max)
    )
    return d, t, w_c, feasible


def _physics(xp: Backend, x: Mapping[str, Any], p: LabParams, *, blends: bool) -> dict[str, Any]:
    """E1-E40 on prepared inputs; returns contract, ``feasible`` and diagnostic outputs.

    The graphite-blend outputs (E37-E40) are computed only when ``blends`` is set (they are
    needed for ``extra`` outputs and for the ``blend_retention`` switch).
    """
    m: MaterialConstants = p.materials
    g: GlobalParams = p.globals
    s = g.soft

    r = x["route"]
    phi = x["porosity"]
    f_cl = x["closed_pore_fraction"]
    t_c = x["shell_nm"]
    dd = x["d50_um"]
    f_gr = x["graphitic_fraction"]
    d, t, w_c, feasible = _realise(xp, x, p)
    eta_max, r0, t_ox, t_crit, f_trap0, kappa_max, beta_sig, s0 = xp.take_rows(
        [getattr(p.routes, c) for c in _ROUTE_COLUMNS], r
    )

    # --- E1-E4b: composition and densities ---------------------------------------------------
    t_ox_eff = xp.minimum(t_ox, 0.4 * t)  # E1
    shell_frac = 1.0 - 2.0 * t_ox_eff / t
    f_ox = 1.0 - shell_frac * shell_frac * shell_frac
    x_ox = f_ox * m.rho_sio2 / (m.rho_si + f_ox * (m.rho_sio2 - m.rho_si))
    w_rest = 1.0 - w_c  # E2
    w_ox = w_rest * x_ox
    w_si = w_rest - w_ox
    rho_c = m.rho_c_am + (m.rho_g - m.rho_c_am) * f_gr  # E3
    q_c = m.q_c_am + (m.q_g - m.q_c_am) * f_gr
    eps_c = m.eps_c_am + (m.eps_g - m.eps_c_am) * f_gr
    nu_si = w_si * (1.0 / m.rho_si)
    nu_c = w_c / rho_c
    nu_s = nu_si + nu_c + w_ox * (1.0 / m.rho_sio2)
    rho_p = (1.0 - phi) / nu_s  # E4: ρ_p = ρ_s(1 − φ)
    v_si = rho_p * nu_si  # (1 − φ)·ν_Si/ν_s
    v_c = rho_p * nu_c
    t_c_eff = xp.minimum(t_c, (1000.0 / (6.0 * m.rho_c_am)) * w_c * dd * rho_p)  # E4b

    # --- E5-E6: tap density ------------------------------------------------------------------
    eta = eta_max * (1.0 - g.a_pack * xp.exp(dd * (-1.0 / g.d_c_um))) * (1.0 - 0.2 * f_gr)
    tap = eta * rho_p

    # --- E7-E11: pores and surface area ------------------------------------------------------
    c_max = 1.0 - (1.0 - s0) * xp.exp(t_c_eff * -0.25)  # E7: s0 + (1 − s0)(1 − e^(−t/4))
    f_cl_eff = xp.minimum(f_cl, c_max)
    phi_c = phi * f_cl_eff
    phi_o = phi - phi_c
    a_n2 = 1.0 / (1.0 + xp.exp((d - 0.45) * (-1.0 / 0.04)))  # E8
    q8 = 0.8 / d
    a_el = 1.0 / (1.0 + q8 * q8 * q8)
    open_area = phi_o * (4000.0 / (d * rho_p))  # E9, E11: 4000·φ_o/(d·ρ_p)
    ssa_int = open_area * a_n2
    rough = 1.0 + (r0 - 1.0) * xp.exp(t_c_eff * -0.1)  # E10
    ssa_ext = 6.0 * rough / (dd * rho_p)
    ssa = ssa_ext + ssa_int  # E11
    a_wet = open_area * a_el

    # --- E12-E14: reversible capacity at the test rate ---------------------------------------
    h_e = 1.0 - 0.25 * xp.exp(w_c * -20.0)  # E12
    h_c = 1.0 - xp.exp(w_c * -4.0)
    l_si2 = 1e8 * g.d_si_cm2_s * g.tau_s  # E13: L_Si² (µm²); L_cp² = L_Si²·10^(2·h_C)
    half_t = 5e-4 * t
    half_d = 0.5 * dd
    shell_k = t_c_eff * (1.0 / 60.0)
    h_diff = 1.0 / (
        (1.0 + half_t * half_t * (1.0 / l_si2))
        * (1.0 + f_cl_eff * (half_d * half_d * (1.0 / l_si2)) * xp.exp(h_c * (-2.0 * _LN10)))
        * (1.0 + shell_k * shell_k)
    )
    u_si = g.u0 * h_e * h_diff
    q_si_used = w_si * m.q_si * u_si
    q_rev = q_si_used + w_c * q_c  # E14

    # --- E15-E19: particle expansion and strain buffering ------------------------------------
    e_free = g.eps_si * u_si * v_si + eps_c * v_c  # E15
    lam_ratio = xp.log(d / (t * g.lam_star)) * (1.0 / g.w_lam)  # E16
    g_lam = 1.0 / (1.0 + lam_ratio * lam_ratio)
    g_coat = 1.0 - 0.15 * xp.exp(t_c_eff * -0.2)  # 0.85 + 0.15(1 − e^(−t/5))
    kappa = kappa_max * g_lam * g_coat
    e_p = _buffered(xp, e_free, kappa * phi, g.chi, s)  # E17-E18
    strain = 1.0 - e_p / xp.maximum(e_free, 1e-9)  # E19

    # --- E20-E23: composite-only electrode ---------------------------------------------------
    p0_cal = xp.clip(1.0 - (eta + 0.12), g.p0_min, g.p0_max)  # E20
    p0 = xp.maximum(p0_cal, g.p0)
    nu_am = g.a_am / rho_p  # E21
    nu_el = nu_am + (1.0 - g.a_am) / g.rho_bc
    v_am = (1.0 - p0) * nu_am / nu_el
    pore_el = g.kappa_el * p0
    e_el = _buffered(xp, v_am * e_p, pore_el, g.chi_el, s)
    rho_el = (1.0 - p0) / nu_el  # E22
    c_vol = q_rev * g.a_am * rho_el / (1.0 + e_el)  # E23

    # --- E24-E27: first-cycle efficiency -----------------------------------------------------
    grow = (1.0 + e_p) ** (2.0 / 3.0)
    a_first = ssa_ext * grow + a_wet * (1.0 - xp.exp(d * (-0.5 / g.delta1_nm)))  # E24
    f_trap = f_trap0 + 0.10 * t / (t + 100.0)  # E25
    q_irr = (  # E26
        (m.f_sei * g.delta1_nm) * a_first
        + m.q_ox * w_ox
        + f_trap * q_si_used
        + w_c * q_c * (0.15 - 0.12 * f_gr)
    )
    ice = 100.0 * q_rev / (q_rev + q_irr)  # E27

    # --- E28-E36a: retention -----------------------------------------------------------------
    sqrt_n = math.sqrt(g.n_cycles)
    delta_n = g.q_c * (1.0 + g.b_breath) * sqrt_n / m.f_sei  # E28
    open_left = 1.0 - xp.minimum(2.0 * delta_n / d, 1.0)  # E29
    c_n = 1.0 - open_left * open_left
    a_dyn = ssa_ext * (1.0 + g.b_breath * (grow - 1.0)) + a_wet * (1.0 + g.b_breath) * (
        1.0 - (2.0 / 3.0) * c_n
    )  # E30
    q_sei = (g.q_c * sqrt_n) * a_dyn  # E31
    l_sei = xp.minimum(g.lam_hc * q_sei / q_rev, 0.95)
    b_n = kappa * (phi_c + phi_o * open_left * open_left)  # E32: φ_o(1 − c_N)
    e_p_n = _buffered(xp, e_free, b_n, g.chi, s)
    e_el_n = _buffered(xp, v_am * e_p_n, pore_el, g.chi_el, s)
    e_el_mean = 0.5 * (e_el + e_el_n)
    f_sig = 1.0 - beta_sig * g_lam * phi / (phi + 0.15) - 0.1 * strain  # E33 (S unclipped)
    crit_ratio = t_crit / (f_sig * f_sig * t)  # t_crit,eff / t_Si
    cr2 = crit_ratio * crit_ratio
    p_frac = 1.0 / (1.0 + cr2 * cr2)
    severity = xp.sqrt(xp.clip(1.0 / crit_ratio, 1.0, 6.25))
    h_coat = 1.0 - xp.exp(t_c_eff * (-1.0 / 3.0))  # E34
    h_net = 1.0 - (1.0 - h_c) * (1.0 - 0.5 * h_coat)
    k_frac = (g.k_f * g.rate_fac) * p_frac * severity * (1.0 - 0.7 * h_net)
    k_sw = g.k_s * e_el_mean * e_el_mean * (1.0 - 0.6 * h_c)  # E35
    retention = 100.0 * xp.exp((k_frac + k_sw) * -float(g.n_cycles)) * (1.0 - l_sei)  # E36
    uptake = phi_o * a_el / rho_p  # E36a

    out: dict[str, Any] = {
        "tap_density_g_cm3": tap,
        "ssa_m2_g": ssa,
        "specific_capacity_mah_g": q_rev,
        "ice_pct": ice,
        "retention_pct": retention,
        "expansion_pct": 100.0 * e_p,
        "electrode_swelling_pct": 100.0 * e_el,
        "volumetric_capacity_mah_cm3": c_vol,
        "strain_buffering": xp.clip(strain, 0.0, 1.0),  # reporting clip (§2.3)
        "electrolyte_uptake_ul_mg": uptake,
        "feasible": feasible,
        "particle_density_g_cm3": rho_p,
        "free_expansion_pct": 100.0 * e_free,
        "pore_usage_efficiency": kappa,
        "fracture_probability": p_frac,
        "clogged_pore_fraction": c_n,
        "closed_pore_fraction_eff": f_cl_eff,
        "shell_nm_eff": t_c_eff,
        "si_mass_fraction": w_si,
        "sio2_mass_fraction": w_ox,
        "si_utilisation": u_si,
        "sei_loss_fraction": l_sei,
        "k_frac_per_cycle": k_frac,
        "k_swell_per_cycle": k_sw,
        "electrode_porosity": p0,
        "pore_size_nm_eff": d,
        "si_domain_nm_eff": t,
        "carbon_wt_pct_eff": 100.0 * w_c,
        "strain_buffering_unclipped": strain,
    }
    if not blends:
        return out

    # --- E37-E40: graphite blends ------------------------------------------------------------
    b15 = _blend_fixed(xp, p, q_rev=q_rev, rho_p=rho_p, e_p=e_p, eta=eta)  # E40
    cap = blend_at_swelling_cap(  # E37-E39
        q_rev=q_rev, rho_p=rho_p, e_p=e_p, w_si=w_si, eta=eta, params=p, xp=xp
    )
    out.update(cap)
    out["b15_volumetric_capacity_mah_cm3"] = b15["b15_volumetric_capacity"]
    out["b15_swelling_pct"] = 100.0 * b15["b15_swelling"]
    if g.blend_retention:  # scenario switch: ICE and R500 of the 15 wt % blend
        y = g.y_fix
        q_b = y * q_rev + (1.0 - y) * m.q_g  # E27b
        out["ice_pct"] = 100.0 * q_b / (q_b + y * q_irr + (1.0 - y) * 0.07 * m.q_g)
        share = y * q_rev / q_b  # E36b
        e_b15 = b15["b15_swelling"]
        k_b = g.k_s * e_b15 * e_b15 + k_frac * share
        loss = xp.minimum(g.lam_hc * (y * q_sei + (1.0 - y) * 25.0) / q_b, 0.95)
        out["retention_pct"] = 100.0 * xp.exp(k_b * -float(g.n_cycles)) * (1.0 - loss)
    return out


def _blend_solids(p: LabParams, y: Any, rho_p: Any, e_p: Any) -> tuple[Any, Any]:
    """E37: solid volume V_s(y) and solid expansion x(y) of the blend at composite share y."""
    m, g = p.materials, p.globals
    a_b = g.a_bl
    nu_b = (1.0 - a_b) / g.rho_b
    comp = a_b * y / rho_p
    graph = a_b * (1.0 - y) / m.rho_g
    v_s = comp + graph + nu_b
    x_s = (comp * e_p + graph * m.eps_g) / v_s
    return v_s, x_s


def _blend_fixed(
    xp: Backend, p: LabParams, *, q_rev: Any, rho_p: Any, e_p: Any, eta: Any
) -> dict[str, Any]:
    """E40: the fixed industrial blend at y = y_fix, calendered to the minimum porosity."""
    m, g = p.materials, p.globals
    y = g.y_fix
    v_s, x_b = _blend_solids(p, y, rho_p, e_p)
    p0_b = xp.clip(1.0 - (y * (eta + 0.12) + (1.0 - y) * 0.75), g.p0_min, g.p0_max)
    e_b = _buffered(xp, (1.0 - p0_b) * x_b, g.kappa_el * p0_b, g.chi_el, g.soft)
    c_vol = g.a_bl * (y * q_rev + (1.0 - y) * m.q_g) * (1.0 - p0_b) / (v_s * (1.0 + e_b))
    return {"b15_volumetric_capacity": c_vol, "b15_swelling": e_b}


def blend_at_swelling_cap(
    *,
    q_rev: Any,
    rho_p: Any,
    e_p: Any,
    w_si: Any,
    eta: Any,
    params: LabParams | None = None,
    xp: Backend | None = None,
) -> dict[str, Any]:
    """E37-E39: the graphite blend with the most composite that meets the swelling cap.

    Args:
        q_rev: composite reversible capacity Q_rev (mAh/g).
        rho_p: composite particle density ρ_p (g/cm³).
        e_p: composite particle expansion e_p (fraction).
        w_si: Si mass fraction of the composite.
        eta: tapped packing fraction η of the composite.
        params: parameters (a_b, ρ_b, ρ_G, ε_G, Q_G, s_max, κ_el, P0 limits).
        xp: backend (picked from the inputs when omitted).

    Returns:
        ``blend_composite_fraction`` (y*, E38), ``blend_volumetric_capacity_mah_cm3``
        (C_vol,blend, E39) and ``blend_si_wt_pct`` (Si_blend, E39), each shaped like the
        broadcast inputs.
    """
    p = params or LabParams()
    xp = xp or backend_for([q_rev, rho_p, e_p, w_si, eta])
    if not hasattr(q_rev, "shape"):
        q_rev, rho_p, e_p, w_si, eta = (xp.asarray(v) for v in (q_rev, rho_p, e_p, w_si, eta))
    m, g = p.materials, p.globals
    a_b = g.a_bl
    nu_b = (1.0 - a_b) / g.rho_b
    x_max = (g.s_max + g.kappa_el * g.p0_max) / (1.0 - g.p0_max)  # E38
    a1 = a_b / rho_p - a_b / m.rho_g
    a0 = a_b / m.rho_g + nu_b
    b1 = a_b * e_p / rho_p - a_b * m.eps_g / m.rho_g
    b0 = a_b * m.eps_g / m.rho_g
    den = b1 - x_max * a1
    ok = den > 1e-12
    y_star = xp.where(ok, (x_max * a0 - b0) / xp.where(ok, den, 1.0), 1.0)
    y_star = xp.clip(y_star, 0.0, 1.0)
    v_s, x_b = _blend_solids(p, y_star, rho_p, e_p)  # E39
    p0_lo = xp.clip(1.0 - (y_star * (eta + 0.12) + (1.0 - y_star) * 0.75), g.p0_min, g.p0_max)
    p0_b = xp.minimum(xp.maximum((x_b - g.s_max) / (x_b + g.kappa_el), p0_lo), g.p0_max)
    e_b = xp.maximum((1.0 - p0_b) * x_b - g.kappa_el * p0_b, 0.0)
    c_vol = a_b * (y_star * q_rev + (1.0 - y_star) * m.q_g) * (1.0 - p0_b) / (v_s * (1.0 + e_b))
    return {
        "blend_composite_fraction": y_star,
        "blend_volumetric_capacity_mah_cm3": c_vol,
        "blend_si_wt_pct": 100.0 * a_b * y_star * w_si,
    }
