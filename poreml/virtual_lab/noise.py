"""Noise model of the virtual lab (spec section 6): batch noise, then measurement noise.

Both stages draw from one seeded ``numpy.random.Generator`` in the reference order of the spec
(each draw is one vector over all designs):

1. batch (process) noise on the design (section 6.1), in the order porosity, pore size,
   carbon, Si domain, closed share, d50, shell;
2. the physics on the perturbed batch (realisation clips it silently into the route windows);
3. measurement noise on the outputs (section 6.2), in the order TD, SSA, Q_rev (log-normal,
   then additive), ICE, R500 (Student t), expansion (log-normal, then additive), C_vol; the
   reported strain buffering is derived from the measured expansion and the batch's free
   expansion.

``feasible`` is always the noise-free flag of the requested design (section 2.2).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from poreml.data.schema import MEASURED_COLUMNS
from poreml.virtual_lab.params import LabParams, _Record
from poreml.virtual_lab.physics import EXTRA_OUTPUTS, _evaluate, feasibility

__all__ = [
    "BatchNoise",
    "MeasurementNoise",
    "add_measurement_noise",
    "perturb_designs",
    "simulate_measurement",
]


@dataclass(frozen=True)
class BatchNoise(_Record):
    """Batch (process) noise on the design, spec section 6.1.

    Attributes:
        porosity_abs, porosity_rel: φ + N(0, (abs + rel·φ)²), clipped to [0, porosity_max].
        porosity_max: upper clip of the perturbed porosity.
        pore_size_log: d × LogN(0, ·).
        carbon_abs: w_C + N(0, ·²) (mass fraction), clipped to [0, carbon_max].
        carbon_max: upper clip of the perturbed carbon mass fraction.
        si_domain_log: t_Si × LogN(0, ·).
        closed_abs: f_cl + N(0, ·²), clipped to [0, 1].
        d50_log: D × LogN(0, ·).
        shell_log: t_c × LogN(0, ·) (0 stays 0).
    """

    type_name: ClassVar[str] = "BatchNoise"

    porosity_abs: float = 0.01
    porosity_rel: float = 0.03
    porosity_max: float = 0.9
    pore_size_log: float = 0.12
    carbon_abs: float = 0.01
    carbon_max: float = 0.99
    si_domain_log: float = 0.10
    closed_abs: float = 0.03
    d50_log: float = 0.10
    shell_log: float = 0.10


@dataclass(frozen=True)
class MeasurementNoise(_Record):
    """Heteroscedastic measurement noise on the outputs, spec section 6.2.

    Attributes:
        tap_log: TD × LogN(0, ·).
        ssa_rel, ssa_abs, ssa_floor: SSA + N(0, (rel·SSA)² + abs²), then ≥ floor.
        capacity_log, capacity_abs: Q_rev × LogN(0, ·), then + N(0, abs²).
        ice_abs, ice_rel: ICE + N(0, (abs + rel·(100 − ICE))²), clipped to [0, 100].
        retention_abs, retention_rel, retention_dof: R500 + T·(abs + rel·(100 − R500)), T a
            Student t with ``retention_dof`` degrees of freedom scaled to unit variance,
            clipped to [0, 100].
        expansion_log, expansion_abs: expansion_pct × LogN(0, ·), then + N(0, abs²), ≥ 0.
        vol_capacity_log: C_vol × LogN(0, ·).
        free_expansion_floor: floor of 100·E_batch in the derived strain buffering.
    """

    type_name: ClassVar[str] = "MeasurementNoise"

    tap_log: float = 0.02
    ssa_rel: float = 0.05
    ssa_abs: float = 0.2
    ssa_floor: float = 0.05
    capacity_log: float = 0.02
    capacity_abs: float = 10.0
    ice_abs: float = 0.6
    ice_rel: float = 0.03
    retention_abs: float = 1.0
    retention_rel: float = 0.12
    retention_dof: float = 5.0
    expansion_log: float = 0.08
    expansion_abs: float = 2.0
    vol_capacity_log: float = 0.03
    free_expansion_floor: float = 1e-6


def perturb_designs(
    designs: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    noise: BatchNoise | None = None,
) -> dict[str, np.ndarray]:
    """Apply batch noise (spec section 6.1) to design arrays, in the reference draw order.

    Args:
        designs: 1-D float arrays of equal length ``n`` for the continuous design columns
            (``carbon_wt_pct`` in wt %) and the integer ``route`` codes.
        rng: the generator shared with :func:`add_measurement_noise`.
        noise: noise levels (defaults of the spec).

    Returns:
        A new dict with the same keys: perturbed values; ``route`` and ``graphitic_fraction``
        unchanged.
    """
    nz = noise or BatchNoise()
    n = len(designs["porosity"])
    out = dict(designs)
    phi = designs["porosity"]
    phi_n = phi + (nz.porosity_abs + nz.porosity_rel * phi) * rng.standard_normal(n)
    out["porosity"] = np.clip(phi_n, 0.0, nz.porosity_max)
    out["pore_size_nm"] = designs["pore_size_nm"] * np.exp(
        nz.pore_size_log * rng.standard_normal(n)
    )
    w_c = designs["carbon_wt_pct"] * 0.01 + nz.carbon_abs * rng.standard_normal(n)
    out["carbon_wt_pct"] = 100.0 * np.clip(w_c, 0.0, nz.carbon_max)
    out["si_domain_nm"] = designs["si_domain_nm"] * np.exp(
        nz.si_domain_log * rng.standard_normal(n)
    )
    f_cl = designs["closed_pore_fraction"] + nz.closed_abs * rng.standard_normal(n)
    out["closed_pore_fraction"] = np.clip(f_cl, 0.0, 1.0)
    out["d50_um"] = designs["d50_um"] * np.exp(nz.d50_log * rng.standard_normal(n))
    out["shell_nm"] = designs["shell_nm"] * np.exp(nz.shell_log * rng.standard_normal(n))
    return out


def add_measurement_noise(
    outputs: Mapping[str, np.ndarray],
    free_expansion_pct: np.ndarray,
    rng: np.random.Generator,
    noise: MeasurementNoise | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Apply measurement noise (spec section 6.2) to the batch outputs, in the reference order.

    Args:
        outputs: noise-free outputs of the perturbed batch (contract columns, 1-D, length n).
        free_expansion_pct: the batch's free expansion 100·E (E15), length n.
        rng: the generator already used by :func:`perturb_designs`.
        noise: noise levels (defaults of the spec).

    Returns:
        ``(measured, strain_unclipped)``: a new dict with the noisy contract columns
        (``electrode_swelling_pct``, ``electrolyte_uptake_ul_mg`` and other keys pass
        unchanged; ``strain_buffering`` derived from the measured expansion and clipped to
        [0, 1]) and the derived strain buffering before the reporting clip.
    """
    nz = noise or MeasurementNoise()
    n = len(free_expansion_pct)
    out = dict(outputs)

    def lognormal(sigma: float) -> np.ndarray:
        return np.exp(sigma * rng.standard_normal(n))

    out["tap_density_g_cm3"] = outputs["tap_density_g_cm3"] * lognormal(nz.tap_log)
    ssa = outputs["ssa_m2_g"]
    ssa_sd = np.sqrt((nz.ssa_rel * ssa) ** 2 + nz.ssa_abs**2)
    out["ssa_m2_g"] = np.maximum(ssa + ssa_sd * rng.standard_normal(n), nz.ssa_floor)
    q = outputs["specific_capacity_mah_g"] * lognormal(nz.capacity_log)
    out["specific_capacity_mah_g"] = q + nz.capacity_abs * rng.standard_normal(n)
    ice = outputs["ice_pct"]
    ice_sd = nz.ice_abs + nz.ice_rel * (100.0 - ice)
    out["ice_pct"] = np.clip(ice + ice_sd * rng.standard_normal(n), 0.0, 100.0)
    ret = outputs["retention_pct"]
    dof = nz.retention_dof
    t_unit = rng.standard_t(dof, n) * math.sqrt((dof - 2.0) / dof)
    ret_scale = nz.retention_abs + nz.retention_rel * (100.0 - ret)
    out["retention_pct"] = np.clip(ret + t_unit * ret_scale, 0.0, 100.0)
    expn = outputs["expansion_pct"] * lognormal(nz.expansion_log)
    expn = np.maximum(expn + nz.expansion_abs * rng.standard_normal(n), 0.0)
    out["expansion_pct"] = expn
    out["volumetric_capacity_mah_cm3"] = outputs["volumetric_capacity_mah_cm3"] * lognormal(
        nz.vol_capacity_log
    )
    strain = 1.0 - expn / np.maximum(free_expansion_pct, nz.free_expansion_floor)
    out["strain_buffering"] = np.clip(strain, 0.0, 1.0)
    return out, strain


def simulate_measurement(
    inputs: Mapping[str, np.ndarray],
    params: LabParams | None = None,
    *,
    rng: np.random.Generator,
    extra: bool = False,
    batch_noise: BatchNoise | None = None,
    measurement_noise: MeasurementNoise | None = None,
) -> dict[str, np.ndarray]:
    """Noisy measurement of designs given as numpy arrays (spec section 6).

    Batch noise on the requested designs, the physics on the perturbed batch, then
    measurement noise; all draws from ``rng`` in the reference order.

    Args:
        inputs: 1-D arrays of equal length ``n``, one per design column (contract names,
            ``carbon_wt_pct`` in wt %, ``route`` as integer codes); all nine are required.
        params: the parameter set (default: baseline).
        rng: the noise generator, e.g. ``numpy.random.default_rng(seed)``.
        extra: also return the additional outputs of spec section 2.4 (batch noise only;
            ``strain_buffering_unclipped`` is the measured S before the reporting clip).
        batch_noise: batch noise levels (spec defaults).
        measurement_noise: measurement noise levels (spec defaults).

    Returns:
        Arrays of length ``n``: the measured contract columns, ``feasible`` (the noise-free flag
        of the requested design) and, with ``extra``, the additional outputs.
    """
    params = params or LabParams()
    batch = perturb_designs(inputs, rng, batch_noise)
    keys = (*MEASURED_COLUMNS, *(EXTRA_OUTPUTS if extra else ()), "free_expansion_pct")
    clean = _evaluate(batch, params, keys=keys)
    out, strain = add_measurement_noise(clean, clean["free_expansion_pct"], rng, measurement_noise)
    if extra:
        out["strain_buffering_unclipped"] = strain
    else:
        del out["free_expansion_pct"]
    out["feasible"] = feasibility(inputs, params)
    return out
