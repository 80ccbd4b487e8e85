"""``poreml data``: rebuild the curated dataset and validate CSV files against the contract."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("validate")
def validate(
    file: Path = typer.Argument(..., help="CSV file to check against CONTRACT.md §1."),
) -> None:
    """Check a CSV against the column vocabulary and ranges; list every problem at once."""
    from poreml.data.io import read_csv
    from poreml.data.validation import validate_table

    df = validate_table(read_csv(file), source=str(file))
    typer.echo(f"{file}: OK ({len(df)} rows, {len(df.columns)} columns)")


@app.command("build")
def build(
    raw_dir: Path = typer.Option(
        Path("datasets/raw"), "--raw-dir", help="Folder with the raw transcriptions."
    ),
    out: Path = typer.Option(
        Path("datasets/porous_sic.csv"), "--out", help="Curated CSV to (over)write."
    ),
) -> None:
    """Rebuild the curated dataset from its raw sources, deterministically."""
    from poreml.data.curation import build_command, coverage_table

    df = build_command(raw_dir, out)
    cov = coverage_table(df).set_index("column")["all"]
    sources = df["id"].str.extract(r"^(T1|SM|SIC)")[0].value_counts()
    parts = ", ".join(f"{k} {int(sources.get(k, 0))}" for k in ("T1", "SM", "SIC"))
    typer.echo(f"{out}: {len(df)} rows ({parts}); {int((cov > 0).sum())} non-empty columns")
