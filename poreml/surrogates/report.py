"""Evaluation results as files: markdown tables, and the one writer of tables and figures."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from poreml.data.io import write_csv, write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["markdown_table", "write_evaluation"]


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured markdown table of ``frame`` (no index; floats to ``digits`` s.f.).

    Args:
        frame: the table.
        digits: significant digits of float cells; NaN and None become blank cells.

    Returns:
        The table text, without a trailing newline.
    """

    def cell(value: Any) -> str:
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return ""
        if isinstance(value, float | np.floating):
            return f"{float(value):.{digits}g}"
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = [str(c) for c in frame.columns]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---:" if num else "---" for num in numeric) + " |",
    ]
    for rec in frame.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(cell(v) for v in rec) + " |")
    return "\n".join(lines)


def write_evaluation(
    out_dir: str | Path,
    *,
    tables: Mapping[str, pd.DataFrame] | None = None,
    figures: Mapping[str, Figure] | None = None,
    prefix: str = "surrogate_",
    markdown: bool = True,
    float_format: str = "%.6g",
) -> list[Path]:
    """Write tables (CSV, and markdown) and figures (PNG) under ``out_dir``.

    The one function of the evaluation that writes files; CSVs are written atomically.

    Args:
        out_dir: folder (created).
        tables: ``{name: frame}`` → ``<prefix><name>.csv`` (+ ``.md``).
        figures: ``{name: figure}`` → ``<prefix><name>.png`` (150 dpi).
        prefix: file name prefix.
        markdown: also write a markdown version of each table.
        float_format: number format of the CSV files.

    Returns:
        Paths written, in order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, frame in (tables or {}).items():
        written.append(write_csv(frame, out / f"{prefix}{name}.csv", float_format=float_format))
        if markdown:
            text = markdown_table(frame) + "\n"
            written.append(write_text(text, out / f"{prefix}{name}.md"))
    for name, fig in (figures or {}).items():
        path = out / f"{prefix}{name}.png"
        fig.savefig(path, dpi=150)
        written.append(path)
    return written
