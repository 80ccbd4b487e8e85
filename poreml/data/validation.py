"""Check tables against the data contract declared in :mod:`poreml.data.schema`.

Validation reports every problem at once — row, column, value and the allowed range — through
one :class:`~poreml.exceptions.DataValidationError`. Range, category and missing-value checks are
pandera schemas generated from the declared columns; this module only adds what pandera cannot
see (unknown column names with a "did you mean", literal ``NaN`` text in CSV cells, type errors
reported per cell) and turns pandera's failure cases into :class:`~poreml.exceptions.Problem`.

Two entry points:

* :func:`validate_designs` — design inputs (lab measure, surrogate predict, campaign outside
  data, API): every design column must be a finite value; columns left out get their defaults.
* :func:`validate_table` — datasets and lab results: any contract column may be blank.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from poreml.data.schema import (
    COLUMNS,
    DESIGN_COLUMNS,
    DESIGN_DEFAULTS,
    Column,
)
from poreml.exceptions import DataValidationError, Problem

PASSTHROUGH_PREFIXES: tuple[str, ...] = ("predicted_",)
"""Columns with these prefixes (campaign proposals) are carried through design validation."""

_NAN_TOKENS = frozenset({"nan", "+nan", "-nan", "na", "n/a", "null", "none"})


def validate_designs(
    df: pd.DataFrame,
    *,
    source: str | None = None,
    physical: bool = True,
    fill_defaults: bool = True,
    allow_columns: Iterable[str] = ("candidate_id",),
) -> pd.DataFrame:
    """Validate design inputs and return them typed, in contract order.

    Args:
        df: one row per design. Columns: any subset of the design columns, plus
            ``allow_columns`` and ``predicted_*`` columns, which are passed through.
        source: file name (or other label) used in error messages.
        physical: check the virtual lab's physical domain (spec section 2.1) instead of the
            contract bounds. Use False where only the contract range is acceptable.
        fill_defaults: add design columns that are left out at their contract defaults.
        allow_columns: further non-design columns to accept and pass through unchanged.

    Returns:
        A new frame: ``candidate_id`` first when present, then every design column in contract
        order (floats as float64, ``route`` as str), then the passed-through columns.

    Raises:
        DataValidationError: listing every unknown column, missing or non-finite value,
            out-of-range value and unknown category.
    """
    allowed = set(DESIGN_COLUMNS) | set(allow_columns)
    problems = _unknown_columns(df, allowed, prefixes=PASSTHROUGH_PREFIXES)
    if len(df) == 0:
        problems.append(Problem(None, None, "0 rows", "at least one design row"))
    frame, type_problems = _coerce(df, [c for c in DESIGN_COLUMNS if c in df.columns], physical)
    present = [c for c in DESIGN_COLUMNS if c in frame.columns]
    schema_problems = _run_schema(frame, tuple(present), physical=physical, nullable=False)
    problems += _merge(type_problems, schema_problems)
    if problems:
        raise DataValidationError(problems, source)
    if fill_defaults:
        for name in DESIGN_COLUMNS:
            if name not in frame.columns:
                frame[name] = DESIGN_DEFAULTS[name]
    design = [c for c in DESIGN_COLUMNS if c in frame.columns]
    head = ["candidate_id"] if "candidate_id" in frame.columns else []
    rest = [c for c in frame.columns if c not in design and c not in head]
    out = frame[head + design + rest].copy()
    for name in design:
        out[name] = out[name].astype(str) if name == "route" else out[name].astype("float64")
    return out.reset_index(drop=True)


def validate_table(
    df: pd.DataFrame,
    *,
    source: str | None = None,
    allow_columns: Iterable[str] = (),
    physical: bool = False,
) -> pd.DataFrame:
    """Validate a dataset or results table in which any contract cell may be blank.

    Args:
        df: columns from the poreml vocabulary (plus ``allow_columns``).
        source: file name (or other label) used in error messages.
        allow_columns: extra column names to accept without checks.
        physical: check design columns against the physical domain instead of contract bounds.

    Returns:
        The table with numeric columns as float64 (blank = NaN), in the original column order.

    Raises:
        DataValidationError: listing every unknown column, unparsable or non-finite value,
            out-of-range value and unknown category.
    """
    problems = _unknown_columns(df, set(COLUMNS) | set(allow_columns), prefixes=())
    checked = [c for c in df.columns if c in COLUMNS]
    frame, type_problems = _coerce(df, checked, physical)
    schema_problems = _run_schema(frame, tuple(checked), physical=physical, nullable=True)
    problems += _merge(type_problems, schema_problems)
    if "candidate_id" in frame.columns:
        problems += _duplicate_ids(frame["candidate_id"])
    if problems:
        raise DataValidationError(problems, source)
    return frame.reset_index(drop=True)


def _unknown_columns(df: pd.DataFrame, allowed: set[str], prefixes: tuple[str, ...]) -> list:
    problems = []
    for name in df.columns:
        name_s = str(name)
        if name_s in allowed or name_s.startswith(prefixes):
            continue
        close = difflib.get_close_matches(name_s, sorted(allowed), n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(
            Problem(None, name_s, name_s, "a poreml column name" + hint + "; see CONTRACT.md §1")
        )
    return problems


def _merge(first: list[Problem], second: list[Problem]) -> list[Problem]:
    """Both lists, one problem per cell (the first found wins), sorted by row then column."""
    seen = {(p.row, p.column) for p in first}
    merged = first + [p for p in second if (p.row, p.column) not in seen]
    return sorted(merged, key=lambda p: (p.row or 0, _order(p.column)))


def _coerce(
    df: pd.DataFrame, names: list[str], physical: bool
) -> tuple[pd.DataFrame, list[Problem]]:
    """Convert declared columns to their dtypes cell by cell, reporting every bad cell."""
    frame = df.reset_index(drop=True).copy()
    problems: list[Problem] = []
    for name in names:
        col = COLUMNS[name]
        if col.dtype in ("float", "int"):
            frame[name], bad = _to_float(frame[name], col, physical)
            problems += bad
        elif col.dtype == "bool":
            frame[name], bad = _to_bool(frame[name], col)
            problems += bad
        else:
            frame[name] = frame[name].map(_to_text).astype(object)
    return frame, problems


def _to_float(series: pd.Series, col: Column, physical: bool) -> tuple[pd.Series, list[Problem]]:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype("float64"), []
    allowed = col.describe_range(physical)
    values = np.full(len(series), np.nan)
    problems = []
    for i, raw in enumerate(series.tolist()):
        if raw is None or (isinstance(raw, float) and math.isnan(raw)):
            continue
        if isinstance(raw, bool):
            problems.append(Problem(i + 1, col.name, raw, allowed))
            continue
        text = str(raw).strip()
        if text == "":
            continue
        if text.lower() in _NAN_TOKENS:
            problems.append(
                Problem(
                    i + 1,
                    col.name,
                    text,
                    allowed + " (NaN is not a value: leave the cell blank if not measured)",
                )
            )
            continue
        try:
            values[i] = float(text)
        except ValueError:
            problems.append(Problem(i + 1, col.name, text, allowed))
    return pd.Series(values, index=series.index, name=series.name), problems


def _to_bool(series: pd.Series, col: Column) -> tuple[pd.Series, list[Problem]]:
    if pd.api.types.is_bool_dtype(series):
        return series.astype(object), []
    truth = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    out: list[object] = []
    problems = []
    for i, raw in enumerate(series.tolist()):
        text = "" if raw is None or (isinstance(raw, float) and math.isnan(raw)) else str(raw)
        text = text.strip().lower()
        if text == "":
            out.append(None)
        elif text in truth:
            out.append(truth[text])
        else:
            out.append(None)
            problems.append(Problem(i + 1, col.name, raw, "true or false"))
    return pd.Series(out, index=series.index, name=series.name, dtype=object), problems


def _to_text(raw: object) -> object:
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return None
    text = str(raw).strip()
    return text if text else None


def _duplicate_ids(ids: pd.Series) -> list[Problem]:
    dup = ids.notna() & ids.duplicated(keep="first")
    return [
        Problem(int(i) + 1, "candidate_id", ids.iloc[i], "a candidate_id not used in earlier rows")
        for i in np.flatnonzero(dup.to_numpy())
    ]


def _run_schema(
    frame: pd.DataFrame, names: tuple[str, ...], *, physical: bool, nullable: bool
) -> list[Problem]:
    if not names:
        return []
    schema = _schema(names, physical, nullable)
    try:
        schema.validate(frame[list(names)], lazy=True)
    except SchemaErrors as err:
        return _problems_from_failures(err.failure_cases, frame, physical)
    return []


@lru_cache(maxsize=64)
def _schema(names: tuple[str, ...], physical: bool, nullable: bool) -> pa.DataFrameSchema:
    """A pandera schema for the declared columns ``names`` (cached: schemas are immutable)."""
    columns = {}
    for name in names:
        col = COLUMNS[name]
        checks = []
        if col.dtype == "category":
            checks.append(pa.Check.isin(list(col.categories), name="category"))
        rng = col.physical_domain if physical else col.bounds
        if col.dtype in ("float", "int"):
            checks.append(pa.Check(np.isfinite, element_wise=False, name="finite"))
            if rng is not None:
                lo, hi = rng
                include_min = not (physical and col.domain_open_low)
                checks.append(
                    pa.Check.in_range(lo, hi, include_min=include_min, name="range"),
                )
        if col.dtype == "int":
            checks.append(
                pa.Check(lambda s: np.equal(np.floor(s), s), element_wise=False, name="integer")
            )
        columns[name] = pa.Column(
            nullable=nullable or col.kind not in ("design",), checks=checks, required=True
        )
    return pa.DataFrameSchema(columns, strict=False, coerce=False)


def _problems_from_failures(
    failures: pd.DataFrame, frame: pd.DataFrame, physical: bool
) -> list[Problem]:
    problems: dict[tuple[int | None, str], Problem] = {}
    for rec in failures.to_dict("records"):
        name = str(rec.get("column"))
        col = COLUMNS.get(name)
        idx = rec.get("index")
        row = None if idx is None or (isinstance(idx, float) and math.isnan(idx)) else int(idx) + 1
        check = str(rec.get("check"))
        if col is None:
            continue
        if check == "not_nullable":
            expected = col.describe_range(physical) + " (this design column must not be blank)"
            value: object = "blank"
        else:
            expected = col.describe_range(physical)
            value = rec.get("failure_case")
            if row is not None and name in frame.columns:
                value = frame[name].iloc[row - 1]
        key = (row, name)
        if key not in problems:
            problems[key] = Problem(row, name, _plain(value), expected)
    return list(problems.values())


def _order(name: str | None) -> int:
    names = list(COLUMNS)
    return names.index(name) if name in names else len(names)


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return value
