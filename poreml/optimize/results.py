"""Result rows for a campaign: validation against the contract and merging into the state.

:func:`validate_results` checks a results table (every bad cell reported at once);
:func:`merge_results` merges the checked rows into a
:class:`~poreml.optimize.state.CampaignState` and says what changed in a :class:`TellSummary`.
A re-sent value equal to the recorded one (within :data:`VALUE_RTOL`; design values within
:data:`DESIGN_RTOL`) changes nothing; a different one is a conflict, and every conflict is
reported at once.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from poreml.data.schema import (
    COLUMNS,
    DEFAULT_RETENTION_CYCLES,
    DESIGN_COLUMNS,
    PROVENANCE_COLUMNS,
)
from poreml.data.validation import validate_table
from poreml.exceptions import ConflictError, DataValidationError, Problem
from poreml.optimize.state import RESULT_COLUMNS, CampaignState, Observation

__all__ = [
    "DESIGN_RTOL",
    "VALUE_RTOL",
    "TellSummary",
    "is_blank",
    "merge_results",
    "validate_results",
]

VALUE_RTOL = 1e-9
"""Relative tolerance under which a re-sent measured value equals the recorded one."""

DESIGN_RTOL = 1e-6
"""Relative tolerance under which a re-sent design value equals the proposed one (CSV
round trips through spreadsheets may shorten numbers)."""


@dataclass(frozen=True)
class TellSummary:
    """What one :meth:`~poreml.optimize.campaign.Campaign.tell` changed.

    Attributes:
        new: ids observed for the first time (pending candidates and outside data).
        updated: ids that already had results and received further measured values.
        unchanged: ids whose rows added nothing (identical re-sends, or only blanks).
        outside: the ids among ``new`` that the campaign had not proposed.
    """

    new: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    outside: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether the campaign state changed."""
        return bool(self.new or self.updated)


def is_blank(value: object) -> bool:
    """Whether a cell is empty (None or NaN)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _same(old: float, new: float, rtol: float) -> bool:
    return math.isclose(old, new, rel_tol=rtol, abs_tol=1e-12)


def validate_results(
    results: pd.DataFrame, known_ids: Collection[str], source: str | None = None
) -> pd.DataFrame:
    """Check a results table against the contract and the campaign's candidates.

    Args:
        results: one row per candidate: ``candidate_id`` and any subset of the measured
            columns and ``feasible``; rows for ids not in ``known_ids`` are outside data and
            must carry every design column and at least one result. ``retention_cycles``, if
            given, must be 500 where ``retention_pct`` is given; ``predicted_*`` and provenance
            columns are accepted.
        known_ids: ids of the campaign's observed and pending candidates.
        source: name of the input (e.g. the CSV path) for messages.

    Returns:
        The validated table (contract dtypes, blank = None / NaN).

    Raises:
        DataValidationError: listing every bad cell.
    """
    if not isinstance(results, pd.DataFrame):
        raise DataValidationError(
            [Problem(None, None, type(results).__name__, "a table of results")], source
        )
    allowed_extra = [c for c in results.columns if str(c).startswith("predicted_")]
    frame = validate_table(results, source=source, allow_columns=allowed_extra)
    problems: list[Problem] = []
    accepted = {
        "candidate_id",
        *DESIGN_COLUMNS,
        *RESULT_COLUMNS,
        "retention_cycles",
        *PROVENANCE_COLUMNS,
        *allowed_extra,
    }
    for name in frame.columns:
        if name not in accepted:
            problems.append(
                Problem(
                    None,
                    name,
                    name,
                    "candidate_id, design, measured, feasible or retention_cycles columns "
                    f"(a {COLUMNS[name].kind} column has no place in campaign results)",
                )
            )
    if "candidate_id" not in frame.columns:
        problems.append(
            Problem(
                None,
                "candidate_id",
                "<missing column>",
                "a candidate_id column naming each candidate",
            )
        )
        raise DataValidationError(problems, source)
    if len(frame) == 0:
        problems.append(Problem(None, None, "0 rows", "at least one result row"))
    for i, cid in enumerate(frame["candidate_id"].tolist()):
        row = i + 1
        if cid is None:
            problems.append(Problem(row, "candidate_id", "blank", "a candidate id"))
            continue
        if cid in known_ids:
            continue
        # outside data: every design column, and at least one result
        for name in DESIGN_COLUMNS:
            if name not in frame.columns or is_blank(frame.at[i, name]):
                problems.append(
                    Problem(
                        row,
                        name,
                        "blank" if name in frame.columns else "<missing column>",
                        f"a value: {cid!r} is not a candidate of this campaign, so the row is "
                        "outside data and needs every design column",
                    )
                )
        if not any(c in frame.columns and not is_blank(frame.at[i, c]) for c in RESULT_COLUMNS):
            problems.append(
                Problem(row, None, "no result", "at least one measured value or feasible flag")
            )
    if "retention_cycles" in frame.columns and "retention_pct" in frame.columns:
        for i in range(len(frame)):
            cyc = frame.at[i, "retention_cycles"]
            if (
                not is_blank(cyc)
                and not is_blank(frame.at[i, "retention_pct"])
                and float(cyc) != DEFAULT_RETENTION_CYCLES
            ):
                problems.append(
                    Problem(
                        i + 1,
                        "retention_cycles",
                        cyc,
                        f"{DEFAULT_RETENTION_CYCLES} (campaign retention_pct values refer "
                        f"to {DEFAULT_RETENTION_CYCLES} cycles; leave retention_pct blank "
                        "otherwise)",
                    )
                )
    if problems:
        raise DataValidationError(problems, source)
    return frame


def merge_results(
    state: CampaignState, frame: pd.DataFrame, source: str | None = None
) -> TellSummary:
    """Merge validated result rows into ``state`` (changed in place).

    Pending candidates with results become observations; unknown ids become outside data;
    known observations receive the values they lacked. Nothing in ``state`` changes when the
    summary says nothing changed.

    Args:
        state: the state to change (a transaction's working copy).
        frame: output of :func:`validate_results`.
        source: name of the input, for messages.

    Returns:
        What changed.

    Raises:
        ConflictError: a value contradicts a recorded or proposed one (every conflict named:
            id, column, recorded and new value). ``state`` is then partly changed and must be
            discarded.
    """
    observed = {r.candidate_id: r for r in state.observations}
    pending = {r.candidate_id: r for r in state.pending}
    conflicts: list[str] = []
    new: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    outside: list[str] = []
    result_cols = [c for c in RESULT_COLUMNS if c in frame.columns]
    design_cols = [c for c in DESIGN_COLUMNS if c in frame.columns]
    done_pending: set[str] = set()
    for i in range(len(frame)):
        cid = str(frame.at[i, "candidate_id"])
        values = {c: frame.at[i, c] for c in result_cols if not is_blank(frame.at[i, c])}
        record = observed.get(cid)
        prop = pending.get(cid)
        known = record or prop
        if known is not None:
            for c in design_cols:
                v = frame.at[i, c]
                if is_blank(v):
                    continue
                old = known.design[c]
                same = old == v if c == "route" else _same(float(old), float(v), DESIGN_RTOL)
                if not same:
                    conflicts.append(
                        f"candidate {cid!r}, column {c!r}: proposed {old!r}, new {v!r}"
                    )
        if record is None and prop is None:  # outside data
            record = Observation(
                candidate_id=cid,
                source="outside",
                round=None,
                design={
                    c: (str(frame.at[i, c]) if c == "route" else float(frame.at[i, c]))
                    for c in DESIGN_COLUMNS
                },
            )
            _merge_values(record, values, cid, conflicts)
            observed[cid] = record
            state.observations.append(record)
            new.append(cid)
            outside.append(cid)
            continue
        if record is None:  # a pending proposal
            if not values:
                unchanged.append(cid)
                continue
            assert prop is not None
            record = Observation(
                candidate_id=cid,
                source="proposal",
                round=prop.round,
                design=dict(prop.design),
                predicted=dict(prop.predicted),
            )
            _merge_values(record, values, cid, conflicts)
            observed[cid] = record
            state.observations.append(record)
            done_pending.add(cid)
            new.append(cid)
            continue
        if _merge_values(record, values, cid, conflicts):
            updated.append(cid)
        else:
            unchanged.append(cid)
    if conflicts:
        raise ConflictError(
            (f"{source}: " if source else "")
            + f"{len(conflicts)} value(s) contradict results already recorded:\n  - "
            + "\n  - ".join(conflicts)
            + "\nNothing was recorded. Fix: correct the file, or give the re-measured material "
            "a new candidate_id (outside data with every design column)."
        )
    state.pending = [r for r in state.pending if r.candidate_id not in done_pending]
    return TellSummary(tuple(new), tuple(updated), tuple(unchanged), tuple(outside))


def _merge_values(
    record: Observation, values: Mapping[str, Any], cid: str, conflicts: list[str]
) -> bool:
    """Fill ``record`` with ``values``; note conflicts; return whether anything was added."""
    changed = False
    for c, v in values.items():
        if c == "feasible":
            old = record.feasible
            new = bool(v)
            if old is None:
                record.feasible = new
                changed = True
            elif old != new:
                conflicts.append(
                    f"candidate {cid!r}, column 'feasible': recorded {old!r}, new {new!r}"
                )
            continue
        new_f = float(v)
        old_v = record.measured.get(c)
        if old_v is None:
            record.measured[c] = new_f
            changed = True
        elif not _same(float(old_v), new_f, VALUE_RTOL):
            conflicts.append(f"candidate {cid!r}, column {c!r}: recorded {old_v!r}, new {new_f!r}")
    return changed
