"""One error family for poreml.

Every error is a :class:`PoremlError` and also the matching built-in error, so callers can catch
either. Messages say what was expected, what was found, where, and how to fix it. Only the CLI
turns these into exit codes and only the API into HTTP statuses.
"""

from __future__ import annotations

from dataclasses import dataclass


class PoremlError(Exception):
    """Base class of every error poreml raises on purpose."""


class ConfigError(PoremlError, ValueError):
    """A configuration file or setting is invalid (names the key and the fix)."""


class DataValidationError(PoremlError, ValueError):
    """Tabular input breaks the data contract; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(self._format())

    def _format(self) -> str:
        where = f"{self.source}: " if self.source else ""
        n = len(self.problems)
        head = (
            f"{where}{n} problem{'s' if n != 1 else ''} found (row 1 = first row below the header)"
        )
        lines = [f"  - {p}" for p in self.problems]
        tail = (
            "Fix the listed cells (leave a cell blank when a value was not measured) "
            "and run the command again."
        )
        return "\n".join([head + ":", *lines, tail])


class ModelNotFittedError(PoremlError, RuntimeError):
    """A model was used before ``fit``."""


class CampaignError(PoremlError, RuntimeError):
    """A campaign operation cannot be carried out in the campaign's current state."""


class ConflictError(CampaignError):
    """New results contradict results already recorded for the same candidate."""


class OptimizationError(PoremlError, RuntimeError):
    """Candidate generation failed (e.g. no feasible point satisfies the constraints)."""


@dataclass(frozen=True)
class Problem:
    """One bad cell (or column) of a table.

    Attributes:
        row: 1-based data row number (the CSV header is row 0), or None for a whole column.
        column: column name, or None for a table-level problem.
        value: the offending value as found.
        expected: what would have been allowed, in words (e.g. "a number in [0, 0.8] (fraction)").
    """

    row: int | None
    column: str | None
    value: object
    expected: str

    def __str__(self) -> str:
        parts = []
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column is not None:
            parts.append(f"column '{self.column}'")
        where = ", ".join(parts) if parts else "table"
        return f"{where}: got {self.value!r}, expected {self.expected}"
