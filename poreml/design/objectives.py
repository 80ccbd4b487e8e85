"""Objectives and outcome constraints over the contract's measured columns.

* :class:`Objective` - a measured column to maximise or minimise, with a ``threshold``: the
  worst value still worth having (the hypervolume reference point).
* :class:`OutcomeConstraint` - a measured column that must satisfy ``>= bound`` or
  ``<= bound`` (parsed from strings such as ``">= 80"``).

BoTorch maximises. The helpers here express everything as "larger is better" by a sign flip:
``sign = +1`` for ``maximize`` / ``>=`` and ``-1`` for ``minimize`` / ``<=``.
:func:`signed_objectives` (and :func:`to_maximization`, which insists on every column) give
the signed objective matrix, :func:`reference_point` the signed thresholds, and
:func:`outcome_constraint_matrix` the ``(A, b)`` pair, ``A @ y <= b`` meaning feasible, that
``botorch.utils.constraints.get_outcome_constraint_transforms`` takes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from poreml.data import schema
from poreml.design.checks import (
    as_choice,
    as_float,
    check_keys,
    check_type_field,
    config_error,
    did_you_mean,
)

__all__ = [
    "DIRECTIONS",
    "Objective",
    "OutcomeConstraint",
    "outcome_constraint_matrix",
    "reference_point",
    "signed_objectives",
    "to_maximization",
]

Direction = Literal["maximize", "minimize"]
DIRECTIONS: tuple[Direction, ...] = ("maximize", "minimize")
"""Allowed values of :attr:`Objective.direction`."""

_CONSTRAINT_RE = re.compile(r"^\s*(>=|<=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def _measured_column(name: object, where: str) -> schema.Column:
    if not isinstance(name, str) or name not in schema.MEASURED_COLUMNS:
        hint = did_you_mean(name, schema.MEASURED_COLUMNS) if isinstance(name, str) else ""
        raise config_error(
            where,
            f"a measured column (one of {', '.join(schema.MEASURED_COLUMNS)})",
            name,
            f"use a contract measured column name{hint}",
        )
    return schema.COLUMNS[name]


def _in_plausible_range(col: schema.Column, value: float, where: str) -> None:
    lo, hi = col.bounds  # type: ignore[misc]
    if not lo <= value <= hi:
        raise config_error(
            where,
            f"a value in the plausible range of {col.name}, [{lo:g}, {hi:g}] ({col.unit})",
            value,
            f"use a value within [{lo:g}, {hi:g}]",
        )


@dataclass(frozen=True)
class Objective:
    """A measured column to optimise.

    Attributes:
        name: a measured column (e.g. ``"tap_density_g_cm3"``).
        direction: ``"maximize"`` or ``"minimize"``.
        threshold: worst value still worth having, in the column's unit (the reference point
            of the hypervolume).
    """

    name: str
    direction: Direction
    threshold: float

    def __post_init__(self) -> None:
        key = f"objectives.{self.name}"
        col = _measured_column(self.name, key)
        as_choice(self.direction, f"{key}.direction", DIRECTIONS)
        threshold = as_float(self.threshold, f"{key}.threshold")
        _in_plausible_range(col, threshold, f"{key}.threshold")
        object.__setattr__(self, "threshold", threshold)

    @property
    def sign(self) -> float:
        """``+1.0`` for maximize, ``-1.0`` for minimize: ``sign * y`` is larger-is-better."""
        return 1.0 if self.direction == "maximize" else -1.0

    @property
    def maximization_threshold(self) -> float:
        """``sign * threshold``: the reference-point entry in the larger-is-better frame."""
        return self.sign * self.threshold

    def is_better(self, a: Any, b: Any) -> Any:
        """Element-wise ``a`` strictly better than ``b`` (arrays, tensors or floats)."""
        return self.sign * a > self.sign * b

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with a ``"type"`` field."""
        return {
            "type": type(self).__name__,
            "name": self.name,
            "direction": self.direction,
            "threshold": self.threshold,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Objective:
        """Inverse of :meth:`to_dict`."""
        fields = ("type", "name", "direction", "threshold")
        check_keys(data, "objective", allowed=fields, required=fields)
        check_type_field(data, cls.__name__, "objective")
        return cls(data["name"], data["direction"], data["threshold"])


@dataclass(frozen=True)
class OutcomeConstraint:
    """A measured column that must stay on one side of ``bound``.

    Attributes:
        name: a measured column (e.g. ``"ice_pct"``).
        op: ``">="`` or ``"<="``.
        bound: the limit, in the column's unit.
    """

    name: str
    op: Literal[">=", "<="]
    bound: float

    def __post_init__(self) -> None:
        key = f"outcome_constraints.{self.name}"
        col = _measured_column(self.name, key)
        as_choice(self.op, key, (">=", "<="))
        bound = as_float(self.bound, key)
        _in_plausible_range(col, bound, key)
        object.__setattr__(self, "bound", bound)

    @classmethod
    def from_string(cls, name: str, text: object) -> OutcomeConstraint:
        """Parse ``">= 80"`` style text (``>``/``<`` are read as ``>=``/``<=``).

        Args:
            name: the measured column.
            text: an operator followed by a number.

        Raises:
            ConfigError: ``text`` is not of that form, or ``name``/the bound is invalid.
        """
        key = f"outcome_constraints.{name}"
        m = _CONSTRAINT_RE.match(text) if isinstance(text, str) else None
        if m is None:
            raise config_error(
                key,
                "a string '>= number' or '<= number'",
                text,
                f'write e.g. {name} = ">= 80" (quotes included)',
            )
        op = ">=" if m.group(1) in (">=", ">") else "<="
        return cls(name, op, float(m.group(2)))  # type: ignore[arg-type]

    @property
    def sign(self) -> float:
        """``+1.0`` for ``>=``, ``-1.0`` for ``<=``: ``sign * (y - bound) >= 0`` is feasible."""
        return 1.0 if self.op == ">=" else -1.0

    def margin(self, values: Any) -> Any:
        """Larger-is-better slack ``sign * (y - bound)``; ``>= 0`` means satisfied.

        Args:
            values: measured values, any shape ``(...)`` (array, tensor or float).

        Returns:
            The slack, shape ``(...)``.
        """
        return self.sign * (values - self.bound)

    def is_satisfied(self, values: Any) -> Any:
        """Element-wise feasibility (NaN counts as not satisfied)."""
        return self.margin(values) >= 0

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with a ``"type"`` field."""
        return {"type": type(self).__name__, "name": self.name, "op": self.op, "bound": self.bound}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutcomeConstraint:
        """Inverse of :meth:`to_dict`."""
        fields = ("type", "name", "op", "bound")
        check_keys(data, "outcome constraint", allowed=fields, required=fields)
        check_type_field(data, cls.__name__, "outcome constraint")
        return cls(data["name"], data["op"], data["bound"])


def signed_objectives(df: pd.DataFrame, objectives: Sequence[Objective]) -> np.ndarray:
    """Objective values of ``df`` in the larger-is-better frame, unmeasured ones as NaN.

    Args:
        df: rows with (at least) a column per objective name; a missing column, an empty or a
            non-numeric cell reads as NaN (not measured).
        objectives: the objectives, in output-column order.

    Returns:
        Float array of shape ``(len(df), len(objectives))``, column ``j`` being
        ``objectives[j].sign * df[objectives[j].name]``.
    """
    cols = [
        pd.to_numeric(df[o.name], errors="coerce").to_numpy(dtype=float)
        if o.name in df.columns
        else np.full(len(df), np.nan)
        for o in objectives
    ]
    values = np.stack(cols, axis=-1) if cols else np.zeros((len(df), 0))
    return values * np.array([o.sign for o in objectives])


def to_maximization(df: pd.DataFrame, objectives: Sequence[Objective]) -> np.ndarray:
    """The objective columns of ``df`` in the larger-is-better frame, every column required.

    :func:`signed_objectives` for data that must hold every objective column.

    Args:
        df: rows with (at least) one column per objective name; NaN stays NaN.
        objectives: the objectives, in the order of the output columns.

    Returns:
        Float array of shape ``(len(df), len(objectives))``, column ``j`` being
        ``objectives[j].sign * df[objectives[j].name]``.

    Raises:
        ConfigError: an objective column is missing from ``df``.
    """
    missing = [o.name for o in objectives if o.name not in df.columns]
    if missing:
        raise config_error(
            "objectives",
            "a column in the data for each objective",
            f"<no column {', '.join(map(repr, missing))}>",
            "add the measured columns to the data, or drop the objectives",
        )
    return signed_objectives(df, objectives)


def reference_point(objectives: Sequence[Objective]) -> list[float]:
    """Signed thresholds, the hypervolume reference point in the larger-is-better frame."""
    return [o.maximization_threshold for o in objectives]


def outcome_constraint_matrix(
    constraints: Sequence[OutcomeConstraint], outcome_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Outcome constraints as a linear system ``A @ y <= b`` (BoTorch's convention).

    Args:
        constraints: the constraints, one row each.
        outcome_names: the model outputs, in the order of ``y``'s last dimension.

    Returns:
        ``(A, b)`` with ``A`` of shape ``(len(constraints), len(outcome_names))`` and ``b`` of
        shape ``(len(constraints), 1)``; pass them as tensors to
        ``botorch.utils.constraints.get_outcome_constraint_transforms``.

    Raises:
        ConfigError: a constrained column is not among ``outcome_names``.
    """
    names = list(outcome_names)
    a = np.zeros((len(constraints), len(names)))
    b = np.zeros((len(constraints), 1))
    for i, c in enumerate(constraints):
        if c.name not in names:
            raise config_error(
                f"outcome_constraints.{c.name}",
                f"one of the modelled outcomes ({', '.join(names)})",
                c.name,
                f"model {c.name} as an outcome too",
            )
        # sign * (y - bound) >= 0  <=>  -sign * y <= -sign * bound
        a[i, names.index(c.name)] = -c.sign
        b[i, 0] = -c.sign * c.bound
    return a, b
