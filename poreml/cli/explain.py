"""``poreml explain``: additive per-design-column explanations of a model's predicted means.

Wire it with :func:`register` (a top-level command). Inputs are read and validated as in
``poreml predict``; bad input raises :class:`~poreml.exceptions.PoremlError` subclasses, which
``poreml.cli.main`` turns into exit code 2. Heavy imports happen inside the command so
``poreml --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer


def explain(
    infile: Path = typer.Argument(..., help="CSV of designs (design columns, candidate_id)."),
    out: Path = typer.Option(..., "--out", "-o", help="CSV file to write explanations to."),
    model_dir: Path | None = typer.Option(
        None, "--model-dir", help="Saved model folder (default: POREML_MODEL_DIR, models/champion)."
    ),
    model_uri: str | None = typer.Option(
        None, "--model-uri", help="MLflow model URI, e.g. models:/poreml-surrogate@champion."
    ),
) -> None:
    """Explain every target's predicted mean for the designs in IN.csv (exact Shapley values).

    Writes long-form rows candidate_id, target, column, contribution: per candidate and target
    one base_value row, then one row per design column. base_value + the column contributions
    = the mean `poreml predict` writes (contract units of the target).
    """
    from poreml.cli.models import _load_artifact
    from poreml.data.io import read_csv, write_csv
    from poreml.data.schema import COLUMNS, DESIGN_COLUMNS
    from poreml.data.validation import validate_designs
    from poreml.surrogates.explain import explain as shapley_values

    frame = read_csv(infile)
    if "candidate_id" not in frame.columns:
        frame.insert(0, "candidate_id", [f"P-{i:04d}" for i in range(1, len(frame) + 1)])
    frame["candidate_id"] = frame["candidate_id"].astype(str)
    artifact = _load_artifact(model_dir, model_uri)
    # As in `poreml predict`: other contract columns (e.g. measured values of a lab file) are
    # accepted and left out; the explanation covers the design columns.
    designs = validate_designs(
        frame,
        source=str(infile),
        physical=True,
        fill_defaults=True,
        allow_columns=("candidate_id", *(c for c in COLUMNS if c not in DESIGN_COLUMNS)),
    )
    result = shapley_values(artifact.surrogate, designs[list(DESIGN_COLUMNS)])
    write_csv(result.long_frame(designs["candidate_id"].tolist()), out)
    typer.echo(
        f"{out}: {len(designs)} candidate(s) x {len(result.targets)} targets explained by "
        f"{artifact.source} ({result.method})"
    )


def register(app: typer.Typer) -> None:
    """Add ``explain`` to ``app`` as a top-level command."""
    app.command("explain")(explain)
