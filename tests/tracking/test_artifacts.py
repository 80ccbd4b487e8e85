"""The model artifact: metadata round trip, model card, save/load, validate-then-predict."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import poreml
from poreml.data.schema import DESIGN_COLUMNS
from poreml.exceptions import ConfigError, DataValidationError
from poreml.surrogates.base import TARGETS
from poreml.tracking.artifacts import (
    CHAMPION_COMMAND,
    METADATA_FILE,
    MODEL_CARD_FILE,
    ModelArtifact,
    ModelMetadata,
    TrainingRecord,
    artifact_files,
    load,
    model_card,
    trained_ranges,
)

CHAMPION = Path(__file__).resolve().parents[2] / "models" / "champion"
STATS = ("mean", "std", "lower", "upper")


def test_the_shipped_metadata_reads_and_writes_back_unchanged() -> None:
    data = json.loads((CHAMPION / METADATA_FILE).read_text(encoding="utf-8"))
    meta = ModelMetadata.read(CHAMPION / METADATA_FILE)
    assert meta.model == "cascade" and meta.targets == tuple(TARGETS)
    assert meta.training.rows == 256 and meta.training.source["data"] == "virtual-lab"
    assert meta.training.sha256 == data["training"]["sha256"]
    assert meta.to_dict() == data
    assert list(meta.to_dict()) == list(data)  # same key order as the file
    assert ModelMetadata.from_dict(json.loads(json.dumps(meta.to_dict()))) == meta


def test_the_shipped_model_card_is_rebuilt_from_the_metadata() -> None:
    meta = ModelMetadata.read(CHAMPION / METADATA_FILE)
    assert model_card(meta) == (CHAMPION / MODEL_CARD_FILE).read_text(encoding="utf-8")


def test_partial_metadata_reads_with_neutral_values_and_keeps_unknown_keys() -> None:
    meta = ModelMetadata.from_dict(
        {"version": 7, "training": {"rows": 3, "sha256": "ab"}, "note": "hand-written"}
    )
    assert meta.model_name == "poreml-surrogate" and meta.version == "7"
    assert meta.training == TrainingRecord(rows=3, sha256="ab")
    assert meta.extra == {"note": "hand-written"}
    again = ModelMetadata.from_dict(meta.to_dict())
    assert again == meta and again.to_dict()["note"] == "hand-written"


def test_metadata_of_another_format_or_a_newer_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="format_version 2 is newer"):
        ModelMetadata.from_dict({"format": "poreml-model-metadata", "format_version": 2})
    with pytest.raises(ConfigError, match="expected format"):
        ModelMetadata.from_dict({"format": "something-else"})
    broken = tmp_path / METADATA_FILE
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not readable JSON"):
        ModelMetadata.read(broken)


def test_trained_ranges_cover_every_design_column(vl_data: pd.DataFrame) -> None:
    ranges = trained_ranges(vl_data[["route", "porosity"]])
    assert list(ranges) == list(DESIGN_COLUMNS)
    assert ranges["porosity"]["min"] == vl_data["porosity"].min()
    assert ranges["porosity"]["observed_rows"] == len(vl_data)
    assert ranges["shell_nm"]["min"] is None and ranges["shell_nm"]["observed_rows"] == 0
    assert ranges["route"]["values"] == sorted(vl_data["route"].unique())


def test_save_then_load_round_trips_the_model_and_sets_a_content_version(
    model_dir: Path, tmp_path: Path, vl_data: pd.DataFrame
) -> None:
    bare = load(model_dir)
    assert bare.metadata == ModelMetadata() and bare.source == str(model_dir)
    meta = ModelMetadata(
        model="ridge",
        targets=tuple(TARGETS),
        training=TrainingRecord(source={"data": "virtual-lab"}, rows=48, sha256="0" * 64),
        design_columns=trained_ranges(vl_data),
        rebuild_command="poreml train --model ridge",
    )
    saved = ModelArtifact(bare.surrogate, meta).save(tmp_path / "m")
    assert saved.metadata.version is not None
    assert saved.metadata.version.startswith(f"{poreml.__version__}+")
    assert {METADATA_FILE, MODEL_CARD_FILE, "config.json"} <= {
        p.name for p in (tmp_path / "m").iterdir()
    }
    assert METADATA_FILE in {p.name for p in artifact_files(tmp_path / "m")}
    assert MODEL_CARD_FILE not in {p.name for p in artifact_files(tmp_path / "m")}
    loaded = load(tmp_path / "m")
    assert loaded.metadata == saved.metadata
    assert "0" * 64 in (tmp_path / "m" / MODEL_CARD_FILE).read_text(encoding="utf-8")
    X = vl_data[list(DESIGN_COLUMNS)].head(5)
    pd.testing.assert_frame_equal(loaded.surrogate.predict(X), bare.surrogate.predict(X))
    same = ModelArtifact(loaded.surrogate, replace(meta, version=None)).save(tmp_path / "again")
    assert same.metadata.version == saved.metadata.version  # same model files, same version


def test_a_folder_without_a_model_says_how_to_build_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no saved surrogate here") as info:
        load(tmp_path)
    assert CHAMPION_COMMAND in str(info.value)


def test_predict_table_fills_defaults_and_carries_candidate_ids(model_dir: Path) -> None:
    artifact = load(model_dir)
    designs = pd.DataFrame({"candidate_id": [1, 2], "route": ["bottom_up", "top_down"]})
    table = artifact.predict_table(designs)
    expected = [f"{t}_{s}" for t in TARGETS for s in STATS]
    assert list(table.columns) == [
        "candidate_id",
        *expected,
        "conditioned_on",
        "domain_distance",
        "in_domain",
    ]
    assert table["candidate_id"].tolist() == ["1", "2"]
    assert np.isfinite(table[expected].to_numpy()).all()
    narrow = artifact.predict_table(designs, level=0.5)
    t = TARGETS[0]
    width = table[f"{t}_upper"] - table[f"{t}_lower"]
    assert (narrow[f"{t}_upper"] - narrow[f"{t}_lower"] < width).all()
    wide = artifact.predict_table(designs, include_inputs=True)
    assert list(wide.columns) == [
        "candidate_id",
        *DESIGN_COLUMNS,
        *expected,
        "conditioned_on",
        "domain_distance",
        "in_domain",
    ]
    assert wide["d50_um"].eq(10.0).all()


def test_predict_table_rejects_bad_values_and_unknown_columns_naming_them(
    model_dir: Path,
) -> None:
    artifact = load(model_dir)
    with pytest.raises(DataValidationError, match="porosity") as info:
        artifact.predict_table(
            pd.DataFrame({"route": ["bottom_up"], "porosity": [1.5]}), source="d.csv"
        )
    assert "d.csv" in str(info.value)
    with pytest.raises(DataValidationError, match="ice_pctt"):
        artifact.predict_table(pd.DataFrame({"route": ["bottom_up"], "ice_pctt": [80.0]}))
    # Measured columns are accepted (CONTRACT.md §4.1) and range-checked like any other.
    with pytest.raises(DataValidationError, match="ice_pct") as info:
        artifact.predict_table(pd.DataFrame({"route": ["bottom_up"], "ice_pct": [180.0]}))
    assert "180" in str(info.value)
    accepted = artifact.predict_table(pd.DataFrame({"route": ["bottom_up"], "ice_pct": [80.0]}))
    assert len(accepted) == 1 and accepted["conditioned_on"].tolist() == [""]
    ignored = artifact.predict_table(
        pd.DataFrame({"route": ["bottom_up"], "feasible": [True]}), ignore_columns=["feasible"]
    )
    assert len(ignored) == 1


def test_loading_a_folder_does_not_import_mlflow(model_dir: Path) -> None:
    code = (
        "import sys\n"
        "from poreml.tracking.artifacts import load\n"
        f"load({str(model_dir)!r})\n"
        "assert 'mlflow' not in sys.modules, 'mlflow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
