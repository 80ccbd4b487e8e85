"""The curated dataset: rebuilt byte for byte from the raw transcriptions, every source row kept,
values in range, nothing invented."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest

from poreml.data import curation
from poreml.data.curation import (
    CONDITION_COLUMNS,
    OUTPUT_COLUMNS,
    build_dataset,
    check_dataset,
    coverage_markdown,
    coverage_table,
    parse_reported,
    to_csv_text,
    write_dataset,
)
from poreml.data.io import read_csv
from poreml.data.schema import COLUMNS, DESIGN_COLUMNS, MEASURED_COLUMNS, ROUTES
from poreml.exceptions import DataValidationError

REPO = Path(__file__).resolve().parents[2]
RAW = REPO / "datasets" / "raw"
CURATED = REPO / "datasets" / "porous_sic.csv"
SHARED = REPO.parent / "shared"
SEED_000 = "000_1f5434763eb9c3dc.txt"
SEED_001 = "001_97916dfed7506c7f.txt"


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return build_dataset(RAW)


@pytest.fixture(scope="module")
def raw() -> dict[str, pd.DataFrame]:
    return curation.read_raw(RAW)


def _row(df: pd.DataFrame, rid: str) -> pd.Series:
    hits = df[df["id"] == rid]
    assert len(hits) == 1, rid
    return hits.iloc[0]


def _filled(value: object) -> bool:
    return not (value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)))


# --- determinism ------------------------------------------------------------------------------


def test_rebuild_is_byte_identical_to_the_committed_file(df: pd.DataFrame) -> None:
    assert to_csv_text(df).encode("utf-8") == CURATED.read_bytes(), (
        "datasets/porous_sic.csv is stale: run `poreml data build` and commit the result"
    )


def test_two_builds_give_the_same_bytes(tmp_path: Path) -> None:
    a = write_dataset(build_dataset(RAW), tmp_path / "a.csv")
    b = write_dataset(build_dataset(RAW), tmp_path / "b.csv")
    assert a.read_bytes() == b.read_bytes()
    assert b"\r\n" not in a.read_bytes()


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path: Path, df: pd.DataFrame) -> None:
    out = write_dataset(df, tmp_path / "sub" / "porous_sic.csv")
    assert [p.name for p in out.parent.iterdir()] == ["porous_sic.csv"]


def test_build_command_writes_what_it_returns(tmp_path: Path) -> None:
    out = tmp_path / "porous_sic.csv"
    frame = curation.build_command(RAW, out)
    assert out.read_text(encoding="utf-8") == to_csv_text(frame)


# --- shape and provenance ---------------------------------------------------------------------


def test_columns_are_in_the_agreed_order(df: pd.DataFrame) -> None:
    assert tuple(df.columns) == OUTPUT_COLUMNS
    assert CONDITION_COLUMNS == (
        "retention_cycles",
        "capacity_cycle",
        "si_wt_pct",
        "compaction_density_g_cm3",
        "areal_capacity_mah_cm2",
        "current_density",
        "cell_type",
        "expansion_kind",
        "capacity_basis",
    )
    assert OUTPUT_COLUMNS[:2] == ("id", "material_name")
    assert OUTPUT_COLUMNS[2 : 2 + len(DESIGN_COLUMNS)] == DESIGN_COLUMNS
    assert OUTPUT_COLUMNS[-6:] == ("reference", "doi", "source", "confidence", "basis", "notes")
    assert OUTPUT_COLUMNS[-7] == "material_id"


def test_sorted_by_unique_id(df: pd.DataFrame) -> None:
    assert df["id"].is_unique
    assert df["id"].tolist() == sorted(df["id"].tolist())


def test_every_raw_row_is_kept_with_its_source(
    df: pd.DataFrame, raw: dict[str, pd.DataFrame]
) -> None:
    t1 = raw[curation.TABLE1_FILE]
    sm = raw[curation.SEED_MATERIALS_FILE]
    lit = raw[curation.LITERATURE_FILE]
    assert len(df) == len(t1) + len(sm) + len(lit)
    for rid in t1["row_id"]:
        assert _row(df, rid)["source"] == SEED_001
    for rid, seed in zip(sm["sm_id"], sm["seed_file"], strict=True):
        assert _row(df, rid)["source"] == seed
    for rid in lit["id"]:
        assert _row(df, rid)["source"] == rid


def test_every_table1_row_is_present(df: pd.DataFrame) -> None:
    t1 = df[df["id"].str.startswith("T1-")]
    # 17 table rows; ref. 70's second entry is printed over two text lines (T1-12a, T1-12b)
    assert len(t1) == 18
    refs = [int(re.match(r"ref\. (\d+)", r).group(1)) for r in t1["reference"]]
    assert refs == [61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 70, 70, 72, 73, 74, 75, 75]
    groups = t1["route"].tolist()
    assert groups == ["bottom_up"] * 6 + ["top_down"] * 7 + ["transcription"] * 5
    assert (t1["source"] == SEED_001).all()
    assert t1["notes"].str.contains("transcription: ").all()


@pytest.mark.parametrize(
    ("needle", "seed"),
    [
        ("PC/Np-Si", SEED_001),
        ("AMPSi@C", SEED_001),
        ("D-Si@RF–CTP", SEED_001),
        ("CNT@Si@C", SEED_001),
        ("MGS", SEED_001),
        ("Si/C microspheres", SEED_001),
        ("p-Si@MoC", SEED_000),
        ("GP-Si", SEED_000),
        ("mSi HCs", SEED_000),
    ],
)
def test_named_seed_materials_are_present(df: pd.DataFrame, needle: str, seed: str) -> None:
    rows = df[
        df["id"].str.startswith("SM-") & df["material_name"].str.contains(needle, regex=False)
    ]
    assert len(rows) >= 1, needle
    assert (rows["source"] == seed).all()


def test_si_c_microspheres_keep_their_85_percent_particle_expansion(df: pd.DataFrame) -> None:
    row = df[df["material_name"].str.startswith("Si/C microspheres")].iloc[0]
    assert row["expansion_pct"] == 85.0
    assert row["expansion_kind"] == "particle"
    assert "approximate" in row["notes"]


def test_raw_literature_file_is_a_byte_copy_of_the_shared_one() -> None:
    shared = SHARED / "data" / "literature_si_c.csv"
    if not shared.is_file():
        pytest.skip("../shared is not beside the repository")
    assert (RAW / curation.LITERATURE_FILE).read_bytes() == shared.read_bytes()


def test_seed_quotes_are_verbatim() -> None:
    seeds = SHARED / "seeds"
    if not seeds.is_dir():
        pytest.skip("../shared is not beside the repository")
    text = {p.name: p.read_text(encoding="utf-8") for p in seeds.glob("*.txt")}
    sm = read_csv(RAW / curation.SEED_MATERIALS_FILE)
    for rec in sm.to_dict("records"):
        lines = text[rec["seed_file"]].split("\n")
        numbers = [int(n) for n in str(rec["seed_line"]).split(";")]
        for part in rec["quote"].split(" … "):
            assert any(part in lines[n - 1] for n in numbers), (rec["sm_id"], part)
    t1 = read_csv(RAW / curation.TABLE1_FILE)
    lines = text[SEED_001].split("\n")
    for rec in t1.to_dict("records"):
        line = lines[int(rec["seed_line"]) - 1]
        assert line.startswith("| "), rec["row_id"]
        assert rec["retention_cell_as_written"] in line, rec["row_id"]


# --- values -----------------------------------------------------------------------------------


def test_every_value_lies_in_the_schema_range(df: pd.DataFrame) -> None:
    assert check_dataset(df) == []
    for name in (*DESIGN_COLUMNS[1:], *MEASURED_COLUMNS, "retention_cycles", "capacity_cycle"):
        lo, hi = COLUMNS[name].bounds
        values = df[name].dropna().astype(float)
        assert ((values >= lo) & (values <= hi)).all(), name
    assert set(df["route"].dropna()) <= set(ROUTES)
    assert set(df["cell_type"]) <= {"half", "full", "unknown"}
    assert set(df["expansion_kind"].dropna()) <= {"particle", "electrode"}


def test_no_design_value_is_invented(df: pd.DataFrame, raw: dict[str, pd.DataFrame]) -> None:
    lit = df[df["id"].str.startswith("SIC")]
    t1 = df[df["id"].str.startswith("T1-")]
    for name in DESIGN_COLUMNS[1:]:
        # the one literature design value: a Si size the row's own text states (see below)
        mapped = lit["id"].isin(curation.LITERATURE_SI_DOMAIN) & (name == "si_domain_nm")
        assert lit.loc[~mapped, name].isna().all(), name
        assert t1[name].isna().all(), name
    lit_text = raw[curation.LITERATURE_FILE].set_index("id")
    for rid, reading in curation.LITERATURE_SI_DOMAIN.items():
        stated = f"{lit_text.loc[rid, 'material_name']} {lit_text.loc[rid, 'notes']}"
        assert reading.quote in stated, rid
    # a seed-text row has a design value only where its raw row reports one
    sm = raw[curation.SEED_MATERIALS_FILE].set_index("sm_id")
    reported_in = {out: raw_col for raw_col, out in curation.SEED_NUMERIC.items()}
    for rec in df[df["id"].str.startswith("SM-")].to_dict("records"):
        for name in DESIGN_COLUMNS[1:]:
            if _filled(rec[name]):
                assert _filled(sm.loc[rec["id"], reported_in[name]]), (rec["id"], name)
    # no measured column is filled where the literature table is blank
    lit_raw = raw[curation.LITERATURE_FILE].set_index("id")
    for rec in lit.to_dict("records"):
        for name in curation.LITERATURE_NUMERIC:
            if name == "retention_cycles":
                continue
            assert _filled(rec[name]) == _filled(lit_raw.loc[rec["id"], name]), (rec["id"], name)
        # the source's cycle count is kept: next to its retention, as the capacity's cycle, or
        # (neither) noted; a count is never filled where the literature table has none
        raw_count = lit_raw.loc[rec["id"], "retention_cycles"]
        if not _filled(raw_count):
            assert not _filled(rec["retention_cycles"]), rec["id"]
            continue
        count = float(raw_count)
        if _filled(rec["retention_pct"]):
            assert rec["retention_cycles"] == count, rec["id"]
        elif _filled(rec["capacity_cycle"]):
            assert rec["capacity_cycle"] == count, rec["id"]
        else:
            assert f"cycle count {count:g} is neither" in rec["notes"], rec["id"]


def test_unit_conversions_and_readings_are_recorded(df: pd.DataFrame) -> None:
    porous = df[df["porosity"].notna()]
    assert len(porous) >= 1
    for rec in porous.to_dict("records"):
        assert "÷ 100" in rec["notes"], rec["id"]
        assert rec["porosity"] <= 0.8
    pc = _row(df, "SM-21")
    assert pc["porosity"] == pytest.approx(0.2)
    for rec in df[df["id"].str.startswith("T1-") & df["ssa_m2_g"].notna()].to_dict("records"):
        assert "'SSA (g m-2)' read as m²/g" in rec["notes"], rec["id"]
    assert _row(df, "SM-19")["shell_nm"] == 6.5
    assert "midpoint 6.5" in _row(df, "SM-19")["notes"]
    assert _row(df, "SM-14")["d50_um"] == 10.0
    assert "stored as d50" in _row(df, "SM-14")["notes"]


def test_retention_keeps_its_own_cycle_count(df: pd.DataFrame) -> None:
    assert _row(df, "SIC032")["retention_pct"] == 50.0
    assert pd.isna(_row(df, "SIC032")["retention_cycles"])
    assert "not 500" in _row(df, "SIC032")["notes"]
    assert _row(df, "SIC017")["retention_cycles"] == 1700
    assert _row(df, "T1-12b")["retention_cycles"] == 450
    assert pd.isna(_row(df, "SM-30")["retention_cycles"])


def test_out_of_range_and_impossible_cells_are_dropped_with_a_note(df: pd.DataFrame) -> None:
    t106 = _row(df, "T1-06")  # '700/102%'
    assert pd.isna(t106["retention_pct"])
    assert "reported 102 lies outside the range [0, 100]" in t106["notes"]
    t105 = _row(df, "T1-05")  # TD 4.15 g/cm3
    assert pd.isna(t105["tap_density_g_cm3"])
    assert "4.15" in t105["notes"]
    assert t105["confidence"] == "low"
    assert pd.isna(_row(df, "SM-12")["volumetric_capacity_mah_cm3"])
    assert "5206" in _row(df, "SM-12")["notes"]


def test_text_supported_corrections_keep_the_printed_reading(df: pd.DataFrame) -> None:
    for rid, used, printed in (("T1-10", 0.93, "0.48"), ("T1-13", 1.2, "0.5")):
        row = _row(df, rid)
        assert row["tap_density_g_cm3"] == used
        assert f"prints TD {printed}" in row["notes"]
        assert row["confidence"] == "low"


def test_route_mapping_is_documented(df: pd.DataFrame, raw: dict[str, pd.DataFrame]) -> None:
    lit_raw = raw[curation.LITERATURE_FILE].set_index("id")
    for rec in df[df["id"].str.startswith("SIC")].to_dict("records"):
        original = lit_raw.loc[rec["id"], "route"]
        if pd.isna(original):
            assert pd.isna(rec["route"]) and "route not stated" in rec["notes"]
        elif original == "other":
            assert pd.isna(rec["route"]) and "class 'other'" in rec["notes"]
        elif rec["route"] != original:
            assert original == "transcription" and rec["route"] == "top_down"
            assert "magnesiothermic" in rec["notes"]
    assert _row(df, "SIC045")["route"] == "top_down"  # Mg-thermic, literature: transcription
    assert _row(df, "SIC017")["route"] == "transcription"  # CVD Si in carbon
    assert _row(df, "SM-16")["route"] == "top_down"  # seed 001: SiOx precursors are top-down
    assert pd.isna(_row(df, "SM-01")["route"])  # seed 000 template-guided: no contract class
    assert "template-guided" in _row(df, "SM-01")["notes"]


def test_table1_rows_cross_reference_the_seed_text_rows(df: pd.DataFrame) -> None:
    assert "SM-21" in _row(df, "T1-10")["notes"]
    assert "T1-10" in _row(df, "SM-21")["notes"]


def test_the_curated_file_passes_contract_validation() -> None:
    from poreml.data.validation import validate_table

    validate_table(read_csv(CURATED), source=str(CURATED))


# --- parsing, coverage, errors ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value", "note"),
    [
        ("", None, None),
        ("0.93", 0.93, None),
        ("~0.8", 0.8, "approximate"),
        ("5-8", 6.5, "midpoint"),
        ("<20", None, "bound"),
        (">2.1", None, "bound"),
        ("4.9; 50-80", None, "several values"),
    ],
)
def test_parse_reported(text: str, value: float | None, note: str | None) -> None:
    rep = parse_reported(text)
    assert rep.value == value
    assert (rep.note is None) if note is None else (note in rep.note)


@pytest.mark.parametrize("text", ["abc", "8-5", "1,5", "NaN"])
def test_parse_reported_rejects_unreadable_cells(text: str) -> None:
    with pytest.raises(ValueError):
        parse_reported(text)


def test_unreadable_raw_cell_is_reported_with_file_row_and_column(tmp_path: Path) -> None:
    for name in curation.RAW_FILES:
        (tmp_path / name).write_bytes((RAW / name).read_bytes())
    t1 = read_csv(tmp_path / curation.TABLE1_FILE)
    t1.loc[2, "ice_pct"] = "eighty"
    t1.to_csv(tmp_path / curation.TABLE1_FILE, index=False, lineterminator="\n")
    with pytest.raises(DataValidationError) as err:
        build_dataset(tmp_path)
    message = str(err.value)
    assert curation.TABLE1_FILE in message and "row 3" in message and "eighty" in message


def test_coverage_table_counts_non_empty_cells(df: pd.DataFrame) -> None:
    cov = coverage_table(df).set_index("column")
    assert list(cov.index) == list(OUTPUT_COLUMNS)
    assert cov.loc["id", "all"] == len(df)
    assert cov.loc["porosity", "literature"] == 0
    assert (cov["table1"] + cov["seed_text"] + cov["literature"] == cov["all"]).all()
    md = coverage_markdown(coverage_table(df))
    assert md.splitlines()[0].startswith("| column | all |")
    assert len(md.splitlines()) == len(OUTPUT_COLUMNS) + 2


def test_datasheet_shows_the_current_coverage_table(df: pd.DataFrame) -> None:
    datasheet = (REPO / "datasets" / "README.md").read_text(encoding="utf-8")
    assert coverage_markdown(coverage_table(df)) in datasheet, (
        "datasets/README.md §5 is stale: paste coverage_markdown(coverage_table(df))"
    )


def test_missing_raw_file_is_a_clear_error(tmp_path: Path) -> None:
    from poreml.data.io import DataFileError

    (tmp_path / curation.TABLE1_FILE).write_bytes((RAW / curation.TABLE1_FILE).read_bytes())
    with pytest.raises(DataFileError, match=re.escape("seed_materials.csv, literature_si_c.csv")):
        build_dataset(tmp_path)


def test_cli_build_writes_the_dataset(tmp_path: Path) -> None:
    from poreml.cli import main

    out = tmp_path / "porous_sic.csv"
    try:
        main(["data", "build", "--raw-dir", str(RAW), "--out", str(out)])
    except SystemExit as done:  # typer's standalone mode exits with the command's code
        assert done.code in (0, None)
    assert out.read_bytes() == CURATED.read_bytes()


# --- material key, cycle columns, areal-only rule, Si domain sizes, descriptor counts ---------


def test_the_ref70_pc_np_si_rows_share_one_material_id(df: pd.DataFrame) -> None:
    rows = ["T1-10", "T1-12a", "T1-12b", "SM-21"]
    # the references are spelled differently, the key is not
    assert len({_row(df, r)["reference"] for r in rows}) > 1
    assert {_row(df, r)["material_id"] for r in rows} == {"seed001-ref70"}
    assert (df["material_id"] == "seed001-ref70").sum() == 4
    # the Np-Si precursor from the same paper is another material
    assert _row(df, "SM-22")["material_id"] == "seed001-ref70-np-si"
    assert "material_id: own key" in _row(df, "SM-22")["notes"]


def test_material_id_is_never_blank_and_follows_the_rule(df: pd.DataFrame) -> None:
    assert df["material_id"].notna().all()
    assert (df["material_id"].str.strip() != "").all()
    assert _row(df, "SIC001")["material_id"] == _row(df, "SIC002")["material_id"]  # one DOI
    assert _row(df, "SIC028")["material_id"] != _row(df, "SIC029")["material_id"]  # no DOI
    # seed 000's [63] and seed 001's ref. 63 are different papers
    assert _row(df, "SM-07")["material_id"] == "seed000-ref63"
    assert _row(df, "T1-03")["material_id"] == "seed001-ref63"
    for rid, (key, _why) in curation.MATERIAL_OVERRIDES.items():
        assert _row(df, rid)["material_id"] == key


def test_a_blank_material_id_fails_the_dataset_check(df: pd.DataFrame) -> None:
    broken = df.copy()
    broken.loc[3, "material_id"] = None
    assert [(p.row, p.column) for p in check_dataset(broken)] == [(4, "material_id")]


def test_a_seed_reference_without_its_number_is_reported(tmp_path: Path) -> None:
    for name in curation.RAW_FILES:
        (tmp_path / name).write_bytes((RAW / name).read_bytes())
    sm = read_csv(tmp_path / curation.SEED_MATERIALS_FILE)
    sm.loc[7, "reference"] = "Joshi et al."
    sm.to_csv(tmp_path / curation.SEED_MATERIALS_FILE, index=False, lineterminator="\n")
    with pytest.raises(DataValidationError) as err:
        build_dataset(tmp_path)
    assert "row 8" in str(err.value) and "Joshi et al." in str(err.value)


def test_no_row_has_a_cycle_count_without_a_retention(df: pd.DataFrame) -> None:
    assert not (df["retention_cycles"].notna() & df["retention_pct"].isna()).any()
    blank = df[df["retention_pct"].notna() & df["retention_cycles"].isna()]
    assert blank["id"].tolist() == ["SIC032", "SM-30", "SM-31"]
    assert blank["notes"].str.contains("left empty (not 500)", regex=False).all()
    broken = df.copy()
    broken.loc[broken["id"] == "SM-01", "retention_cycles"] = 250
    assert [p.column for p in check_dataset(broken)] == ["retention_cycles"]


def test_capacity_cycles_have_their_own_column(df: pd.DataFrame) -> None:
    for rid, cycle in (("SM-01", 250), ("SM-09", 300), ("SIC009", 500), ("T1-06", 700)):
        row = _row(df, rid)
        assert row["capacity_cycle"] == cycle, rid
        assert pd.isna(row["retention_cycles"]), rid
        assert "capacity_cycle:" in row["notes"], rid
    assert _row(df, "SIC014")["capacity_cycle"] == 100  # from its notes
    # a capacity read after cycling always says at which cycle
    after = df["capacity_basis"].fillna("").str.startswith("capacity after cycling")
    assert after.sum() == 17 and df.loc[after, "capacity_cycle"].notna().all()
    # with a retention as well, both columns hold the same count
    assert _row(df, "SIC007")["capacity_cycle"] == _row(df, "SIC007")["retention_cycles"] == 430
    # a count that is neither stays in the notes only
    for rid in ("SIC021", "SIC026"):
        row = _row(df, rid)
        assert pd.isna(row["capacity_cycle"]) and pd.isna(row["retention_cycles"]), rid
        assert "both cycle columns left empty" in row["notes"], rid


def test_areal_only_statements_are_kept_under_one_rule(df: pd.DataFrame) -> None:
    others = [
        c
        for c in curation.NUMERIC_COLUMNS
        if c not in ("areal_capacity_mah_cm2", *curation.INT_COLUMNS)
    ]
    areal_only = df[df["areal_capacity_mah_cm2"].notna() & df[others].isna().all(axis=1)]
    assert areal_only["id"].tolist() == ["SM-15", "SM-36", "SM-37"]
    assert areal_only["notes"].str.contains("areal-only statement").all()
    assert (~df.drop(areal_only.index)["notes"].str.contains("areal-only statement")).all()
    # refs. 147 and 151 of seed 001 (binder studies) are rows like ref. 64's blend
    assert _row(df, "SM-36")["reference"].startswith("ref. 147")
    assert _row(df, "SM-36")["areal_capacity_mah_cm2"] == 3.2
    assert _row(df, "SM-37")["reference"].startswith("ref. 151")
    assert _row(df, "SM-37")["areal_capacity_mah_cm2"] == 4.0


def test_stated_si_domain_sizes_are_mapped_with_a_note(df: pd.DataFrame) -> None:
    assert _row(df, "SIC004")["si_domain_nm"] == 15.0  # "10-20 nm crystallites"
    assert _row(df, "SIC026")["si_domain_nm"] == 4.0  # "3-5 nm Si grains"
    for rid in ("SIC012", "SIC018"):  # 0.7 nm is below the contract range; "<1 nm" a bound
        assert pd.isna(_row(df, rid)["si_domain_nm"]), rid
    for rid, reading in curation.LITERATURE_SI_DOMAIN.items():
        assert f"si_domain_nm: the source states '{reading.quote}'" in _row(df, rid)["notes"]
    assert set(df.loc[df["si_domain_nm"].notna(), "id"]) == {"SIC004", "SIC026"}
    # nanoparticle sizes are not called crystallites / grains / domains: not mapped
    assert pd.isna(_row(df, "SIC001")["si_domain_nm"])
    assert pd.isna(_row(df, "SIC005")["si_domain_nm"])


def test_descriptor_table_counts_rows_by_structure_descriptors(df: pd.DataFrame) -> None:
    table = curation.descriptor_table(df).set_index("descriptors")
    assert list(table.index) == ["0", "1", "2", ">= 3"]
    assert table["all"].sum() == len(df)
    assert (table["table1"] + table["seed_text"] + table["literature"] == table["all"]).all()
    n = df[list(curation.STRUCTURE_COLUMNS)].notna().sum(axis=1)
    assert table.loc[">= 3", "all"] == (n >= 3).sum() == 3
    assert set(df.loc[n >= 3, "id"]) == {"SM-12", "SM-14", "SM-21"}
    datasheet = (REPO / "datasets" / "README.md").read_text(encoding="utf-8")
    assert coverage_markdown(curation.descriptor_table(df)) in datasheet
    assert "**3 rows** carry three or more structure descriptors" in datasheet
    assert "Tables 1–4" in datasheet  # seed 000 cites tables its text copy lacks
