"""File I/O for tables and JSON state: the one module that touches the file system for data.

* :func:`read_csv` reads every cell as text so that validation can tell a blank cell (not
  measured) from literal ``NaN`` text (an error) and report unparsable cells one by one.
* :func:`write_csv`, :func:`write_text` and :func:`write_json` write atomically: a temporary file
  in the same folder, flushed and fsynced, then ``os.replace``. A reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from poreml.exceptions import PoremlError


class DataFileError(PoremlError, OSError):
    """A data file cannot be read or written (missing, unreadable, not a CSV)."""


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read a CSV file with every cell as text (blank cells become NaN).

    Args:
        path: CSV file with a header row.

    Returns:
        A frame of str/NaN cells; types are assigned by :mod:`poreml.data.validation`.

    Raises:
        DataFileError: when the file is missing, empty, not UTF-8 or not a CSV.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(
            f"{path}: no such file; give the path of a CSV file with a header row "
            "(columns from CONTRACT.md §1)."
        )
    try:
        return pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            skipinitialspace=True,
            encoding="utf-8",
        )
    except pd.errors.EmptyDataError:
        raise DataFileError(
            f"{path}: the file is empty; expected a header row and data rows."
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataFileError(
            f"{path}: not a readable UTF-8 CSV ({err}); save it as comma-separated UTF-8 text."
        ) from None


def write_csv(df: pd.DataFrame, path: str | Path, *, float_format: str | None = None) -> Path:
    """Write ``df`` to ``path`` atomically (no index column, ``\\n`` line endings)."""
    text = df.to_csv(index=False, float_format=float_format, lineterminator="\n")
    return write_text(text, path)


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    return write_text(json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n", path)


def read_json(path: str | Path) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFileError(f"{path}: no such file.") from None
    except json.JSONDecodeError as err:
        raise DataFileError(f"{path}: not valid JSON ({err}).") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(text: str, path: str | Path) -> Path:
    """Write ``text`` to ``path`` atomically: temp file in the same folder, fsync, replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
