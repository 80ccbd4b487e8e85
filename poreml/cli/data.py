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
