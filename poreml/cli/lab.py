"""``poreml lab``: the physics-based virtual lab on the command line.

Commands:

* ``measure IN.csv --out OUT.csv [--scenario NAME] [--seed N] [--no-noise] [--instance-seed N]
  [--extra]``: reads design columns (+ optional ``candidate_id``) and writes ``candidate_id``,
  the design columns, every measured column and ``feasible`` (CONTRACT.md §2);
* ``demo [--n 12] [--seed 0]``: measures a space-filling batch over the three routes plus the
  literature reference materials T1-T7 and prints a table;
* ``scenarios``: lists the scenario names and their test conditions.

Bad input raises :class:`~poreml.exceptions.PoremlError` subclasses; ``poreml.cli`` turns them
into a one-paragraph message and exit code 2. The virtual lab is imported inside the commands so
that ``poreml --help`` stays fast.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.table import Table

app = typer.Typer(
    help="The physics-based virtual lab (shared/design/virtual-lab.md): measure designs, demo.",
    no_args_is_help=True,
)

_SCENARIO_HELP = "Test condition (spec §5); `poreml lab scenarios` lists the names."


@app.command("measure")
def measure_cmd(
    infile: Path = typer.Argument(
        ..., help="CSV with design columns (CONTRACT.md §1) and optional candidate_id."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="CSV file to write the results to."),
    scenario: str = typer.Option("baseline", "--scenario", help=_SCENARIO_HELP),
    seed: int | None = typer.Option(
        None, "--seed", min=0, help="Noise seed (reproducible results); random when left out."
    ),
    no_noise: bool = typer.Option(
        False, "--no-noise", help="Deterministic model: no batch or measurement noise."
    ),
    instance_seed: int | None = typer.Option(
        None,
        "--instance-seed",
        min=0,
        help="Randomised instance of the physics constants (spec §7).",
    ),
    extra: bool = typer.Option(
        False, "--extra", help="Also write the diagnostic outputs of spec §2.4."
    ),
) -> None:
    """Measure the designs in IN.csv with the virtual lab and write OUT.csv.

    Columns left out of IN.csv take their contract defaults; candidate ids VL-0001, … are
    generated when IN.csv has no candidate_id column.
    """
    from poreml.data.io import read_csv, write_csv
    from poreml.virtual_lab import VirtualLab

    lab = VirtualLab(scenario, instance_seed)
    designs = read_csv(infile)
    noise = not no_noise
    if noise and seed is None:
        seed = secrets.randbelow(2**31)
    result = lab.measure(designs, seed=seed, noise=noise, extra=extra, source=str(infile))
    write_csv(result, out)
    how = f"noise seed {seed}" if noise else "no noise"
    inst = "" if instance_seed is None else f", instance {instance_seed}"
    typer.echo(
        f"{out}: {len(result)} designs measured ({int(result['feasible'].sum())} feasible; "
        f"scenario {lab.scenario}{inst}, {how})"
    )


@app.command("demo")
def demo_cmd(
    n: int = typer.Option(12, "--n", min=1, max=10_000, help="Space-filling designs to add."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the designs and of the noise."),
    scenario: str = typer.Option("baseline", "--scenario", help=_SCENARIO_HELP),
) -> None:
    """Measure a space-filling batch over the three routes plus the reference materials T1-T7.

    Prints one noisy measurement per design: the seven literature materials of spec §8.2 first,
    then N scrambled-Sobol designs over the contract search box (routes balanced).
    """
    import pandas as pd
    from rich.console import Console

    from poreml.design.search_space import SearchSpace
    from poreml.virtual_lab import VirtualLab, reference_designs

    lab = VirtualLab(scenario)
    refs = reference_designs([f"T{i}" for i in range(1, 8)])
    names = dict(zip(refs["candidate_id"], refs["case"], strict=True))
    batch = SearchSpace.contract_box().sample(n, seed)
    batch.insert(0, "candidate_id", [f"VL-{i:04d}" for i in range(1, n + 1)])
    designs = pd.concat([refs.drop(columns="case"), batch], ignore_index=True)
    res = lab.measure(designs, seed=seed)

    design_cols = {
        "id": [str(v) for v in res["candidate_id"]],
        "route": [str(v) for v in res["route"]],
        "φ": [f"{v:.2f}" for v in res["porosity"]],
        "pore nm": [_size(v) for v in res["pore_size_nm"]],
        "Si nm": [_size(v) for v in res["si_domain_nm"]],
        "C %": [f"{v:.0f}" for v in res["carbon_wt_pct"]],
        "f_cl": [f"{v:.2f}" for v in res["closed_pore_fraction"]],
    }
    result_cols = {
        "TD": [f"{v:.2f}" for v in res["tap_density_g_cm3"]],
        "S": [f"{v:.2f}" for v in res["strain_buffering"]],
        "Q": [f"{v:.0f}" for v in res["specific_capacity_mah_g"]],
        "ICE %": [f"{v:.1f}" for v in res["ice_pct"]],
        "R500 %": [f"{v:.1f}" for v in res["retention_pct"]],
        "exp %": [f"{v:.0f}" for v in res["expansion_pct"]],
        "Cvol": [f"{v:.0f}" for v in res["volumetric_capacity_mah_cm3"]],
        "ok": ["✓" if v else "✗" for v in res["feasible"]],
    }
    styles = [None if v else "dim" for v in res["feasible"]]
    title = f"Virtual lab · scenario {lab.scenario} · noise seed {seed}"
    console = Console()
    if console.width >= 120:
        console.print(_table(title, {**design_cols, **result_cols}, styles))
    else:  # narrow terminal: designs and results in two tables
        console.print(_table(title + " · designs", design_cols, styles))
        results = {"id": design_cols["id"], **result_cols}
        console.print(_table(title + " · measured", results, styles))
    console.print(
        "φ porosity, f_cl closed-pore share, C carbon wt %, TD tap density (g/cm³), "
        "S strain buffering, Q capacity (mAh/g), R500 retention after 500 cycles, "
        "exp particle expansion, Cvol volumetric capacity (mAh/cm³)."
    )
    legend = "; ".join(f"{k} {v}" for k, v in names.items())
    console.print(
        f"Literature materials of spec §8.2 (assumed compositions): {legend}. "
        "VL-…: scrambled-Sobol designs over the contract search box."
    )
    n_ok = int(res["feasible"].sum())
    console.print(
        f"{n_ok} of {len(res)} designs feasible (✗: the route cannot make the requested "
        "design; it was measured at the nearest makeable one). Measure your own designs with "
        "`poreml lab measure IN.csv --out OUT.csv`."
    )


def _size(value: float) -> str:
    """Three significant figures without exponent notation (0.773, 62.2, 2790)."""
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _table(title: str, columns: dict[str, list[str]], styles: list[str | None]) -> Table:
    """A rich table with one column per key (text left-aligned, numbers right-aligned)."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in columns:
        justify = "left" if name in ("id", "route") else "center" if name == "ok" else "right"
        table.add_column(name, justify=justify, no_wrap=True)
    for i, style in enumerate(styles):
        table.add_row(*(col[i] for col in columns.values()), style=style)
    return table


@app.command("scenarios")
def scenarios_cmd() -> None:
    """List the scenarios (test conditions) of the virtual lab and their overrides."""
    from poreml.virtual_lab import SCENARIOS

    for scen in SCENARIOS.values():
        over = ", ".join(f"{k} = {v}" for k, v in scen.overrides.items()) or "defaults"
        typer.echo(f"{scen.name}: {scen.description} [{over}]")
