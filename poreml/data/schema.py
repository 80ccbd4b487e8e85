"""The data contract, declared once: every column of CONTRACT.md section 1.

Each :class:`Column` carries its dtype, unit, allowed range, default and meaning. Everything
else in poreml (validation, the virtual lab, surrogates, the campaign, the API) reads names,
ranges and defaults from here rather than repeating them.

Two ranges exist for design columns:

* ``bounds``: the contract range, what a lab may choose and what ``poreml data validate``
  enforces;
* ``domain``: the physical domain of the virtual lab (virtual-lab spec section 2.1). Values
  outside ``bounds`` but inside ``domain`` are simulated normally (the spec's reference designs
  use e.g. 99.9 wt % carbon); values outside ``domain`` are rejected everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnKind = Literal["design", "measured", "identity", "condition", "provenance", "flag", "dataset"]
DType = Literal["float", "int", "category", "string", "bool"]


@dataclass(frozen=True)
class Column:
    """One named, unit-bearing column of the poreml vocabulary.

    Attributes:
        name: exact column name (units are part of it).
        kind: role of the column.
        dtype: value type.
        unit: unit in words ("nm", "fraction", "wt %", "%", "-").
        description: meaning, one line.
        bounds: inclusive (low, high) contract range, or None when unbounded.
        domain: inclusive (low, high) physical range, checked before anything is simulated.
            Defaults to ``bounds``.
        domain_open_low: when True the lower end of ``domain`` is exclusive (e.g. sizes > 0).
        default: value used when a design column is left out.
        categories: allowed values of a categorical column.
        log_scale: whether the column is naturally searched on a log scale.
    """

    name: str
    kind: ColumnKind
    dtype: DType
    unit: str
    description: str
    bounds: tuple[float, float] | None = None
    domain: tuple[float, float] | None = None
    domain_open_low: bool = False
    default: float | str | None = None
    categories: tuple[str, ...] = field(default_factory=tuple)
    log_scale: bool = False

    @property
    def physical_domain(self) -> tuple[float, float] | None:
        """The physical range (``domain`` if declared, else ``bounds``)."""
        return self.domain if self.domain is not None else self.bounds

    def describe_range(self, physical: bool = False) -> str:
        """Human-readable allowed values, e.g. ``"a number in [0, 0.8] (fraction)"``."""
        if self.dtype == "category":
            return "one of " + ", ".join(repr(c) for c in self.categories)
        rng = self.physical_domain if physical else self.bounds
        if rng is None:
            return f"a finite number ({self.unit})"
        lo, hi = rng
        open_low = physical and self.domain_open_low
        if hi == float("inf"):
            return f"a number {'>' if open_low else '>='} {_fmt(lo)} ({self.unit})"
        left = "(" if open_low else "["
        return f"a number in {left}{_fmt(lo)}, {_fmt(hi)}] ({self.unit})"


def _fmt(x: float) -> str:
    return f"{x:g}"


ROUTES: tuple[str, ...] = ("bottom_up", "top_down", "transcription")
"""Synthesis families; their index is the route code used inside the physics."""

_DESIGN = (
    Column(
        "route",
        "design",
        "category",
        "-",
        "synthesis family: bottom-up assembly, top-down etching, transcription / CVD-Si in C",
        default="transcription",
        categories=ROUTES,
    ),
    Column(
        "pore_size_nm",
        "design",
        "float",
        "nm",
        "median intraparticle pore diameter",
        bounds=(0.5, 1000.0),
        domain=(0.0, float("inf")),
        domain_open_low=True,
        default=20.0,
        log_scale=True,
    ),
    Column(
        "porosity",
        "design",
        "float",
        "fraction",
        "intraparticle pore volume / particle envelope volume (delithiated)",
        bounds=(0.0, 0.8),
        domain=(0.0, 0.9),
        default=0.3,
    ),
    Column(
        "closed_pore_fraction",
        "design",
        "float",
        "fraction",
        "share of the pore volume not reachable by electrolyte",
        bounds=(0.0, 1.0),
        default=0.5,
    ),
    Column(
        "carbon_wt_pct",
        "design",
        "float",
        "wt %",
        "total carbon in the composite particle",
        bounds=(2.0, 90.0),
        domain=(0.0, 100.0),
        default=40.0,
    ),
    Column(
        "si_domain_nm",
        "design",
        "float",
        "nm",
        "Si primary-domain size / pore-wall thickness",
        bounds=(1.0, 3000.0),
        domain=(0.0, float("inf")),
        domain_open_low=True,
        default=20.0,
        log_scale=True,
    ),
    Column(
        "shell_nm",
        "design",
        "float",
        "nm",
        "outer carbon shell thickness",
        bounds=(0.0, 50.0),
        domain=(0.0, float("inf")),
        default=5.0,
    ),
    Column(
        "d50_um",
        "design",
        "float",
        "µm",
        "secondary particle median size",
        bounds=(2.0, 25.0),
        domain=(0.0, float("inf")),
        domain_open_low=True,
        default=10.0,
    ),
    Column(
        "graphitic_fraction",
        "design",
        "float",
        "fraction",
        "share of the carbon that is graphitic",
        bounds=(0.0, 1.0),
        default=0.0,
    ),
)

_MEASURED = (
    Column("tap_density_g_cm3", "measured", "float", "g/cm³", "powder tap density", (0.0, 3.0)),
    # 30,000 m²/g is far above any real powder (a unit check, not a plausibility check): the
    # idealised-cylinder BET of the virtual lab (E9) reaches ~28,000 m²/g at d = 0.5 nm and
    # φ = 0.9, and lab output must validate unclipped.
    Column("ssa_m2_g", "measured", "float", "m²/g", "BET specific surface area", (0.0, 30000.0)),
    Column(
        "specific_capacity_mah_g",
        "measured",
        "float",
        "mAh/g",
        "reversible capacity at the test rate",
        (0.0, 4500.0),
    ),
    Column("ice_pct", "measured", "float", "%", "initial coulombic efficiency", (0.0, 100.0)),
    Column(
        "retention_pct",
        "measured",
        "float",
        "%",
        "capacity retention after retention_cycles cycles (500 unless the row says otherwise)",
        (0.0, 100.0),
    ),
    Column(
        "expansion_pct",
        "measured",
        "float",
        "%",
        "particle volume expansion at full lithiation",
        (0.0, 500.0),
    ),
    Column(
        "electrode_swelling_pct",
        "measured",
        "float",
        "%",
        "electrode thickness swelling at full lithiation",
        (0.0, 500.0),
    ),
    Column(
        "volumetric_capacity_mah_cm3",
        "measured",
        "float",
        "mAh/cm³",
        "lithiated-electrode volumetric capacity",
        (0.0, 5000.0),
    ),
    Column(
        "strain_buffering",
        "measured",
        "float",
        "fraction",
        "share of the free Si/C expansion absorbed inside the particle",
        (0.0, 1.0),
    ),
    Column(
        "electrolyte_uptake_ul_mg",
        "measured",
        "float",
        "µL/mg",
        "electrolyte held by open pores",
        (0.0, 20.0),
    ),
)

_OTHER = (
    Column("candidate_id", "identity", "string", "-", "candidate identifier, unique per campaign"),
    Column(
        "retention_cycles",
        "condition",
        "int",
        "cycles",
        "cycle count at which retention_pct was read (virtual lab and campaign tables: 500 when "
        "absent; curated dataset: blank when the source states none)",
        (1.0, 100000.0),
    ),
    Column("feasible", "flag", "bool", "-", "whether the route can make the requested design"),
    # Curated-dataset columns beyond the contract (datasets/README.md explains each).
    Column("id", "dataset", "string", "-", "stable row identifier of the curated dataset"),
    Column("material_name", "dataset", "string", "-", "material as described in the source"),
    Column(
        "capacity_cycle",
        "dataset",
        "int",
        "cycles",
        "cycle at which the stored specific or areal capacity was read (blank: not stated)",
        (1.0, 100000.0),
    ),
    Column("si_wt_pct", "dataset", "float", "wt %", "Si content of the composite", (0.0, 100.0)),
    Column(
        "compaction_density_g_cm3",
        "dataset",
        "float",
        "g/cm³",
        "electrode (calendered) density",
        (0.0, 3.0),
    ),
    Column(
        "areal_capacity_mah_cm2",
        "dataset",
        "float",
        "mAh/cm²",
        "areal capacity or loading of the test",
        (0.0, 20.0),
    ),
    Column("current_density", "dataset", "string", "-", "test rate with its unit, as written"),
    Column("cell_type", "dataset", "string", "-", "half, full or unknown"),
    Column("expansion_kind", "dataset", "string", "-", "particle or electrode"),
    Column("capacity_basis", "dataset", "string", "-", "what specific_capacity_mah_g refers to"),
    Column(
        "material_id",
        "provenance",
        "string",
        "-",
        "stable key shared by every row of one material (curated dataset)",
    ),
    Column("reference", "provenance", "string", "-", "authors, journal, year"),
    Column("doi", "provenance", "string", "-", "DOI of the original paper"),
    Column("source", "provenance", "string", "-", "seed file name or literature row id"),
    Column("confidence", "provenance", "string", "-", "high / medium / low"),
    Column("basis", "provenance", "string", "-", "kind of source behind the values"),
    Column("notes", "provenance", "string", "-", "qualifiers and curation notes"),
)

COLUMNS: dict[str, Column] = {c.name: c for c in (*_DESIGN, *_MEASURED, *_OTHER)}
"""Every contract column by name."""

DESIGN_COLUMNS: tuple[str, ...] = tuple(c.name for c in _DESIGN)
"""Design columns in contract order (``route`` first)."""

CONTINUOUS_DESIGN_COLUMNS: tuple[str, ...] = tuple(c.name for c in _DESIGN if c.dtype == "float")
"""The eight continuous design columns in contract order."""

MEASURED_COLUMNS: tuple[str, ...] = tuple(c.name for c in _MEASURED)
"""Measured columns in contract order."""

PROVENANCE_COLUMNS: tuple[str, ...] = (
    "material_id",
    "reference",
    "doi",
    "source",
    "confidence",
    "basis",
    "notes",
)
"""Free-text provenance columns of the curated dataset, in its column order."""

DESIGN_DEFAULTS: dict[str, float | str] = {
    c.name: c.default for c in _DESIGN if c.default is not None
}
"""Value of each design column when it is left out."""

DEFAULT_RETENTION_CYCLES = 500


def column(name: str) -> Column:
    """Return the declared column ``name``.

    Raises:
        KeyError: with the list of known columns when ``name`` is not part of the vocabulary.
    """
    try:
        return COLUMNS[name]
    except KeyError:
        raise KeyError(
            f"unknown column {name!r}; the poreml vocabulary has: {', '.join(COLUMNS)}"
        ) from None
