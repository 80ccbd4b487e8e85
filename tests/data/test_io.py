"""CSV and JSON files are read as text and written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from poreml.data import io
from poreml.data.io import DataFileError, read_csv, read_json, write_csv, write_json


def test_csv_round_trip_keeps_blank_cells_blank(tmp_path: Path) -> None:
    df = pd.DataFrame({"candidate_id": ["a", "b"], "ice_pct": [85.0, None]})
    path = write_csv(df, tmp_path / "x.csv")
    back = read_csv(path)
    assert back["candidate_id"].tolist() == ["a", "b"]
    assert back["ice_pct"].iloc[0] == "85.0"
    assert pd.isna(back["ice_pct"].iloc[1])


def test_literal_nan_text_is_kept_as_text_for_validation(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("porosity\nNaN\n")
    assert read_csv(tmp_path / "x.csv")["porosity"].iloc[0] == "NaN"


@pytest.mark.parametrize(
    ("content", "needle"), [(None, "no such file"), ("", "empty"), (b"\xff\xfe\x00", "UTF-8")]
)
def test_unreadable_files_raise_a_clear_error(tmp_path: Path, content: object, needle: str) -> None:
    path = tmp_path / "in.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    with pytest.raises(DataFileError, match=needle):
        read_csv(path)


def test_failed_write_leaves_previous_file_intact(tmp_path: Path, monkeypatch) -> None:
    path = write_json({"n": 1}, tmp_path / "state.json")

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(io.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_json({"n": 2}, path)
    monkeypatch.undo()
    assert read_json(path) == {"n": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"], "temp file left behind"
    assert os.access(path, os.R_OK)
