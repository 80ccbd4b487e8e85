"""Curate the raw sources in ``datasets/raw`` into one dataset in the contract vocabulary.

Three raw files, each an immutable transcription (never edited; corrections live here):

* ``seed001_table1.csv`` — every row of Table 1 of seed review 001 (porous Si–C materials),
  recovered from the garbled text copy; ids ``T1-01`` … ``T1-17`` (the row printed split over
  two text lines is ``T1-12a`` / ``T1-12b``).
* ``seed_materials.csv`` — every other material of both seed reviews with numbers for our
  columns, one row per material and test with a verbatim quote; ids ``SM-01`` … ``SM-37``.
* ``literature_si_c.csv`` — the hand-compiled literature table (byte copy of
  ``shared/data/literature_si_c.csv``); ids ``SIC001`` … ``SIC058``.

The ids are written in the raw files, so they are stable. The curated frame keeps one row per
raw row (sources are never merged), converts units only where the unit is certain (recorded in
``notes``), never fills a design default, keeps each retention with its own cycle count and maps
every source's synthesis class onto the contract ``route`` (documented below and in
``datasets/README.md``). Output is deterministic: rows sorted by ``id``, fixed float format,
``\\n`` line endings.

Cycle counts (one meaning per column):

* ``retention_cycles`` is the cycle count at which ``retention_pct`` was read, and only that: it
  is filled only next to a stored retention and never defaulted (a retention without a count
  keeps a blank count, noted);
* ``capacity_cycle`` is the cycle at which the stored specific or areal capacity was read, where
  the source says so: seed-text rows whose count comes without a retention, literature rows whose
  capacity basis is "capacity after cycling", and :data:`TABLE1_CAPACITY_CYCLES`;
* a count that is neither (SIC021: length of the test; SIC026: cycle of a capacity kept in the
  notes) stays in ``notes`` only.

Material key: ``material_id`` is shared by every row of one material (grouped CV groups by it).
Rule (:func:`material_id`): seed rows → ``seed<NNN>-ref<N>`` from the review and the reference
number that opens ``reference`` (so differently spelled references to one paper agree); literature
rows → ``doi-<slug of the DOI>``, else ``lit-<row id>``. :data:`MATERIAL_OVERRIDES` give their own
key to rows about a different material of the same paper (a precursor, a benchmark). Rows about
the same particles tested differently (another cell, binder, electrolyte, loading or a graphite
blend) keep the paper's key.

Areal-only statements: a statement whose only number in our columns is an areal capacity gets a
row like any other (SM-15, SM-36, SM-37), noted in the row.

Si domain size: where a literature row states a Si crystallite, grain or domain size in its free
text, :data:`LITERATURE_SI_DOMAIN` reads it into ``si_domain_nm`` (same parsing as a cell: a range
→ midpoint, a bound or an out-of-range value → nothing stored), with a note per row. Other sizes
(Si nanoparticles, shells) are not read from free text.

Route taxonomy (the contract follows seed review 001):

* seed 001 classes (Table 1 groups, synthesis sections): ``Bottom-up`` → ``bottom_up``,
  ``Top-down`` → ``top_down`` (including Mg-thermic reduction / etching of SiOx),
  ``Transcription`` → ``transcription``;
* seed 000 classes: ``Etching-assisted fabrication`` (etched Mg2Si) → ``top_down``;
  ``Template-guided synthesis`` has no one-to-one class → empty;
* literature table: ``bottom_up`` / ``top_down`` / ``transcription`` kept, except rows made by
  magnesiothermic reduction, which the literature table classes as ``transcription`` and seed 001
  (and the virtual lab) as top-down → :data:`MG_THERMIC_ROUTE`; ``other`` and empty → empty;
* a material the review does not classify → empty. The original class is always in ``notes``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from poreml.data.io import DataFileError, read_csv, write_text
from poreml.data.schema import (
    COLUMNS,
    CONTINUOUS_DESIGN_COLUMNS,
    DESIGN_COLUMNS,
    MEASURED_COLUMNS,
    PROVENANCE_COLUMNS,
    ROUTES,
)
from poreml.exceptions import DataValidationError, Problem

TABLE1_FILE = "seed001_table1.csv"
"""Raw transcription of Table 1 of seed review 001."""
SEED_MATERIALS_FILE = "seed_materials.csv"
"""Raw transcription of the other materials of both seed reviews."""
LITERATURE_FILE = "literature_si_c.csv"
"""Byte copy of the hand-compiled literature table."""
RAW_FILES: tuple[str, ...] = (TABLE1_FILE, SEED_MATERIALS_FILE, LITERATURE_FILE)

DEFAULT_RAW_DIR = Path("datasets/raw")
DEFAULT_OUT = Path("datasets/porous_sic.csv")

SEED_REVIEWS: dict[str, str] = {
    "000_1f5434763eb9c3dc.txt": "seed review 000 (Zhang, Luo, Liu, Wang: Porous Si-Based "
    "Materials for Lithium-Ion Battery Anodes)",
    "001_97916dfed7506c7f.txt": "seed review 001 (Luo, Pun, Yan, Liu: porous alloying-type "
    "particles; RSC 2026)",
}
"""Seed file name → how the review is cited in ``reference``."""

CONDITION_COLUMNS: tuple[str, ...] = (
    "retention_cycles",
    *(
        name
        for name, col in COLUMNS.items()
        if col.kind == "dataset" and name not in ("id", "material_name")
    ),
)
"""Test conditions and qualifiers carried next to the measured columns."""

OUTPUT_COLUMNS: tuple[str, ...] = (
    "id",
    "material_name",
    *DESIGN_COLUMNS,
    *MEASURED_COLUMNS,
    *CONDITION_COLUMNS,
    *PROVENANCE_COLUMNS,
)
"""Columns of the curated dataset, in order."""

TEXT_COLUMNS: tuple[str, ...] = tuple(
    c for c in OUTPUT_COLUMNS if COLUMNS[c].dtype in ("string", "category")
)
"""Free-text and categorical output columns (written as text)."""
NUMERIC_COLUMNS: tuple[str, ...] = tuple(c for c in OUTPUT_COLUMNS if c not in TEXT_COLUMNS)
INT_COLUMNS: tuple[str, ...] = tuple(c for c in OUTPUT_COLUMNS if COLUMNS[c].dtype == "int")
"""Whole-number columns (cycle counts), written without a decimal point."""

STRUCTURE_COLUMNS: tuple[str, ...] = (
    *CONTINUOUS_DESIGN_COLUMNS,
    "tap_density_g_cm3",
    "ssa_m2_g",
)
"""Structure descriptors counted per row by :func:`descriptor_table`: the continuous design
columns plus the two measured powder descriptors (TD, SSA) that the surrogates' ``descriptors``
feature set also takes as inputs."""

CELL_TYPES: tuple[str, ...] = ("half", "full", "unknown")
EXPANSION_KINDS: tuple[str, ...] = ("particle", "electrode")
FLOAT_FORMAT = "%.10g"
"""Float format of the written CSV (reruns give the same bytes)."""
NOTE_SEP = " | "

MG_THERMIC_ROUTE = "top_down"
"""Contract route of porous Si made by magnesiothermic reduction (seed 001 and the virtual lab
class it as top-down; the literature table classes it as transcription)."""
_MG_THERMIC = re.compile(r"magnesiothermic|mg-thermic|magnesium[- ]thermal", re.IGNORECASE)

REVIEW_ROUTES: dict[str, tuple[str | None, str]] = {
    "Bottom-up": ("bottom_up", "review class 'Bottom-up' -> bottom_up"),
    "Top-down": ("top_down", "review class 'Top-down' -> top_down"),
    "Transcription": ("transcription", "review class 'Transcription' -> transcription"),
    "Etching-assisted fabrication": (
        "top_down",
        "seed 000 class 'etching-assisted fabrication' (etching of a Mg2Si precursor) -> "
        "top_down, as seed 001 classes alloy etching",
    ),
    "Template-guided synthesis": (
        None,
        "seed 000 class 'template-guided synthesis' has no one-to-one contract route; left empty",
    ),
    "": (None, "the review does not classify this material; route left empty"),
}
"""Review synthesis class (as transcribed) → (contract route, note)."""

LITERATURE_ROUTE_NOTES: dict[str, str] = {
    "other": "literature route class 'other' (SiO/SiOx, coated nano-Si, binder-free electrode "
    "or nanowire/nanotube/fibre architecture) is not a contract route; left empty",
    "": "route not stated in the source (empty in the literature table); left empty",
}

# --- corrections of transcribed values (raw files stay untouched) -------------------------


@dataclass(frozen=True)
class Correction:
    """A documented change of one transcribed cell.

    Attributes:
        column: output column changed.
        raw_value: the raw cell as transcribed (checked, so a changed raw file is noticed).
        value: the value used instead (None = left empty).
        reason: why, with the supporting text.
    """

    column: str
    raw_value: str
    value: float | None
    reason: str


TABLE1_CORRECTIONS: dict[str, tuple[Correction, ...]] = {
    "T1-05": (
        Correction(
            "tap_density_g_cm3",
            "4.15",
            None,
            "Table 1 prints TD 4.15 g/cm3, above the true density of Si (2.33 g/cm3), which no "
            "powder tap density can reach; not restated in the text; left empty",
        ),
    ),
    "T1-10": (
        Correction(
            "tap_density_g_cm3",
            "0.48",
            0.93,
            "Table 1 prints TD 0.48, which the text (seed 001 lines 72-73) gives for the Np-Si "
            "precursor; the text gives TD 0.93 for PC/Np-Si, used here",
        ),
    ),
    "T1-13": (
        Correction(
            "tap_density_g_cm3",
            "0.5",
            1.2,
            "Table 1 prints TD 0.5; the text (seed 001 line 78) gives '1.2 g cm−3 tap density' "
            "for the CNT@Si@C microspheres, used here",
        ),
    ),
}
"""Table 1 cells replaced by the value the review's text supports."""

TABLE1_LOW_CONFIDENCE: dict[str, str] = {
    "T1-05": "tap-density cell impossible as printed",
    "T1-10": "tap-density cell contradicts the text",
    "T1-12a": "row printed split over two text lines; cell alignment reconstructed",
    "T1-12b": "row printed split over two text lines; cell alignment reconstructed",
    "T1-13": "tap-density cell contradicts the text",
    "T1-15": "SSA cell (1678 m2/g) implausible with 88.4 % ICE; possibly the template's SSA",
}
SEED_LOW_CONFIDENCE: dict[str, str] = {
    "SM-07": "normalising mass of the full-cell capacity not stated",
    "SM-26": "SSA unit misprinted; TD and CD given as ranges",
}

LITERATURE_CAPACITY_BASIS: dict[str, str] = {
    **{f"SIC{i:03d}": "first reversible capacity (review-table Qr1)" for i in range(39, 53)},
    **{
        rid: "capacity after cycling (cycle number in capacity_cycle)"
        for rid in (
            "SIC007",
            "SIC009",
            "SIC010",
            "SIC011",
            "SIC012",
            "SIC014",
            "SIC016",
            "SIC019",
            "SIC022",
            "SIC023",
            "SIC025",
            "SIC053",
            "SIC055",
            "SIC056",
            "SIC057",
            "SIC058",
        )
    },
    "SIC054": "capacity after cycling (cycle number in capacity_cycle); per Si mass",
    "SIC021": "initial discharge capacity",
    "SIC024": "rate-test capacity",
    "SIC004": "per total electrode mass",
    "SIC037": "per total electrode mass",
    "SIC020": "per total mass",
}
"""Capacity basis of literature rows, from its datasheet (shared/data/README.md §7.2)."""
LITERATURE_DEFAULT_CAPACITY_BASIS = "headline capacity as reported (basis not stated)"

LITERATURE_CELL_TYPES: dict[str, tuple[str, str]] = {
    "SIC017": (
        "full",
        "cell_type: the retention is from a graphite-blended pouch full cell vs NCM811; "
        "capacity and ICE are not stated as full-cell values",
    ),
    "SIC018": ("full", "cell_type: 110 Ah full cells"),
}
"""Literature rows whose source states the cell type (all others: unknown)."""

AFTER_CYCLING = "capacity after cycling"
"""Start of the capacity basis of literature rows whose capacity was read after cycling."""

TABLE1_CAPACITY_CYCLES: dict[str, str] = {
    "T1-06": "line 60 restates the capacity as '1480 mA h g−1 for 700 cycles'",
}
"""Table 1 rows whose count (retention not stored) is the cycle of the capacity → why."""

LITERATURE_CAPACITY_CYCLES_IN_NOTES: dict[str, tuple[int, str]] = {
    "SIC014": (100, "at the 100th cycle"),
}
"""Literature rows whose capacity cycle is stated only in the notes → (cycle, quoted text)."""

MATERIAL_OVERRIDES: dict[str, tuple[str, str]] = {
    "SM-18": (
        "seed001-ref67-ampsi",
        "uncoated AMPSi, the precursor of AMPSi@C (T1-07, SM-19), is another material of the "
        "same paper",
    ),
    "SM-22": (
        "seed001-ref70-np-si",
        "Np-Si, the bare nanoporous-Si precursor of PC/Np-Si (T1-10, T1-12a, T1-12b, SM-21), is "
        "another material of the same paper",
    ),
    "SM-25": (
        "seed001-ref110-graphite",
        "the benchmark graphite compared with MGS (SM-24) is another material of the same paper",
    ),
}
"""Rows about a different material of the same paper → (their own ``material_id``, why)."""


@dataclass(frozen=True)
class TextReading:
    """A value a literature row states in its free text (material name or notes).

    Attributes:
        reported: the value as stated, in a form :func:`parse_reported` reads (``10-20``, ``<1``).
        quote: text that must occur in the raw row's ``material_name`` or ``notes`` (checked, so a
            changed raw file is noticed).
        meaning: what the source calls the value.
    """

    reported: str
    quote: str
    meaning: str


LITERATURE_SI_DOMAIN: dict[str, TextReading] = {
    "SIC004": TextReading("10-20", "10-20 nm crystallites", "Si crystallite size"),
    "SIC012": TextReading(
        "0.7", "Si domain size 0.7 nm", "Si domain size of the amorphous Si nanodots"
    ),
    "SIC018": TextReading("<1", "Subnano-sized Si (<1 nm)", "Si domain size (sub-nanometre Si)"),
    "SIC026": TextReading("3-5", "3-5 nm Si grains", "Si grain size"),
}
"""Literature rows whose free text states a Si crystallite / grain / domain size."""

# --- raw columns -> output columns ----------------------------------------------------------

TABLE1_NUMERIC: dict[str, str] = {
    "capacity_mAh_g": "specific_capacity_mah_g",
    "ice_pct": "ice_pct",
    "areal_capacity_mAh_cm2": "areal_capacity_mah_cm2",
    "retention_pct": "retention_pct",
    "retention_cycles": "retention_cycles",
    "tap_density_g_cm3": "tap_density_g_cm3",
    "compaction_density_g_cm3": "compaction_density_g_cm3",
    "ssa_m2_g": "ssa_m2_g",
}
SEED_NUMERIC: dict[str, str] = {
    "pore_size_nm": "pore_size_nm",
    "porosity_pct": "porosity",
    "shell_nm": "shell_nm",
    "particle_size_um": "d50_um",
    "tap_density_g_cm3": "tap_density_g_cm3",
    "ssa_m2_g": "ssa_m2_g",
    "compaction_density_g_cm3": "compaction_density_g_cm3",
    "capacity_mAh_g": "specific_capacity_mah_g",
    "ice_pct": "ice_pct",
    "retention_pct": "retention_pct",
    "retention_cycles": "retention_cycles",
    "areal_capacity_mAh_cm2": "areal_capacity_mah_cm2",
    "expansion_pct": "expansion_pct",
}
"""Raw seed-material columns → output columns (``expansion_pct`` is routed by its kind)."""
LITERATURE_NUMERIC: tuple[str, ...] = (
    "pore_size_nm",
    "porosity",
    "closed_pore_fraction",
    "carbon_wt_pct",
    "si_wt_pct",
    "tap_density_g_cm3",
    "ssa_m2_g",
    "compaction_density_g_cm3",
    "specific_capacity_mah_g",
    "ice_pct",
    "retention_pct",
    "retention_cycles",
    "areal_capacity_mah_cm2",
    "expansion_pct",
    "electrode_swelling_pct",
)
"""Literature columns copied under the same name (the literature table uses the vocabulary)."""

PERCENT_TO_FRACTION: dict[str, str] = {"porosity_pct": "porosity"}
"""Raw percentage columns stored as contract fractions (÷ 100)."""


# --- parsing of reported values ---------------------------------------------------------------

_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_PLAIN = re.compile(rf"^{_NUMBER}$")
_APPROX = re.compile(rf"^~\s*({_NUMBER})$")
_RANGE = re.compile(rf"^({_NUMBER})\s*-\s*({_NUMBER})$")
_BOUND = re.compile(rf"^([<>])\s*({_NUMBER})$")


@dataclass(frozen=True)
class Reported:
    """A value as reported, parsed.

    Attributes:
        value: the number to store, or None when nothing may be stored.
        note: how the text became the value (None for a plain number).
    """

    value: float | None
    note: str | None = None


def parse_reported(text: str) -> Reported:
    """Parse one transcribed cell.

    Accepted forms: blank; a plain number (``0.93``); an approximate number (``~0.8``, stored
    as 0.8); a range (``5-8``, stored as its midpoint); a bound (``<20``, ``>2.1``: nothing
    stored); several values separated by ``;`` (e.g. bimodal pores: nothing stored).

    Args:
        text: the raw cell, stripped or not.

    Returns:
        The parsed value with a note describing any conversion.

    Raises:
        ValueError: when the text is none of the accepted forms.
    """
    text = text.strip()
    if text == "":
        return Reported(None)
    if _PLAIN.match(text):
        return Reported(float(text))
    if m := _APPROX.match(text):
        return Reported(float(m.group(1)), f"reported as '{text}' (approximate)")
    if m := _RANGE.match(text):
        lo, hi = float(m.group(1)), float(m.group(2))
        if lo > hi:
            raise ValueError(f"range {text!r} has its bounds reversed")
        mid = (lo + hi) / 2.0
        return Reported(mid, f"reported as the range {lo:g}-{hi:g}; midpoint {mid:g} stored")
    if m := _BOUND.match(text):
        return Reported(None, f"reported only as a bound '{text}'; not stored")
    if ";" in text:
        parts = [p.strip() for p in text.split(";")]
        for p in parts:
            parse_reported(p)
        return Reported(
            None, f"several values reported ({', '.join(parts)}); no single value, not stored"
        )
    raise ValueError(f"cannot read {text!r} as a number, '~x', 'a-b', '<x', '>x' or 'a; b'")


# --- public API -------------------------------------------------------------------------------

_REVIEW_REFERENCE = re.compile(r"^(?:ref\.\s*(\d+)|\[(\d+)\])")
"""The reference number that opens a seed row's ``reference`` (``ref. 70 (…)``, ``[34] (…)``)."""


def material_id(row_id: str, source: str, reference: str, doi: str = "") -> str | None:
    """The ``material_id`` of one curated row (rule in the module docstring).

    Args:
        row_id: the row's id (``T1-10``, ``SM-21``, ``SIC001``).
        source: the seed file name (seed rows) or the literature row id.
        reference: the reference as transcribed (for seed rows, before the review is appended).
        doi: the DOI (literature rows; blank when unknown).

    Returns:
        ``seed<NNN>-ref<N>``, ``doi-<slug>``, ``lit-<row id>`` or the row's
        :data:`MATERIAL_OVERRIDES` key; None when a seed reference does not open with its number.
    """
    if row_id in MATERIAL_OVERRIDES:
        return MATERIAL_OVERRIDES[row_id][0]
    if source in SEED_REVIEWS:
        m = _REVIEW_REFERENCE.match(reference.strip())
        if m is None:
            return None
        return f"seed{source[:3]}-ref{m.group(1) or m.group(2)}"
    if doi.strip():
        return "doi-" + _slug(doi)
    return "lit-" + _slug(row_id)


def read_raw(raw_dir: Path) -> dict[str, pd.DataFrame]:
    """Read the three raw files as text.

    Args:
        raw_dir: folder holding :data:`RAW_FILES`.

    Returns:
        File name → frame of str/NaN cells.

    Raises:
        DataFileError: when a file is missing or unreadable.
    """
    raw_dir = Path(raw_dir)
    missing = [name for name in RAW_FILES if not (raw_dir / name).is_file()]
    if missing:
        raise DataFileError(
            f"{raw_dir}: missing raw file(s) {', '.join(missing)}; the raw folder must hold "
            f"{', '.join(RAW_FILES)} (run from the repository root or pass the folder that "
            "holds them)."
        )
    return {name: read_csv(raw_dir / name) for name in RAW_FILES}


def curate_table1(raw: pd.DataFrame) -> pd.DataFrame:
    """Curate the Table 1 transcription of seed review 001.

    Args:
        raw: ``seed001_table1.csv`` as text. Columns: ``row_id``, ``seed_file``, ``section``,
            ``seed_line``, ``reference``, ``material_name``, ``route_as_classified_in_review``,
            ``capacity_mAh_g``, ``ice_pct``, ``areal_capacity_mAh_cm2``,
            ``current_density_as_written``, ``retention_pct``, ``retention_cycles``,
            ``retention_cell_as_written``, ``tap_density_g_cm3``, ``compaction_density_g_cm3``,
            ``ssa_m2_g``, ``cell_type_per_review_text``, ``transcription_note``.

    Returns:
        One row per raw row with :data:`OUTPUT_COLUMNS` (``id`` = ``row_id``, ``source`` = seed
        file name). :data:`TABLE1_CORRECTIONS` are applied and recorded in ``notes``.

    Raises:
        DataValidationError: for unreadable cells or a correction whose raw cell has changed.
    """
    rows: list[dict[str, object]] = []
    problems: list[Problem] = []
    for i, rec in enumerate(_records(raw)):
        rid = rec["row_id"]
        notes = [
            f"seed 001 Table 1, text line {rec['seed_line']} "
            f"(cell as printed: '{rec['retention_cell_as_written']}')",
            f"transcription: {rec['transcription_note']}",
        ]
        row = _empty_row(rid, rec["material_name"])
        row["route"] = _review_route(rec["route_as_classified_in_review"], notes, problems, i)
        for raw_col, out_col in TABLE1_NUMERIC.items():
            row[out_col] = _parsed(rec, raw_col, out_col, notes, problems, i, TABLE1_FILE)
        if row["ssa_m2_g"] is not None:
            notes.append("ssa_m2_g: Table 1 header 'SSA (g m-2)' read as m²/g (unit as stored)")
        for corr in TABLE1_CORRECTIONS.get(rid, ()):
            _apply_correction(row, rec, corr, notes, problems, i)
        row["current_density"] = rec["current_density_as_written"] or None
        row["cell_type"] = _cell_type(rec["cell_type_per_review_text"], problems, i, TABLE1_FILE)
        if row["specific_capacity_mah_g"] is not None:
            row["capacity_basis"] = "Table 1 specific capacity (test and basis not stated)"
        _cycle_columns(row, notes, TABLE1_CAPACITY_CYCLES.get(rid))
        row["material_id"] = _material_id(rec, rid, rec["seed_file"], "", notes, problems, i)
        row["reference"] = f"{rec['reference']} in {SEED_REVIEWS[rec['seed_file']]}"
        row["source"] = rec["seed_file"]
        row["confidence"] = "low" if rid in TABLE1_LOW_CONFIDENCE else "medium"
        if rid in TABLE1_LOW_CONFIDENCE:
            notes.append(f"confidence low: {TABLE1_LOW_CONFIDENCE[rid]}")
        row["basis"] = "secondary review table (seed 001 Table 1)"
        row["notes"] = notes
        rows.append(row)
    if problems:
        raise DataValidationError(problems, TABLE1_FILE)
    return _finish(rows)


def curate_seed_materials(raw: pd.DataFrame) -> pd.DataFrame:
    """Curate the other seed-review materials.

    Args:
        raw: ``seed_materials.csv`` as text. Columns: ``sm_id``, ``seed_file``, ``section``,
            ``seed_line``, ``material_name``, ``reference``, ``route_as_classified_in_review``,
            ``also_in_table1``, ``quote``, the value columns of :data:`SEED_NUMERIC`,
            ``capacity_basis``, ``current_density_as_written``, ``expansion_kind``,
            ``volumetric_capacity_mAh_cm3``, ``cell_type``, ``other_numbers``,
            ``transcription_note``.

    Returns:
        One row per raw row with :data:`OUTPUT_COLUMNS` (``id`` = ``sm_id``). ``porosity_pct``
        is stored ÷ 100 as ``porosity``; ``particle_size_um`` as ``d50_um``; ``expansion_pct``
        goes to ``expansion_pct`` or ``electrode_swelling_pct`` by its kind; volumetric
        capacities of unstated basis stay in ``notes``.

    Raises:
        DataValidationError: for unreadable cells or unknown categories.
    """
    rows: list[dict[str, object]] = []
    problems: list[Problem] = []
    for i, rec in enumerate(_records(raw)):
        sid = rec["sm_id"]
        seed = rec["seed_file"]
        notes = [
            f"seed {seed[:3]} line {rec['seed_line']} ({rec['section']})",
            f'quote: "{rec["quote"]}"',
            f"transcription: {rec['transcription_note']}",
        ]
        if rec["also_in_table1"]:
            notes.append(f"same material as Table 1 row(s) {rec['also_in_table1']}")
        row = _empty_row(sid, rec["material_name"])
        row["route"] = _review_route(rec["route_as_classified_in_review"], notes, problems, i)
        for raw_col, out_col in SEED_NUMERIC.items():
            scale = 0.01 if raw_col in PERCENT_TO_FRACTION else 1.0
            value = _parsed(
                rec, raw_col, out_col, notes, problems, i, SEED_MATERIALS_FILE, scale=scale
            )
            if raw_col == "particle_size_um" and value is not None:
                notes.append("d50_um: the reported particle diameter is stored as d50")
            row[out_col] = value
        kind = rec["expansion_kind"]
        if kind not in ("", *EXPANSION_KINDS):
            problems.append(Problem(i + 1, "expansion_kind", kind, "particle or electrode"))
        if kind == "electrode":
            row["electrode_swelling_pct"], row["expansion_pct"] = row["expansion_pct"], None
        if row["expansion_pct"] is not None or row["electrode_swelling_pct"] is not None:
            row["expansion_kind"] = kind or None
        vol = _parsed(
            rec,
            "volumetric_capacity_mAh_cm3",
            "volumetric_capacity_mah_cm3",
            notes,
            problems,
            i,
            SEED_MATERIALS_FILE,
        )
        if vol is not None:
            notes.append(
                f"volumetric capacity {vol:g} mAh/cm3 reported with unstated basis (particle "
                "or electrode, lithiated or not): not stored in volumetric_capacity_mah_cm3"
            )
        if rec["other_numbers"]:
            notes.append(f"other numbers in the passage: {rec['other_numbers']}")
        row["current_density"] = rec["current_density_as_written"] or None
        row["cell_type"] = _cell_type(rec["cell_type"], problems, i, SEED_MATERIALS_FILE)
        row["capacity_basis"] = rec["capacity_basis"] or None
        if row["capacity_basis"] is None and row["specific_capacity_mah_g"] is not None:
            row["capacity_basis"] = "capacity as stated in the review (basis not stated)"
        capacity_read = (
            "the transcription reads the count given without a retention as the cycle of the "
            "reported capacity"
            if row["retention_pct"] is None
            else None
        )
        _cycle_columns(row, notes, capacity_read)
        row["material_id"] = _material_id(rec, sid, seed, "", notes, problems, i)
        row["reference"] = f"{rec['reference']} in {SEED_REVIEWS[seed]}"
        row["source"] = seed
        row["confidence"] = "low" if sid in SEED_LOW_CONFIDENCE else "medium"
        if sid in SEED_LOW_CONFIDENCE:
            notes.append(f"confidence low: {SEED_LOW_CONFIDENCE[sid]}")
        row["basis"] = f"secondary review text (seed {seed[:3]})"
        row["notes"] = notes
        rows.append(row)
    if problems:
        raise DataValidationError(problems, SEED_MATERIALS_FILE)
    return _finish(rows)


def curate_literature(raw: pd.DataFrame) -> pd.DataFrame:
    """Curate the hand-compiled literature table.

    Args:
        raw: ``literature_si_c.csv`` as text (26 columns, see ``shared/data/README.md``):
            ``id``, ``material_name``, ``reference``, ``doi``, ``route``, the columns of
            :data:`LITERATURE_NUMERIC`, ``current_density``, ``expansion_kind``, ``confidence``,
            ``basis``, ``source``, ``notes``.

    Returns:
        One row per raw row with :data:`OUTPUT_COLUMNS`. ``source`` is the literature row id
        (e.g. ``SIC014``); the addresses read by its compiler move to ``notes``. Routes are
        mapped as described in the module docstring; capacity basis and cell type come from the
        literature datasheet. Values are kept as reported (no design column is filled).

    Raises:
        DataValidationError: for unreadable cells or unknown route classes.
    """
    rows: list[dict[str, object]] = []
    problems: list[Problem] = []
    for i, rec in enumerate(_records(raw)):
        lid = rec["id"]
        notes = [rec["notes"]] if rec["notes"] else []
        notes.append(f"literature source: {rec['source']}")
        row = _empty_row(lid, rec["material_name"])
        row["route"] = _literature_route(rec, notes, problems, i)
        for col in LITERATURE_NUMERIC:
            row[col] = _parsed(rec, col, col, notes, problems, i, LITERATURE_FILE)
        if lid in LITERATURE_SI_DOMAIN:
            row["si_domain_nm"] = _text_reading(
                rec, LITERATURE_SI_DOMAIN[lid], "si_domain_nm", notes, problems, i
            )
        row["current_density"] = rec["current_density"] or None
        row["expansion_kind"] = rec["expansion_kind"] or None
        cell, cell_note = LITERATURE_CELL_TYPES.get(lid, ("unknown", ""))
        row["cell_type"] = cell
        if cell_note:
            notes.append(cell_note)
        if row["specific_capacity_mah_g"] is not None:
            row["capacity_basis"] = LITERATURE_CAPACITY_BASIS.get(
                lid, LITERATURE_DEFAULT_CAPACITY_BASIS
            )
        basis = row["capacity_basis"]
        after_cycling = isinstance(basis, str) and basis.startswith(AFTER_CYCLING)
        _cycle_columns(row, notes, "capacity basis: after cycling" if after_cycling else None)
        if lid in LITERATURE_CAPACITY_CYCLES_IN_NOTES:
            cycle, quote = LITERATURE_CAPACITY_CYCLES_IN_NOTES[lid]
            if quote not in rec["notes"]:
                problems.append(Problem(i + 1, "notes", rec["notes"], f"text containing {quote!r}"))
            row["capacity_cycle"] = cycle
            notes.append(f"capacity_cycle: {cycle} read from the notes ('{quote}')")
        row["material_id"] = _material_id(rec, lid, lid, rec["doi"], notes, problems, i)
        for col in ("reference", "doi", "confidence", "basis"):
            row[col] = rec[col] or None
        row["source"] = lid
        row["notes"] = notes
        rows.append(row)
    if problems:
        raise DataValidationError(problems, LITERATURE_FILE)
    return _finish(rows)


def build_dataset(raw_dir: Path) -> pd.DataFrame:
    """Build the curated dataset from the raw files.

    Args:
        raw_dir: folder holding :data:`RAW_FILES` (normally ``datasets/raw``).

    Returns:
        One row per raw row of every source, columns :data:`OUTPUT_COLUMNS`, sorted by ``id``:
        ``id``, ``material_name``, the design columns (blank unless reported), the measured
        columns, :data:`CONDITION_COLUMNS` and the provenance columns.

    Raises:
        DataFileError: when a raw file is missing or unreadable.
        DataValidationError: when a raw cell cannot be read, ids collide, or a curated value
            lies outside its range.
    """
    raw = read_raw(Path(raw_dir))
    table1 = curate_table1(raw[TABLE1_FILE])
    seed = curate_seed_materials(raw[SEED_MATERIALS_FILE])
    table1 = _cross_reference(table1, raw[SEED_MATERIALS_FILE])
    literature = curate_literature(raw[LITERATURE_FILE])
    df = pd.concat([table1, seed, literature], ignore_index=True)
    df = df.sort_values("id", kind="stable").reset_index(drop=True)
    problems = check_dataset(df)
    if problems:
        raise DataValidationError(problems, f"curated dataset built from {raw_dir}")
    return _typed(df)


def check_dataset(df: pd.DataFrame) -> list[Problem]:
    """List every rule the curated frame breaks (empty list = fine).

    Rules: columns are :data:`OUTPUT_COLUMNS` in order; ids are unique; numeric values lie in
    the schema bounds (:data:`poreml.data.schema.COLUMNS`); cycle counts
    (:data:`INT_COLUMNS`) are whole numbers; ``retention_cycles`` is filled only next to a
    ``retention_pct``; ``route``, ``cell_type`` and ``expansion_kind`` take their allowed values;
    ``source`` and ``material_id`` are never blank.

    Args:
        df: a frame as returned by :func:`build_dataset`.

    Returns:
        The problems, with 1-based row numbers.
    """
    if tuple(df.columns) != OUTPUT_COLUMNS:
        return [Problem(None, None, list(df.columns), f"the columns {list(OUTPUT_COLUMNS)}")]
    problems: list[Problem] = []
    for i in np.flatnonzero(df["id"].duplicated().to_numpy()):
        problems.append(Problem(int(i) + 1, "id", df["id"].iloc[i], "an id not used before"))
    for name in NUMERIC_COLUMNS:
        lo, hi = _bounds(name)
        for i, value in enumerate(df[name].tolist()):
            if _blank(value):
                continue
            x = float(value)
            if not (math.isfinite(x) and lo <= x <= hi):
                problems.append(Problem(i + 1, name, x, f"a number in [{lo:g}, {hi:g}]"))
            elif name in INT_COLUMNS and x != int(x):
                problems.append(Problem(i + 1, name, x, "a whole number of cycles"))
    for i, (cycles, retention) in enumerate(
        zip(df["retention_cycles"].tolist(), df["retention_pct"].tolist(), strict=True)
    ):
        if not _blank(cycles) and _blank(retention):
            problems.append(
                Problem(
                    i + 1,
                    "retention_cycles",
                    cycles,
                    "blank: the row has no retention_pct (a capacity's cycle is capacity_cycle)",
                )
            )
    allowed = {"route": ROUTES, "cell_type": CELL_TYPES, "expansion_kind": EXPANSION_KINDS}
    for name, values in allowed.items():
        for i, value in enumerate(df[name].tolist()):
            if not _blank(value) and value not in values:
                problems.append(Problem(i + 1, name, value, "one of " + ", ".join(values)))
    for name, expected in (
        ("source", "a seed file name or row id"),
        ("material_id", "a material key (poreml.data.curation.material_id)"),
    ):
        for i, value in enumerate(df[name].tolist()):
            if _blank(value):
                problems.append(Problem(i + 1, name, value, expected))
    return problems


def to_csv_text(df: pd.DataFrame) -> str:
    """The curated frame as CSV text: no index, :data:`FLOAT_FORMAT`, ``\\n`` line endings."""
    return df.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n")


def write_dataset(df: pd.DataFrame, path: Path) -> Path:
    """Write the curated frame atomically (temporary file in the same folder, then replace).

    Args:
        df: a frame as returned by :func:`build_dataset`.
        path: destination CSV file; its folder is created when missing.

    Returns:
        ``path``.
    """
    return write_text(to_csv_text(df), Path(path))


def build_command(raw_dir: Path = DEFAULT_RAW_DIR, out: Path = DEFAULT_OUT) -> pd.DataFrame:
    """Build the curated dataset from ``raw_dir`` and write it to ``out`` (``poreml data build``).

    Args:
        raw_dir: folder holding :data:`RAW_FILES`.
        out: destination CSV file.

    Returns:
        The curated frame that was written.
    """
    df = build_dataset(Path(raw_dir))
    write_dataset(df, Path(out))
    return df


def coverage_table(df: pd.DataFrame) -> pd.DataFrame:
    """Count the non-empty cells of every column, overall and per source group.

    Args:
        df: a frame as returned by :func:`build_dataset`.

    Returns:
        One row per column of ``df`` with columns ``column``, ``all`` (non-empty cells in all
        rows), ``table1`` (``T1-*`` rows), ``seed_text`` (``SM-*`` rows) and ``literature``
        (``SIC*`` rows).
    """
    groups: dict[str, Callable[[pd.Series], pd.Series]] = {
        "table1": lambda ids: ids.str.startswith("T1-"),
        "seed_text": lambda ids: ids.str.startswith("SM-"),
        "literature": lambda ids: ids.str.startswith("SIC"),
    }
    ids = df["id"].astype(str)
    filled = pd.DataFrame({c: [not _blank(v) for v in df[c]] for c in df.columns}, index=df.index)
    out = {"column": list(df.columns), "all": [int(filled[c].sum()) for c in df.columns]}
    for name, select in groups.items():
        mask = select(ids).to_numpy()
        out[name] = [int(filled.loc[mask, c].sum()) for c in df.columns]
    return pd.DataFrame(out)


def descriptor_table(
    df: pd.DataFrame, columns: tuple[str, ...] = STRUCTURE_COLUMNS
) -> pd.DataFrame:
    """Count the rows by how many structure descriptors they carry, overall and per source group.

    Args:
        df: a frame as returned by :func:`build_dataset`.
        columns: the descriptor columns (default :data:`STRUCTURE_COLUMNS`).

    Returns:
        Four rows, ``descriptors`` = ``0``, ``1``, ``2``, ``>= 3`` (non-empty cells among
        ``columns``), with the same count columns as :func:`coverage_table`.
    """
    filled = pd.DataFrame({c: [not _blank(v) for v in df[c]] for c in columns}, index=df.index)
    n = filled.sum(axis=1).clip(upper=3).to_numpy()
    ids = df["id"].astype(str)
    masks = {
        "all": np.ones(len(df), dtype=bool),
        "table1": ids.str.startswith("T1-").to_numpy(),
        "seed_text": ids.str.startswith("SM-").to_numpy(),
        "literature": ids.str.startswith("SIC").to_numpy(),
    }
    out: dict[str, list[object]] = {"descriptors": ["0", "1", "2", ">= 3"]}
    for name, mask in masks.items():
        out[name] = [int(((n == k) & mask).sum()) for k in range(4)]
    return pd.DataFrame(out)


def coverage_markdown(coverage: pd.DataFrame) -> str:
    """Render :func:`coverage_table` (or :func:`descriptor_table`) output as a Markdown table.

    Args:
        coverage: the frame returned by :func:`coverage_table` or :func:`descriptor_table`.

    Returns:
        Markdown text ending in a newline, with the row count of each group in the header.
    """
    header = "| " + " | ".join(str(c) for c in coverage.columns) + " |"
    rule = "|" + "|".join(["---"] + ["---:"] * (len(coverage.columns) - 1)) + "|"
    body = [
        "| " + " | ".join(f"`{v}`" if j == 0 else str(v) for j, v in enumerate(rec)) + " |"
        for rec in coverage.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body]) + "\n"


# --- helpers ----------------------------------------------------------------------------------


def _records(raw: pd.DataFrame) -> list[dict[str, str]]:
    """Raw rows as dicts of stripped strings (blank cells → "")."""
    return [
        {k: "" if _blank(v) else str(v).strip() for k, v in rec.items()}
        for rec in raw.to_dict("records")
    ]


def _blank(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def _slug(text: str) -> str:
    """Lower-case ``text`` with every run of other characters than ``a-z0-9`` turned into ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.strip().lower()).strip("-")


def _material_id(
    rec: Mapping[str, str],
    row_id: str,
    source: str,
    doi: str,
    notes: list[str],
    problems: list[Problem],
    index: int,
) -> str | None:
    """:func:`material_id` of a raw row; an override is noted, an unreadable reference reported."""
    key = material_id(row_id, source, rec["reference"], doi)
    if key is None:
        problems.append(
            Problem(
                index + 1,
                "reference",
                rec["reference"],
                "a reference opening with its number ('ref. 70 (…)' or '[34] (…)'), or a "
                "MATERIAL_OVERRIDES entry for the row",
            )
        )
    elif row_id in MATERIAL_OVERRIDES:
        notes.append(f"material_id: own key, because {MATERIAL_OVERRIDES[row_id][1]}")
    return key


def _cycle_columns(row: dict[str, object], notes: list[str], capacity_read: str | None) -> None:
    """Give the parsed cycle count its one meaning (module docstring, "Cycle counts").

    Args:
        row: the row being built; ``retention_cycles`` holds the count parsed from the source.
        notes: the row's notes (appended to).
        capacity_read: why the source's count is the cycle at which the stored capacity was read,
            or None when it is not (or the source does not say).
    """
    count = row["retention_cycles"]
    capacity = (
        row["specific_capacity_mah_g"] is not None or row["areal_capacity_mah_cm2"] is not None
    )
    if count is not None and capacity and capacity_read is not None:
        row["capacity_cycle"] = count
        notes.append(
            f"capacity_cycle: {count:g} is the cycle at which the capacity was read "
            f"({capacity_read})"
        )
    if row["retention_pct"] is None and count is not None:
        row["retention_cycles"] = None
        if row["capacity_cycle"] is None:
            notes.append(
                f"retention_cycles: the source's cycle count {count:g} is neither the cycle of a "
                "stored retention nor that of the stored capacity; both cycle columns left empty"
            )
        else:
            notes.append("retention_cycles: left empty, as no retention % is stored")
    elif row["retention_pct"] is not None and count is None:
        notes.append("retention_cycles: not stated in the source; left empty (not 500)")


def _text_reading(
    rec: Mapping[str, str],
    reading: TextReading,
    out_col: str,
    notes: list[str],
    problems: list[Problem],
    index: int,
) -> float | None:
    """Read a value the source states in free text (checked against the raw row, noted)."""
    if reading.quote not in f"{rec['material_name']} {rec['notes']}":
        problems.append(
            Problem(
                index + 1,
                "material_name/notes",
                rec["material_name"],
                f"text containing {reading.quote!r} (update LITERATURE_SI_DOMAIN when the raw "
                "row changes)",
            )
        )
        return None
    notes.append(f"{out_col}: the source states '{reading.quote}' ({reading.meaning})")
    return _parsed(
        {out_col: reading.reported}, out_col, out_col, notes, problems, index, LITERATURE_FILE
    )


def _areal_only(row: Mapping[str, object]) -> bool:
    """Whether an areal capacity is the row's only number (cycle counts aside)."""
    others = (c for c in NUMERIC_COLUMNS if c not in ("areal_capacity_mah_cm2", *INT_COLUMNS))
    return row["areal_capacity_mah_cm2"] is not None and all(row[c] is None for c in others)


def _empty_row(row_id: str, material_name: str) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(OUTPUT_COLUMNS)
    row["id"] = row_id
    row["material_name"] = material_name
    return row


def _parsed(
    rec: Mapping[str, str],
    raw_col: str,
    out_col: str,
    notes: list[str],
    problems: list[Problem],
    index: int,
    file: str,
    *,
    scale: float = 1.0,
) -> float | None:
    """Parse ``rec[raw_col]``, convert by ``scale`` and note it; drop out-of-range values.

    ``scale`` = 0.01 turns a percentage into a contract fraction (recorded as ``÷ 100``).
    """
    text = rec.get(raw_col, "")
    try:
        rep = parse_reported(text)
    except ValueError as err:
        problems.append(Problem(index + 1, raw_col, text, f"a reported number ({err})"))
        return None
    if rep.note:
        notes.append(f"{out_col}: {rep.note}")
    if rep.value is None:
        return None
    value = rep.value
    if scale != 1.0:
        value = round(rep.value * scale, 12)
        notes.append(
            f"{out_col}: unit conversion, reported {rep.value:g} % ({raw_col}) stored as the "
            f"fraction {value:g} (÷ 100)"
        )
    lo, hi = _bounds(out_col)
    if not lo <= value <= hi:
        notes.append(
            f"{out_col}: reported {value:g} lies outside the range [{lo:g}, {hi:g}]; "
            f"not stored (kept in datasets/raw/{file})"
        )
        return None
    return value


def _bounds(name: str) -> tuple[float, float]:
    col = COLUMNS.get(name)
    if col is not None and col.bounds is not None:
        return col.bounds
    return (-math.inf, math.inf)


def _apply_correction(
    row: dict[str, object],
    rec: Mapping[str, str],
    corr: Correction,
    notes: list[str],
    problems: list[Problem],
    index: int,
) -> None:
    raw_col = {v: k for k, v in TABLE1_NUMERIC.items()}[corr.column]
    if rec[raw_col] != corr.raw_value:
        problems.append(
            Problem(
                index + 1,
                raw_col,
                rec[raw_col],
                f"{corr.raw_value!r} (the value a correction in poreml.data.curation expects; "
                "update TABLE1_CORRECTIONS when the transcription changes)",
            )
        )
        return
    row[corr.column] = corr.value
    stored = "left empty" if corr.value is None else f"{corr.value:g} stored"
    notes.append(f"correction {corr.column}: {corr.reason} ({stored})")


def _review_route(cls: str, notes: list[str], problems: list[Problem], index: int) -> str | None:
    if cls not in REVIEW_ROUTES:
        allowed = "one of " + ", ".join(repr(k) for k in REVIEW_ROUTES)
        problems.append(Problem(index + 1, "route_as_classified_in_review", cls, allowed))
        return None
    route, note = REVIEW_ROUTES[cls]
    notes.append(f"route: {note}")
    return route


def _literature_route(
    rec: Mapping[str, str], notes: list[str], problems: list[Problem], index: int
) -> str | None:
    cls = rec["route"]
    if cls in LITERATURE_ROUTE_NOTES:
        notes.append(f"route: {LITERATURE_ROUTE_NOTES[cls]}")
        return None
    if cls not in ROUTES:
        problems.append(Problem(index + 1, "route", cls, "a literature route class"))
        return None
    text = " ".join((rec["material_name"], rec["notes"]))
    if cls == "transcription" and _MG_THERMIC.search(text):
        notes.append(
            "route: literature class 'transcription' (porous Si by magnesiothermic reduction of "
            f"SiO2) -> {MG_THERMIC_ROUTE}, as seed 001 and the virtual lab class Mg-thermic "
            "reduction"
        )
        return MG_THERMIC_ROUTE
    return cls


def _cell_type(text: str, problems: list[Problem], index: int, file: str) -> str:
    value = text or "unknown"
    if value not in CELL_TYPES:
        problems.append(Problem(index + 1, "cell_type", text, "half, full or unknown"))
        return "unknown"
    return value


def _cross_reference(table1: pd.DataFrame, seed_raw: pd.DataFrame) -> pd.DataFrame:
    """Add to each Table 1 row a note naming the seed-text rows about the same material."""
    links: dict[str, list[str]] = {}
    for rec in _records(seed_raw):
        for rid in filter(None, (s.strip() for s in rec["also_in_table1"].split(";"))):
            links.setdefault(rid, []).append(rec["sm_id"])
    out = table1.copy()
    for i, rid in enumerate(out["id"].tolist()):
        if rid in links:
            extra = "the review text adds values for this material in " + ", ".join(links[rid])
            out.loc[i, "notes"] = str(out.loc[i, "notes"]) + NOTE_SEP + extra
    return out


def _finish(rows: list[dict[str, object]]) -> pd.DataFrame:
    for row in rows:
        if _areal_only(row):
            row["notes"].append(  # type: ignore[union-attr]
                "areal-only statement: the areal capacity is the only number in our columns; "
                "kept, as every reported number in our columns is (datasets/README.md §3.4)"
            )
        row["notes"] = NOTE_SEP.join(str(n) for n in row["notes"])  # type: ignore[union-attr]
    return pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=df.index)
    for name in OUTPUT_COLUMNS:
        if name in INT_COLUMNS:
            out[name] = pd.array(
                [None if _blank(v) else int(float(v)) for v in df[name]], dtype="Int64"
            )
        elif name in NUMERIC_COLUMNS:
            out[name] = pd.to_numeric(df[name], errors="raise").astype("float64")
        else:
            out[name] = pd.Series(
                [None if _blank(v) else str(v) for v in df[name]], index=df.index, dtype=object
            )
    return out
