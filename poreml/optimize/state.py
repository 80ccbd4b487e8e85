"""Everything a campaign knows, as typed records: the content of ``state.json``.

A :class:`CampaignState` holds the stored config and settings, the candidate-id counter, the
position in the space-filling Sobol sequence, the observations, the pending proposals, one
:class:`RoundRecord` per proposal round, one :class:`TellRecord` per result upload that changed
something, and what side channels noted (the tracking parent run).

:meth:`CampaignState.to_dict` writes the JSON layout of ``state.json`` (``"type":
"CampaignState"``, :data:`SCHEMA_VERSION`); :meth:`CampaignState.from_dict` reads it back, and
the round trip is lossless. This module is the only place that layout is written out.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from poreml.data.schema import CONTINUOUS_DESIGN_COLUMNS, DESIGN_COLUMNS, MEASURED_COLUMNS
from poreml.exceptions import CampaignError

__all__ = [
    "ID_PREFIX",
    "RESULT_COLUMNS",
    "SCHEMA_VERSION",
    "STATE_TYPE",
    "CampaignState",
    "Observation",
    "PendingCandidate",
    "RoundRecord",
    "TellRecord",
    "finite_or_none",
    "now",
    "observations_frame",
    "round_seed",
]

SCHEMA_VERSION = 1
"""Version of the ``state.json`` layout; bumped on incompatible changes."""

STATE_TYPE = "CampaignState"
"""Value of the ``"type"`` field of ``state.json``."""

ID_PREFIX = "C"
"""Prefix of generated candidate ids (``C0001``, ``C0002``, …)."""

RESULT_COLUMNS: tuple[str, ...] = (*MEASURED_COLUMNS, "feasible")
"""Columns a result row may fill: every measured column and the ``feasible`` flag."""

_META_COLUMNS = ("source", "round")
_HISTORY_COLUMNS = ("round", "strategy", "reason", "n", "n_observations", "hypervolume", "seconds")
_TRACE_COLUMNS = ("tell", "n_observations", "hypervolume")


def now() -> str:
    """The current UTC time as ISO text to the second (the state's timestamps)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class CancelledCandidate:
    """A proposed candidate withdrawn before any result (e.g. never received, never made).

    Attributes:
        candidate_id: the candidate's id (never given out again).
        round: the proposal round.
        design: design column -> value, as proposed.
        at: when it was cancelled (ISO UTC).
        reason: why, as the user said (None when not given).
    """

    candidate_id: str
    round: int
    design: dict[str, Any]
    at: str
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of ``state.json``'s ``cancelled`` list."""
        return {
            "candidate_id": self.candidate_id,
            "round": self.round,
            "design": dict(self.design),
            "at": self.at,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CancelledCandidate:
        """Read a record written by :meth:`to_dict`."""
        return cls(
            candidate_id=data["candidate_id"],
            round=data["round"],
            design=dict(data["design"]),
            at=data["at"],
            reason=data.get("reason"),
        )


@dataclass
class PendingCandidate:
    """A proposed candidate waiting for any result.

    Attributes:
        candidate_id: the candidate's id.
        round: the proposal round.
        design: design column -> value (``route`` as text, the others as floats).
        predicted: ``predicted_*`` column -> value at proposal time (empty for space-filling
            proposals).
    """

    candidate_id: str
    round: int
    design: dict[str, Any]
    predicted: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of ``state.json``'s ``pending`` list."""
        return {
            "candidate_id": self.candidate_id,
            "round": self.round,
            "design": dict(self.design),
            "predicted": dict(self.predicted),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingCandidate:
        """Read a record written by :meth:`to_dict`."""
        return cls(
            candidate_id=data["candidate_id"],
            round=data["round"],
            design=dict(data["design"]),
            predicted=dict(data.get("predicted") or {}),
        )


@dataclass
class Observation:
    """A candidate with at least one result.

    Attributes:
        candidate_id: the candidate's id.
        source: ``"proposal"`` (proposed by the campaign) or ``"outside"`` (outside data).
        round: the proposal round (None for outside data).
        design: design column -> value.
        measured: every measured column -> value (None = not measured).
        feasible: whether the synthesis succeeded (None = not reported).
        predicted: ``predicted_*`` column -> value at proposal time.
    """

    candidate_id: str
    source: str
    round: int | None
    design: dict[str, Any]
    measured: dict[str, float | None] = field(
        default_factory=lambda: {c: None for c in MEASURED_COLUMNS}
    )
    feasible: bool | None = None
    predicted: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of ``state.json``'s ``observations`` list."""
        return {
            "candidate_id": self.candidate_id,
            "source": self.source,
            "round": self.round,
            "design": dict(self.design),
            "measured": dict(self.measured),
            "feasible": self.feasible,
            "predicted": dict(self.predicted),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Observation:
        """Read a record written by :meth:`to_dict`."""
        return cls(
            candidate_id=data["candidate_id"],
            source=data.get("source", "proposal"),
            round=data.get("round"),
            design=dict(data["design"]),
            measured=dict(data["measured"]),
            feasible=data.get("feasible"),
            predicted=dict(data.get("predicted") or {}),
        )


@dataclass
class RoundRecord:
    """One proposal round (:meth:`~poreml.optimize.campaign.Campaign.ask`).

    Attributes:
        round: round number, from 1.
        at: when it was asked (ISO UTC).
        strategy: ``"sobol"`` or the acquisition strategy.
        reason: why that strategy.
        n: candidates proposed.
        seed: the round's seed.
        candidate_ids: the ids given out.
        n_observations: observations when the round was asked.
        n_pending_before: pending candidates before the round.
        hypervolume: observed hypervolume when the round was asked.
        acquisition_values: acquisition value per candidate (None where not finite; empty for
            space-filling rounds).
        model: what the model-based proposal reported (sources, diagnostics, calibration,
            timings; empty for space-filling rounds).
        seconds: wall time of the proposal.
    """

    round: int
    at: str
    strategy: str
    reason: str
    n: int
    seed: int
    candidate_ids: list[str]
    n_observations: int
    n_pending_before: int
    hypervolume: float
    acquisition_values: list[float | None]
    model: dict[str, Any]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of ``state.json``'s ``rounds`` list."""
        return {
            "round": self.round,
            "at": self.at,
            "strategy": self.strategy,
            "reason": self.reason,
            "n": self.n,
            "seed": self.seed,
            "candidate_ids": list(self.candidate_ids),
            "n_observations": self.n_observations,
            "n_pending_before": self.n_pending_before,
            "hypervolume": self.hypervolume,
            "acquisition_values": list(self.acquisition_values),
            "model": copy.deepcopy(self.model),
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoundRecord:
        """Read a record written by :meth:`to_dict`."""
        return cls(
            round=data["round"],
            at=data["at"],
            strategy=data["strategy"],
            reason=data["reason"],
            n=data["n"],
            seed=data["seed"],
            candidate_ids=list(data["candidate_ids"]),
            n_observations=data["n_observations"],
            n_pending_before=data["n_pending_before"],
            hypervolume=data["hypervolume"],
            acquisition_values=list(data["acquisition_values"]),
            model=copy.deepcopy(dict(data["model"])),
            seconds=data["seconds"],
        )


@dataclass
class TellRecord:
    """One result upload that changed the campaign.

    Attributes:
        tell: upload number, from 1.
        at: when (ISO UTC).
        source: name of the input (e.g. the CSV path), or None.
        new: ids observed for the first time.
        updated: ids that received further measured values.
        n_observations: observations after the upload.
        hypervolume: observed hypervolume after the upload.
    """

    tell: int
    at: str
    source: str | None
    new: list[str]
    updated: list[str]
    n_observations: int
    hypervolume: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of ``state.json``'s ``tells`` list."""
        return {
            "tell": self.tell,
            "at": self.at,
            "source": self.source,
            "new": list(self.new),
            "updated": list(self.updated),
            "n_observations": self.n_observations,
            "hypervolume": self.hypervolume,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TellRecord:
        """Read a record written by :meth:`to_dict`."""
        return cls(
            tell=data["tell"],
            at=data["at"],
            source=data.get("source"),
            new=list(data["new"]),
            updated=list(data["updated"]),
            n_observations=data["n_observations"],
            hypervolume=data["hypervolume"],
        )


@dataclass
class CampaignState:
    """Everything a campaign knows (module doc); the content of ``state.json``.

    Attributes:
        config: the campaign config (:meth:`CampaignConfig.to_dict` form).
        settings: the acquisition settings (:meth:`AcquisitionSettings.to_dict` form).
        seed: the campaign seed (of the Sobol sequence and the round seeds).
        sobol_drawn: space-filling points drawn so far (the Sobol sequence continues there).
        next_candidate: number of the next generated candidate id.
        observations: candidates with results, in the order first told.
        pending: proposed candidates without any result.
        cancelled: pending candidates withdrawn without a result.
        rounds: one record per proposal round.
        tells: one record per result upload that changed something.
        tracking: what side channels noted (``parent_run_id``).
        revision: number of committed changes.
        created_at: creation time (ISO UTC).
        updated_at: time of the last committed change (ISO UTC).
    """

    config: dict[str, Any]
    settings: dict[str, Any]
    seed: int
    sobol_drawn: int = 0
    next_candidate: int = 1
    observations: list[Observation] = field(default_factory=list)
    pending: list[PendingCandidate] = field(default_factory=list)
    cancelled: list[CancelledCandidate] = field(default_factory=list)
    rounds: list[RoundRecord] = field(default_factory=list)
    tells: list[TellRecord] = field(default_factory=list)
    tracking: dict[str, Any] = field(default_factory=lambda: {"parent_run_id": None})
    revision: int = 0
    created_at: str = field(default_factory=now)
    updated_at: str = ""

    def __post_init__(self) -> None:
        if not self.updated_at:
            self.updated_at = self.created_at

    # -- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON layout of ``state.json`` (``"type": "CampaignState"``)."""
        return {
            "type": STATE_TYPE,
            "schema_version": SCHEMA_VERSION,
            "revision": self.revision,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "config": copy.deepcopy(self.config),
            "settings": copy.deepcopy(self.settings),
            "rng": {"seed": self.seed, "sobol_drawn": self.sobol_drawn},
            "next_candidate": self.next_candidate,
            "observations": [r.to_dict() for r in self.observations],
            "pending": [r.to_dict() for r in self.pending],
            "rounds": [r.to_dict() for r in self.rounds],
            "tells": [t.to_dict() for t in self.tells],
            "tracking": copy.deepcopy(self.tracking),
            # optional: absent while nothing was cancelled, so such campaigns keep the layout
            # they were written with
            **({"cancelled": [r.to_dict() for r in self.cancelled]} if self.cancelled else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CampaignState:
        """Read :meth:`to_dict` output (e.g. a parsed ``state.json``).

        Raises:
            CampaignError: not a campaign state, or one of another schema version.
        """
        if not isinstance(data, Mapping) or data.get("type") != STATE_TYPE:
            raise CampaignError(
                f'expected a campaign state dict with "type": "{STATE_TYPE}", got '
                f"{type(data).__name__}. Fix: pass the output of Campaign.to_dict()."
            )
        if data.get("schema_version") != SCHEMA_VERSION:
            raise CampaignError(
                f"campaign state schema version {data.get('schema_version')!r}; this poreml "
                f"reads version {SCHEMA_VERSION}."
            )
        try:
            return cls(
                config=copy.deepcopy(dict(data["config"])),
                settings=copy.deepcopy(dict(data["settings"])),
                seed=data["rng"]["seed"],
                sobol_drawn=data["rng"]["sobol_drawn"],
                next_candidate=data["next_candidate"],
                observations=[Observation.from_dict(r) for r in data["observations"]],
                pending=[PendingCandidate.from_dict(r) for r in data["pending"]],
                cancelled=[CancelledCandidate.from_dict(r) for r in data.get("cancelled", [])],
                rounds=[RoundRecord.from_dict(r) for r in data["rounds"]],
                tells=[TellRecord.from_dict(t) for t in data["tells"]],
                tracking=copy.deepcopy(dict(data["tracking"])),
                revision=data["revision"],
                created_at=data["created_at"],
                updated_at=data["updated_at"],
            )
        except (KeyError, TypeError, AttributeError) as err:
            raise CampaignError(
                f"campaign state is incomplete or malformed ({type(err).__name__}: {err}). "
                "Fix: pass the output of Campaign.to_dict()."
            ) from None

    def copy(self) -> CampaignState:
        """A deep copy (a working copy for a transaction)."""
        return copy.deepcopy(self)

    # -- changes --------------------------------------------------------------------------------
    def touch(self) -> None:
        """Count one committed change: bump :attr:`revision` and stamp :attr:`updated_at`."""
        self.revision = int(self.revision) + 1
        self.updated_at = now()

    def known_ids(self) -> set[str]:
        """Ids of every observed and pending candidate."""
        return {r.candidate_id for r in self.observations} | {r.candidate_id for r in self.pending}

    def cancel_pending(self, ids: Sequence[str], reason: str | None) -> list[str]:
        """Withdraw the pending candidates ``ids`` (each must be pending).

        Returns:
            The ids withdrawn, in the order given.
        """
        wanted = set(ids)
        when = now()
        keep: list[PendingCandidate] = []
        for r in self.pending:
            if r.candidate_id in wanted:
                self.cancelled.append(
                    CancelledCandidate(r.candidate_id, r.round, dict(r.design), when, reason)
                )
            else:
                keep.append(r)
        self.pending = keep
        return [i for i in ids if i in wanted]

    def new_ids(self, n: int) -> list[str]:
        """Give out ``n`` fresh candidate ids (``C0001``, …), skipping ids in use."""
        used = self.known_ids() | {r.candidate_id for r in self.cancelled}
        ids: list[str] = []
        k = int(self.next_candidate)
        while len(ids) < n:
            cid = f"{ID_PREFIX}{k:04d}"
            k += 1
            if cid not in used:
                ids.append(cid)
        self.next_candidate = k
        return ids

    def add_pending(self, proposals: pd.DataFrame, round_index: int) -> None:
        """Record proposals (``candidate_id``, design and ``predicted_*`` columns) as pending.

        Args:
            proposals: the proposed batch, with ids.
            round_index: the round that proposed them.
        """
        for _, row in proposals.iterrows():
            self.pending.append(
                PendingCandidate(
                    candidate_id=str(row["candidate_id"]),
                    round=round_index,
                    design={
                        c: (str(row[c]) if c == "route" else float(row[c])) for c in DESIGN_COLUMNS
                    },
                    predicted={
                        c: float(row[c])
                        for c in proposals.columns
                        if c.startswith("predicted_") and math.isfinite(float(row[c]))
                    },
                )
            )

    # -- tables ---------------------------------------------------------------------------------
    def observations_frame(self) -> pd.DataFrame:
        """Observations as a table.

        Returns:
            ``candidate_id``, the design columns, the measured columns (NaN = not measured),
            ``feasible`` (True / False / None), ``source`` and ``round`` (<NA> for outside
            data).
        """
        return observations_frame(self.observations)

    def pending_frame(self) -> pd.DataFrame:
        """Pending candidates: ``candidate_id``, design columns, ``round``."""
        cols = ["candidate_id", *DESIGN_COLUMNS, "round"]
        rows = [
            {"candidate_id": r.candidate_id, **r.design, "round": r.round} for r in self.pending
        ]
        frame = pd.DataFrame(rows, columns=cols)
        frame = frame.astype({c: "float64" for c in CONTINUOUS_DESIGN_COLUMNS})
        frame["round"] = frame["round"].astype("Int64")
        return frame

    def history_frame(self) -> pd.DataFrame:
        """One row per round: ``round``, ``strategy``, ``reason``, ``n``, ``n_observations``,
        ``hypervolume``, ``seconds``."""
        return pd.DataFrame(
            [{k: getattr(r, k) for k in _HISTORY_COLUMNS} for r in self.rounds],
            columns=list(_HISTORY_COLUMNS),
        )

    def hypervolume_trace(self) -> pd.DataFrame:
        """One row per changing upload: ``tell``, ``n_observations``, ``hypervolume``."""
        return pd.DataFrame(
            [{k: getattr(t, k) for k in _TRACE_COLUMNS} for t in self.tells],
            columns=list(_TRACE_COLUMNS),
        )


def observations_frame(records: Sequence[Observation]) -> pd.DataFrame:
    """:meth:`CampaignState.observations_frame` of any list of observations."""
    cols = ["candidate_id", *DESIGN_COLUMNS, *RESULT_COLUMNS, *_META_COLUMNS]
    rows = []
    for r in records:
        row: dict[str, Any] = {"candidate_id": r.candidate_id, **r.design}
        row.update({k: (np.nan if v is None else v) for k, v in r.measured.items()})
        row["feasible"] = r.feasible
        row["source"] = r.source
        row["round"] = r.round
        rows.append(row)
    frame = pd.DataFrame(rows, columns=cols)
    frame = frame.astype({c: "float64" for c in CONTINUOUS_DESIGN_COLUMNS})
    frame = frame.astype({c: "float64" for c in MEASURED_COLUMNS})
    frame["feasible"] = frame["feasible"].astype(object).where(frame["feasible"].notna(), None)
    frame["round"] = frame["round"].astype("Int64")
    return frame


def finite_or_none(value: float) -> float | None:
    """``value``, or None where it is not finite (JSON has no NaN)."""
    return value if math.isfinite(value) else None


def round_seed(seed: int, k: int) -> int:
    """The seed of round ``k`` of a campaign seeded with ``seed`` (also of its Sobol shuffles)."""
    return int((int(seed) * 1_000_003 + int(k)) % (2**31 - 1))
