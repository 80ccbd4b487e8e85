"""Parameters of the virtual lab as plain, frozen data (spec sections 3, 5, 7 and 11).

Everything the physics reads lives in one :class:`LabParams` value:

* :class:`MaterialConstants`: the fixed material constants of spec section 3.1;
* :class:`GlobalParams`: the model parameters of section 3.2 (defaults = ``baseline``);
* :class:`RouteTable`: the per-route physics table of section 3.3;
* :class:`RouteWindows`: the route windows and feasibility rules of section 2.2 (E0, R1-R4).

A :class:`LabParams` is built by :func:`lab_params` with the precedence of section 2.5:
defaults → randomised instance (section 7, :func:`randomised_instance`) → scenario overrides
(section 5, :data:`SCENARIOS`). Every class round-trips through JSON-compatible dictionaries
with a ``"type"`` field (``to_dict`` / ``from_dict``).

Route-indexed values are tuples ordered as :data:`poreml.data.schema.ROUTES`
(``bottom_up`` = 0, ``top_down`` = 1, ``transcription`` = 2).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

import numpy as np

from poreml.data.schema import ROUTES
from poreml.exceptions import ConfigError

__all__ = [
    "DEFAULT_SCENARIO",
    "RANDOMISATION",
    "SCENARIOS",
    "GlobalParams",
    "LabParams",
    "MaterialConstants",
    "Randomisation",
    "RouteTable",
    "RouteWindows",
    "Scenario",
    "get_scenario",
    "lab_params",
    "randomised_instance",
]

RouteValues = tuple[float, float, float]
"""One value per route, in route-index order."""

_T = TypeVar("_T", bound="_Record")


class _Record:
    """Mixin: JSON round trip with a ``"type"`` field for flat frozen dataclasses."""

    type_name: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-compatible dict (tuples become lists) with a ``"type"`` field."""
        out: dict[str, Any] = {"type": self.type_name}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls: type[_T], data: Mapping[str, Any]) -> _T:
        """Rebuild from :meth:`to_dict` output; keys left out keep their defaults.

        Raises:
            ConfigError: on a wrong ``"type"``, an unknown key or a route tuple of wrong length.
        """
        data = dict(data)
        kind = data.pop("type", cls.type_name)
        if kind != cls.type_name:
            raise ConfigError(f"expected a {cls.type_name!r} record (got type {kind!r})")
        names = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(
                f"unknown {cls.type_name} key(s) {', '.join(map(repr, unknown))}; "
                f"allowed keys: {', '.join(names)}"
            )
        kwargs = {
            key: _coerce(f"{cls.type_name}.{key}", names[key].default, value)
            for key, value in data.items()
        }
        return cls(**kwargs)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _coerce(where: str, default: object, value: object) -> object:
    """Check ``value`` against the type of the field's ``default`` and convert it."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false (got {value!r})")
        return value
    if isinstance(default, int):
        if not _is_number(value) or not float(value).is_integer():  # type: ignore[arg-type]
            raise ConfigError(f"{where}: expected an integer (got {value!r})")
        return int(value)  # type: ignore[arg-type]
    if isinstance(default, float):
        if not _is_number(value):
            raise ConfigError(f"{where}: expected a number (got {value!r})")
        return float(value)  # type: ignore[arg-type]
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple) or len(value) != len(ROUTES):
            raise ConfigError(
                f"{where}: expected one value per route ({len(ROUTES)}: {', '.join(ROUTES)}) "
                f"(got {value!r})"
            )
        if not all(_is_number(v) for v in value):
            raise ConfigError(f"{where}: expected numbers (got {value!r})")
        return tuple(float(v) for v in value)
    return value


@dataclass(frozen=True)
class MaterialConstants(_Record):
    """Fixed material constants (spec section 3.1). Units: g/cm³, mAh/g, fractions.

    Attributes:
        q_si: Si capacity to Li15Si4, Q_Si (mAh/g).
        rho_si: Si density, ρ_Si.
        rho_sio2: amorphous SiO2 density, ρ_SiO2.
        rho_c_am: amorphous / hard carbon density, ρ_C,am.
        rho_g: graphite density, ρ_G.
        q_c_am: amorphous carbon reversible capacity, Q_C,am (mAh/g).
        q_g: practical graphite reversible capacity, Q_G (mAh/g).
        eps_c_am: amorphous carbon volume expansion, ε_C,am.
        eps_g: graphite volume expansion, ε_G.
        q_ox: SiO2 irreversible capacity, Q_ox (mAh per g SiO2).
        f_sei: Li charge per nm of SEI per m², F_SEI (mAh m⁻² nm⁻¹).
    """

    type_name: ClassVar[str] = "MaterialConstants"

    q_si: float = 3579.0
    rho_si: float = 2.33
    rho_sio2: float = 2.20
    rho_c_am: float = 1.90
    rho_g: float = 2.24
    q_c_am: float = 300.0
    q_g: float = 350.0
    eps_c_am: float = 0.03
    eps_g: float = 0.10
    q_ox: float = 1300.0
    f_sei: float = 1.07


@dataclass(frozen=True)
class GlobalParams(_Record):
    """Model parameters of spec section 3.2; the defaults are the ``baseline`` scenario.

    Attributes:
        eps_si: Si volume expansion to Li15Si4, ε_Si.
        u0: practical Si utilisation, u0.
        lam_star: optimal pore/wall ratio d/t_Si, λ*.
        w_lam: log-width of the pore/wall optimum, w_λ.
        chi: residual outward fraction of buffered expansion, χ.
        soft: smooth-max width s of sp(x).
        a_pack: packing loss of fine powders, a_pack (E5).
        d_c_um: size scale of the packing loss, D_c (µm, E5).
        delta1_nm: first-cycle SEI thickness equivalent, δ1 (nm).
        q_c: later SEI growth, q_c (mAh m⁻² cycle^-1/2).
        b_breath: extra SEI growth on breathing surfaces, b.
        lam_hc: share of SEI Li loss seen as capacity loss, λ_hc.
        k_f: fracture fade rate, k_f (1/cycle).
        k_s: fade per (electrode swelling)², k_s (1/cycle).
        a_am: active-material mass fraction of the composite-only electrode, a.
        rho_bc: binder + carbon-black density, ρ_bc.
        p0: target electrode porosity after calendering, P0,base.
        kappa_el: share of electrode porosity that absorbs swelling, κ_el.
        chi_el: residual outward fraction at electrode level, χ_el.
        n_cycles: cycles of ``retention_pct``, N.
        tau_s: half-cycle time, τ (s).
        d_si_cm2_s: Li chemical diffusivity in a-LixSi, D_Si (cm²/s).
        rate_fac: multiplier on fracture fade, r_f.
        y_fix: composite mass fraction of the fixed industrial blend, y_fix (E40).
        blend_retention: report ICE and retention at blend level (E27b, E36b).
        a_bl: active fraction of the blended electrode, a_b.
        rho_b: binder density of the blended electrode, ρ_b.
        s_max: electrode swelling cap of the blend, s_max.
        p0_min: lower calendering porosity limit, P0,min.
        p0_max: upper calendering porosity limit, P0,max.
    """

    type_name: ClassVar[str] = "GlobalParams"

    eps_si: float = 2.80
    u0: float = 0.95
    lam_star: float = 0.5
    w_lam: float = 1.8
    chi: float = 0.12
    soft: float = 0.03
    a_pack: float = 0.45
    d_c_um: float = 4.0
    delta1_nm: float = 9.0
    q_c: float = 0.6
    b_breath: float = 1.0
    lam_hc: float = 0.30
    k_f: float = 0.010
    k_s: float = 0.006
    a_am: float = 0.80
    rho_bc: float = 1.7
    p0: float = 0.40
    kappa_el: float = 0.30
    chi_el: float = 0.20
    n_cycles: int = 500
    tau_s: float = 7200.0
    d_si_cm2_s: float = 1e-11
    rate_fac: float = 1.0
    y_fix: float = 0.15
    blend_retention: bool = False
    a_bl: float = 0.95
    rho_b: float = 1.5
    s_max: float = 0.05
    p0_min: float = 0.25
    p0_max: float = 0.50


@dataclass(frozen=True)
class RouteTable(_Record):
    """Per-route physics constants (spec section 3.3), one value per route.

    Attributes:
        eta_max: tapped packing ceiling, η_max.
        r0: external-surface roughness factor of the uncoated particle, R0.
        t_ox_nm: native oxide thickness on Si domains, t_ox (nm).
        t_crit_nm: critical fracture size, t_crit (nm).
        f_trap0: baseline Li trapping, f_trap0.
        kappa_max: largest share of pore volume Si can expand into, κ_max.
        beta_sigma: pore effect on the peak wall stress, β_σ.
        s0: closed-pore share reachable without an outer shell, s0.
    """

    type_name: ClassVar[str] = "RouteTable"

    eta_max: RouteValues = (0.64, 0.56, 0.62)
    r0: RouteValues = (2.0, 3.0, 1.5)
    t_ox_nm: RouteValues = (1.2, 2.0, 0.05)
    t_crit_nm: RouteValues = (150.0, 300.0, 1000.0)
    f_trap0: RouteValues = (0.08, 0.08, 0.04)
    kappa_max: RouteValues = (0.80, 0.70, 0.90)
    beta_sigma: RouteValues = (0.15, 0.40, 0.30)
    s0: RouteValues = (0.30, 0.10, 0.70)


@dataclass(frozen=True)
class RouteWindows(_Record):
    """Route windows and feasibility rules (spec section 2.2, E0 and R1-R4).

    Attributes:
        d_lo_nm, d_hi_nm: pore-size window (R1).
        t_lo_nm, t_hi_nm: Si-domain window (R2).
        wc_hi: upper carbon mass fraction (R3).
        skeleton: 1 where the carbon-skeleton lower bound w_C,min(φ) of E0 applies, else 0.
        phi_feasible_max: the design is flagged infeasible when φ is not below this (R4).
        skeleton_vol_frac: carbon-skeleton volume share of E0 (0.25).
        skeleton_min_solid: floor of the Si solid share max(0.75 − φ, ·) in E0.
        tolerance: relative / absolute tolerance of the feasibility test R4.
    """

    type_name: ClassVar[str] = "RouteWindows"

    d_lo_nm: RouteValues = (5.0, 2.0, 0.5)
    d_hi_nm: RouteValues = (1000.0, 1000.0, 100.0)
    t_lo_nm: RouteValues = (20.0, 5.0, 1.0)
    t_hi_nm: RouteValues = (3000.0, 3000.0, 30.0)
    wc_hi: RouteValues = (0.999, 0.60, 0.999)
    skeleton: RouteValues = (0.0, 0.0, 1.0)
    phi_feasible_max: RouteValues = (1.0, 1.0, 0.74)
    skeleton_vol_frac: float = 0.25
    skeleton_min_solid: float = 1e-6
    tolerance: float = 1e-9


@dataclass(frozen=True)
class LabParams:
    """The complete parameter set of one virtual lab (one scenario, one instance).

    Attributes:
        materials: fixed material constants (section 3.1).
        globals: model parameters after instance draw and scenario overrides (section 3.2).
        routes: per-route physics table (section 3.3).
        windows: route windows (section 2.2).
        scenario: name of the scenario whose overrides were applied (provenance only).
        instance_seed: seed of the randomised instance, or None for the default constants.
    """

    type_name: ClassVar[str] = "LabParams"

    materials: MaterialConstants = field(default_factory=MaterialConstants)
    globals: GlobalParams = field(default_factory=GlobalParams)
    routes: RouteTable = field(default_factory=RouteTable)
    windows: RouteWindows = field(default_factory=RouteWindows)
    scenario: str = "baseline"
    instance_seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-compatible nested dict with ``"type"`` fields."""
        return {
            "type": self.type_name,
            "scenario": self.scenario,
            "instance_seed": self.instance_seed,
            "materials": self.materials.to_dict(),
            "globals": self.globals.to_dict(),
            "routes": self.routes.to_dict(),
            "windows": self.windows.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabParams:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ConfigError: on a wrong ``"type"`` or an unknown key at any level.
        """
        data = dict(data)
        kind = data.pop("type", cls.type_name)
        if kind != cls.type_name:
            raise ConfigError(f"expected a {cls.type_name!r} record (got type {kind!r})")
        parts: dict[str, type[_Record]] = {
            "materials": MaterialConstants,
            "globals": GlobalParams,
            "routes": RouteTable,
            "windows": RouteWindows,
        }
        allowed = {*parts, "scenario", "instance_seed"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(
                f"unknown LabParams key(s) {', '.join(map(repr, unknown))}; "
                f"allowed keys: {', '.join(sorted(allowed))}"
            )
        kwargs: dict[str, Any] = {k: parts[k].from_dict(v) for k, v in data.items() if k in parts}
        if "scenario" in data:
            kwargs["scenario"] = str(data["scenario"])
        if data.get("instance_seed") is not None:
            kwargs["instance_seed"] = int(data["instance_seed"])
        return cls(**kwargs)


# --------------------------------------------------------------------------------------------
# Scenarios (spec section 5.1)


@dataclass(frozen=True)
class Scenario:
    """A named set of :class:`GlobalParams` overrides (a test condition).

    Attributes:
        name: the value of ``--scenario``.
        description: the test condition in words.
        overrides: ``GlobalParams`` field → value; applied last (section 2.5).
    """

    name: str
    description: str
    overrides: Mapping[str, float | bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        allowed = {f.name for f in fields(GlobalParams)}
        unknown = sorted(set(self.overrides) - allowed)
        if unknown:
            raise ConfigError(
                f"scenario {self.name!r} overrides unknown parameter(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))

    def apply(self, params: GlobalParams) -> GlobalParams:
        """Return ``params`` with this scenario's overrides applied."""
        return replace(params, **self.overrides)


SCENARIOS: Mapping[str, Scenario] = MappingProxyType(
    {
        s.name: s
        for s in (
            Scenario(
                "baseline",
                "half cell, LiPF6 in EC/DEC + FEC, C/2, composite-only electrode "
                "(80 % active, P0 = 0.40)",
            ),
            Scenario(
                "no_FEC",
                "EC/DEC without FEC",
                {"delta1_nm": 11.0, "q_c": 1.2, "b_breath": 1.5},
            ),
            Scenario(
                "full_cell_b15",
                "15 wt % composite in graphite against NMC, Li-inventory limited; ICE and "
                "retention at blend level (E27b, E36b)",
                {"lam_hc": 1.0, "q_c": 0.5, "blend_retention": True},
            ),
            Scenario(
                "fast_charge_2C",
                "2C cycling",
                {"tau_s": 1800.0, "rate_fac": 1.5, "q_c": 0.8},
            ),
            Scenario(
                "high_loading",
                "> 4 mAh/cm², densely calendered",
                {"p0": 0.30, "kappa_el": 0.20, "k_s": 0.012, "a_am": 0.90},
            ),
        )
    }
)
"""Registry of the scenarios of spec section 5.1, by name."""

DEFAULT_SCENARIO = "baseline"


def get_scenario(name: str) -> Scenario:
    """Return the registered scenario ``name``.

    Raises:
        ConfigError: naming the allowed scenarios when ``name`` is unknown.
    """
    try:
        return SCENARIOS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown scenario {name!r}; expected one of {', '.join(SCENARIOS)}. "
            "Pass one of these names (e.g. --scenario baseline)."
        ) from None


# --------------------------------------------------------------------------------------------
# Randomised instances (spec section 7)


@dataclass(frozen=True)
class Randomisation:
    """Ranges of a randomised instance, in the reference draw order of spec section 7.

    Attributes:
        uniform: (GlobalParams field, low, high), drawn uniformly one after another.
        route_factors: (RouteTable field, cap); per route, value × exp(sigma·z), z ~ N(0, 1),
            then ``min(·, cap)``; three normals per field in route-index order.
        sigma: log-scale of the route factors.
    """

    uniform: tuple[tuple[str, float, float], ...]
    route_factors: tuple[tuple[str, float], ...]
    sigma: float = 0.15


RANDOMISATION = Randomisation(
    uniform=(
        ("eps_si", 2.7, 3.0),
        ("u0", 0.90, 0.97),
        ("delta1_nm", 6.0, 12.0),
        ("q_c", 0.3, 1.2),
        ("b_breath", 0.5, 1.5),
        ("chi", 0.08, 0.20),
        ("lam_star", 0.3, 0.8),
        ("k_f", 0.006, 0.015),
        ("k_s", 0.003, 0.010),
        ("kappa_el", 0.25, 0.35),
        ("lam_hc", 0.2, 0.4),
    ),
    route_factors=(
        ("eta_max", 0.66),
        ("kappa_max", 0.95),
        ("s0", 0.9),
        ("f_trap0", 0.15),
        ("t_ox_nm", 3.0),
        ("t_crit_nm", 2000.0),
    ),
)
"""The randomisation of spec section 7 (reference draw order)."""


def randomised_instance(
    seed: int,
    *,
    base: LabParams | None = None,
    spec: Randomisation = RANDOMISATION,
) -> LabParams:
    """Draw one randomised instance of the physics constants (spec section 7).

    The draw order is the reference order: ``numpy.random.default_rng(seed)``, the uniforms of
    ``spec.uniform`` one at a time, then for each route-table field three standard normals
    (one per route, in route-index order). No scenario overrides are applied here.

    Args:
        seed: the instance seed (separate from the noise seed).
        base: the parameters to perturb (default: the section 3 defaults).
        spec: ranges and caps.

    Returns:
        The perturbed parameters, with ``instance_seed`` set.

    Raises:
        ConfigError: when ``seed`` is not a non-negative integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"instance seed: expected a non-negative integer (got {seed!r})")
    base = base or LabParams()
    rng = np.random.default_rng(seed)
    drawn: dict[str, float] = {name: float(rng.uniform(lo, hi)) for name, lo, hi in spec.uniform}
    route_kw: dict[str, RouteValues] = {}
    for name, cap in spec.route_factors:
        z = rng.standard_normal(len(ROUTES))
        values = getattr(base.routes, name)
        route_kw[name] = tuple(  # type: ignore[assignment]
            min(float(v) * math.exp(spec.sigma * float(zi)), cap)
            for v, zi in zip(values, z, strict=True)
        )
    return replace(
        base,
        globals=replace(base.globals, **drawn),
        routes=replace(base.routes, **route_kw),
        instance_seed=int(seed),
    )


def lab_params(scenario: str = DEFAULT_SCENARIO, instance_seed: int | None = None) -> LabParams:
    """Build the parameters for ``scenario``: defaults → randomised instance → scenario.

    Args:
        scenario: a name of :data:`SCENARIOS`.
        instance_seed: seed of a randomised instance (section 7), or None for the defaults.

    Raises:
        ConfigError: for an unknown scenario (the message lists the allowed names).
    """
    scen = get_scenario(scenario)
    params = LabParams() if instance_seed is None else randomised_instance(instance_seed)
    return replace(params, globals=scen.apply(params.globals), scenario=scen.name)
