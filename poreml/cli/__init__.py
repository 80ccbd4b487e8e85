"""The ``poreml`` command line: one Typer app with a sub-app per pipeline stage.

Only this package turns :class:`~poreml.exceptions.PoremlError` into exit codes: every command
exits 0 on success and 2 with a one-paragraph message on stderr on bad input, never a bare
traceback. Sub-apps import their stage lazily so ``poreml --help`` stays fast.
"""

from __future__ import annotations

import sys

import typer

from poreml.cli import campaign as campaign_cli
from poreml.cli import data as data_cli
from poreml.cli import explain as explain_cli
from poreml.cli import lab as lab_cli
from poreml.cli import models as models_cli
from poreml.cli import serve as serve_cli
from poreml.cli import ui as ui_cli
from poreml.exceptions import PoremlError

app = typer.Typer(
    name="poreml",
    help="Design porous Si–C anode particles: curated data, virtual lab, surrogates, campaigns.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data_cli.app, name="data", help="Build and validate the curated dataset.")
app.add_typer(lab_cli.app, name="lab", help="The physics-based virtual lab.")
app.add_typer(
    campaign_cli.app, name="campaign", help="Multi-objective campaigns: ask/tell with the lab."
)
models_cli.register(app)
serve_cli.register(app)
explain_cli.register(app)
ui_cli.register(app)

EXIT_BAD_INPUT = 2


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, turning poreml errors into exit code 2."""
    try:
        app(args=argv, prog_name="poreml")
    except PoremlError as err:
        typer.echo(f"poreml: error: {err}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        typer.echo("poreml: interrupted", err=True)
        sys.exit(130)
