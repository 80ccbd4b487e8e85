"""``poreml campaign``: multi-objective optimisation campaigns on the command line.

Commands (CONTRACT.md §2):

* ``init DIR --config FILE.toml``: create a campaign in DIR (never overwrites one);
* ``suggest DIR --batch N [--out FILE.csv]``: propose N candidates (CSV with ``candidate_id``,
  every design column and ``predicted_*`` columns) and record them as pending;
* ``observe DIR FILE.csv``: record results (``candidate_id`` + any measured columns; unknown
  ids are outside data and need every design column);
* ``status DIR [--json]``: observations, pending candidates, hypervolume and Pareto front;
* ``export DIR --out FILE.csv``: every observation with its design and measured columns;
* ``run DIR --oracle virtual-lab --rounds N [--scenario NAME] [--seed N]``: closed loop
  against the virtual lab, with a progress bar.

Where the campaign lives: without storage the first argument is the campaign's folder; with
``--storage URL`` (default: ``POREML_CAMPAIGN_STORAGE``; any SQLAlchemy URL) it is the campaign's
name in that database (:class:`~poreml.optimize.sql_store.SqlStore`), and every command behaves
and prints as with a folder. A database campaign writes its plots and round tables only where
``--reports DIR`` says.

Rounds are logged to MLflow (``POREML_TRACKING_URI``, default the SQLite store under
``POREML_HOME``) unless ``--no-tracking`` is given; tracking is a side channel and never stops a
command. Bad input raises :class:`~poreml.exceptions.PoremlError` subclasses, which
``poreml.cli.main`` turns into a one-paragraph message and exit code 2. Heavy modules (torch,
BoTorch, MLflow) are imported inside the commands so that ``poreml --help`` stays fast.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from poreml.exceptions import CampaignError, ConfigError, PoremlError

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Group

    from poreml.optimize.campaign import Campaign
    from poreml.optimize.events import CampaignListener
    from poreml.optimize.store import CampaignStore

app = typer.Typer(
    help="Multi-objective Bayesian-optimisation campaigns (ask / tell, closed loop).",
    no_args_is_help=True,
)

ORACLES: tuple[str, ...] = ("virtual-lab",)
"""Oracles ``poreml campaign run`` can measure with."""

_DIR_HELP = (
    "Campaign directory (made by `poreml campaign init`), or with --storage the campaign's name."
)
_STORAGE_HELP = (
    "Database holding campaigns by name (any SQLAlchemy URL, e.g. "
    "postgresql+psycopg://USER:PASSWORD@HOST:5432/DB or sqlite:///PATH); default "
    "POREML_CAMPAIGN_STORAGE; unset = the first argument is a folder."
)
_REPORTS_HELP = (
    "With --storage: folder for the plots and round tables (default: none are written). A "
    "campaign folder keeps them in DIR/reports and DIR/rounds."
)
_TRACKING_HELP = "Do not log to MLflow (tracking is a side channel; the campaign is unaffected)."
_LOCK_HELP = "Seconds to wait for another poreml command working on the same campaign."


def _listeners(no_tracking: bool) -> list[CampaignListener]:
    """The MLflow campaign runs, unless tracking is off."""
    if no_tracking:
        return []
    from poreml.tracking.campaign_runs import CampaignRuns
    from poreml.tracking.mlflow_tracker import CAMPAIGN_EXPERIMENT, MlflowTracker

    return [CampaignRuns(MlflowTracker(CAMPAIGN_EXPERIMENT))]


def _store(
    target: Path, storage: str | None, reports: Path | None, lock_timeout: float
) -> CampaignStore:
    """The campaign folder ``target``, or the campaign named ``target`` in the storage database.

    Raises:
        ConfigError: ``--reports`` without a storage database.
        CampaignError: a storage URL that cannot be parsed or a bad campaign name.
    """
    from poreml.settings import get_settings

    url = storage or get_settings().campaign_storage
    if not url:
        if reports is not None:
            raise ConfigError(
                f"--reports {reports}: a campaign folder keeps its plots in {target / 'reports'}; "
                "--reports applies to campaigns in a database. Fix: drop --reports, or add "
                "--storage URL (or set POREML_CAMPAIGN_STORAGE)."
            )
        from poreml.optimize.store import FolderStore

        return FolderStore(target, lock_timeout=lock_timeout)
    from poreml.optimize.sql_store import SqlStore

    return SqlStore(url, str(target), reports=reports, lock_timeout=lock_timeout)


def _storage_hint(storage: str | None) -> str:
    """`` --storage URL`` (password hidden) for printed next steps when the flag was given."""
    if not storage:
        return ""
    from poreml.optimize.sql_store import safe_url

    return f" --storage {safe_url(storage)}"


def _load(store: CampaignStore, no_tracking: bool) -> Campaign:
    from poreml.optimize.campaign import Campaign

    return Campaign.load(store, listeners=_listeners(no_tracking))


@app.command("init")
def init_cmd(
    directory: Path = typer.Argument(..., help="Directory to create the campaign in."),
    config: Path = typer.Option(
        ..., "--config", "-c", help="Campaign TOML file (CONTRACT.md §3); copied into DIR."
    ),
    num_restarts: int | None = typer.Option(
        None, "--num-restarts", min=1, help="Acquisition starting points refined per candidate."
    ),
    raw_samples: int | None = typer.Option(
        None, "--raw-samples", min=2, help="Sobol points scored to pick the starting points."
    ),
    mc_samples: int | None = typer.Option(
        None, "--mc-samples", min=1, help="QMC posterior samples of the acquisition function."
    ),
    fast: bool = typer.Option(
        False, "--fast", help="Small acquisition settings (quick looks and tests)."
    ),
    no_tracking: bool = typer.Option(False, "--no-tracking", help=_TRACKING_HELP),
    storage: str | None = typer.Option(None, "--storage", help=_STORAGE_HELP),
    reports: Path | None = typer.Option(None, "--reports", help=_REPORTS_HELP),
    lock_timeout: float = typer.Option(60.0, "--lock-timeout", min=0.0, help=_LOCK_HELP),
) -> None:
    """Create a campaign in DIR from FILE.toml (refuses to overwrite an existing campaign)."""
    from poreml.optimize.campaign import Campaign
    from poreml.optimize.strategy import AcquisitionSettings

    settings = AcquisitionSettings.fast() if fast else AcquisitionSettings()
    changes = {
        k: v
        for k, v in {
            "num_restarts": num_restarts,
            "raw_samples": raw_samples,
            "mc_samples": mc_samples,
        }.items()
        if v is not None
    }
    if changes:
        settings = settings.replace(**changes)
    campaign = Campaign.create(
        _store(directory, storage, reports, lock_timeout),
        config,
        settings=settings,
        listeners=_listeners(no_tracking),
    )
    cfg = campaign.config
    objectives = ", ".join(f"{o.direction} {o.name}" for o in cfg.objectives)
    typer.echo(
        f"{directory}: campaign {cfg.name!r} created ({objectives}; batch {cfg.batch_size}, "
        f"{cfg.initial_points} space-filling points first). Next: poreml campaign suggest "
        f"{directory} --batch {cfg.batch_size}{_storage_hint(storage)}"
    )


@app.command("suggest")
def suggest_cmd(
    directory: Path = typer.Argument(..., help=_DIR_HELP),
    batch: int | None = typer.Option(
        None, "--batch", "-n", min=1, max=1000, help="Number of candidates (default: config)."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Write the CSV here instead of printing it."
    ),
    no_tracking: bool = typer.Option(False, "--no-tracking", help=_TRACKING_HELP),
    storage: str | None = typer.Option(None, "--storage", help=_STORAGE_HELP),
    reports: Path | None = typer.Option(None, "--reports", help=_REPORTS_HELP),
    lock_timeout: float = typer.Option(60.0, "--lock-timeout", min=0.0, help=_LOCK_HELP),
) -> None:
    """Propose candidates and record them as pending; prints (or writes) them as CSV."""
    from poreml.data.io import write_csv

    if out is not None:
        _check_writable(out)
    campaign = _load(_store(directory, storage, reports, lock_timeout), no_tracking)
    proposals = campaign.ask(batch)
    if out is None:
        typer.echo(proposals.to_csv(index=False, lineterminator="\n"), nl=False)
        return
    try:
        write_csv(proposals, out)
    except (OSError, PoremlError) as err:
        ids = " ".join(proposals["candidate_id"])
        raise CampaignError(
            f"{out}: the proposals could not be written ({err}); they are recorded as pending "
            f"({ids}). Withdraw them with: poreml campaign cancel {directory} {ids}"
            f"{_storage_hint(storage)} — then suggest again with a writable --out."
        ) from None
    strategy = campaign.history.iloc[-1]["strategy"]
    typer.echo(
        f"{out}: {len(proposals)} candidates ({strategy}) recorded as pending in {directory}; "
        f"measure them, then run: poreml campaign observe {directory} RESULTS.csv"
        f"{_storage_hint(storage)}"
    )


def _check_writable(out: Path) -> None:
    """Fail before anything is recorded when ``out`` cannot be written."""
    folder = out.parent if str(out.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".{out.name}.poreml-write-check"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise ConfigError(
            f"--out {out}: cannot write there ({err.strerror or err}); nothing was proposed. "
            "Fix: choose a folder you can write to."
        ) from None


@app.command("cancel")
def cancel_cmd(
    directory: Path = typer.Argument(..., help=_DIR_HELP),
    ids: list[str] = typer.Argument(None, help="Pending candidate ids to withdraw."),
    all_pending: bool = typer.Option(False, "--all-pending", help="Withdraw every pending id."),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept in the campaign)."),
    storage: str | None = typer.Option(None, "--storage", help=_STORAGE_HELP),
    lock_timeout: float = typer.Option(60.0, "--lock-timeout", min=0.0, help=_LOCK_HELP),
) -> None:
    """Withdraw pending candidates that will get no result (never received, not made)."""
    campaign = _load(_store(directory, storage, None, lock_timeout), True)
    wanted = list(ids or [])
    if all_pending:
        wanted += [i for i in campaign.pending["candidate_id"] if i not in wanted]
    if not wanted:
        raise ConfigError("cancel: name the pending ids to withdraw, or give --all-pending")
    done = campaign.cancel(wanted, reason=reason)
    skipped = [i for i in wanted if i not in done]
    typer.echo(
        f"{directory}: {len(done)} cancelled ({' '.join(done) or 'none'})"
        + (f", {len(skipped)} already cancelled" if skipped else "")
        + f"; {campaign.n_pending} pending."
    )


@app.command("observe")
def observe_cmd(
    directory: Path = typer.Argument(..., help=_DIR_HELP),
    results: Path = typer.Argument(
        ...,
        help="CSV: candidate_id + any measured columns (+ feasible); blank cells = not "
        "measured; unknown ids need every design column (outside data).",
    ),
    no_tracking: bool = typer.Option(False, "--no-tracking", help=_TRACKING_HELP),
    storage: str | None = typer.Option(None, "--storage", help=_STORAGE_HELP),
    reports: Path | None = typer.Option(None, "--reports", help=_REPORTS_HELP),
    lock_timeout: float = typer.Option(60.0, "--lock-timeout", min=0.0, help=_LOCK_HELP),
) -> None:
    """Record measured results; re-sending identical results changes nothing."""
    from poreml.data.io import read_csv

    frame = read_csv(results)
    campaign = _load(_store(directory, storage, reports, lock_timeout), no_tracking)
    summary = campaign.tell(frame, source=str(results))
    if not summary.changed:
        typer.echo(f"{results}: nothing new ({len(summary.unchanged)} rows already recorded).")
        return
    typer.echo(
        f"{results}: {len(summary.new)} new observations ({len(summary.outside)} outside data), "
        f"{len(summary.updated)} updated, {len(summary.unchanged)} unchanged; "
        f"{campaign.n_observations} observations, {campaign.n_pending} pending, "
        f"hypervolume {campaign.hypervolume():.4g}."
    )


@app.command("status")
def status_cmd(
    directory: Path = typer.Argument(..., help=_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    storage: str | None = typer.Option(None, "--storage", help=_STORAGE_HELP),
    lock_timeout: float = typer.Option(60.0, "--lock-timeout", min=0.0, help=_LOCK_HELP),
) -> None:
    """Observations, pending candidates, hypervolume and the observed Pareto front."""
    campaign = _load(_store(directory, storage, None, lock_timeout), True)
    status = campaign.status()
    if as_json:
        typer.echo(json.dumps(status, allow_nan=False))
        return
    from rich.console import Console

    console = Console()
    console.print(
        f"[bold]{status['name']}[/bold] ({directory}): {status['n_observations']} observations "
        f"({status['n_failed']} failed syntheses), {status['n_pending']} pending, "
        f"{status['n_rounds']} rounds; next proposals: {status['next_strategy']}"
    )
    ref = ", ".join(f"{k} {v:g}" for k, v in status["reference_point"].items())
    console.print(f"hypervolume {status['hypervolume']:.4g} (reference point: {ref})")
    console.print(_front_table(campaign.pareto_front(), campaign))
    console.print(_routes_table(status["routes"], status["physics_calibration"]))
    console.print(_model_table(status["model_check"]))


def _model_table(rows: list[dict[str, Any]]) -> Any:
    """Per outcome: how the model's earlier predictions fared and the widening now in use."""
    from rich.table import Table

    table = Table(
        title="Model check (predictions made with proposals vs what the lab measured; "
        "coverage of the 90 % band; widening = factor on the model's uncertainty in the "
        "next proposals)"
    )
    for column in ("outcome", "predictions checked", "RMSE", "coverage90", "widening"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["outcome"],
            str(r["n"]),
            "-" if r["rmse"] is None else f"{r['rmse']:.3g}",
            "-" if r["coverage90"] is None else f"{r['coverage90']:.0%}",
            f"{r['widening']:.2f}",
        )
    return table


def _routes_table(routes: list[dict[str, Any]], calibration: dict[str, Any] | None) -> Any:
    """Per route: designs tried, how well the virtual-lab prior matched them and, when the
    model calibrates the physics, the route constants it moved for this lab."""
    from rich.table import Table

    title = (
        "Physics prior by route (misfit = RMSE of measured - prior / spread; "
        "< 0.5 good, < 1 fair, else poor)"
    )
    if calibration is not None and calibration["accepted"]:
        moved = ", ".join(f"{k} {v:.3g}" for k, v in calibration["globals"].items()) or "none"
        title += (
            f"; the model calibrated the physics to this lab: misfit "
            f"{calibration['misfit_before']:.2f} -> {calibration['misfit_after']:.2f} "
            f"(standardised), model parameters moved: {moved}"
        )
    elif calibration is not None:
        title += (
            f"; the data do not show the published constants wrong (test statistic "
            f"{calibration['statistic']:.0f} <= {calibration['threshold']:.0f}): kept"
        )
    table = Table(title=title)
    for column in ("route", "tried", "made", "failed", "prior predicted made/failed", "misfit"):
        table.add_column(column)
    table.add_column("verdict")
    if calibration is not None:
        table.add_column("constants calibrated (x published)")
    for r in routes:
        agreement = r["feasibility_agreement"]
        cells = [
            r["route"],
            str(r["tried"]),
            str(r["made"]),
            str(r["failed"]),
            "-" if agreement is None else f"{agreement:.0%}",
            "-" if r["misfit"] is None else f"{r['misfit']:.2f}",
            r["verdict"],
        ]
        if calibration is not None:
            factors = calibration["routes"].get(r["route"], {})
            cells.append(", ".join(f"{k} x{v:.2f}" for k, v in factors.items()) or "as published")
        table.add_row(*cells)
    return table


@app.command("export")
def export_cmd(
    directory: Path = typer.Argument(..., help=_DIR_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="CSV file to write."),
    storage: str | None = typer.Option(None, "--storage", help=_STORAGE_HELP),
    lock_timeout: float = typer.Option(60.0, "--lock-timeout", min=0.0, help=_LOCK_HELP),
) -> None:
    """Write every observation: candidate_id, design columns, measured columns, feasible."""
    from poreml.data.io import write_csv

    campaign = _load(_store(directory, storage, None, lock_timeout), True)
    table = campaign.export()
    write_csv(table, out)
    typer.echo(f"{out}: {len(table)} observations exported.")


@app.command("run")
def run_cmd(
    directory: Path = typer.Argument(..., help=_DIR_HELP),
    oracle: str = typer.Option(..., "--oracle", help="What measures the candidates: virtual-lab."),
    rounds: int = typer.Option(
        ..., "--rounds", min=1, help="Number of ask / measure / tell rounds."
    ),
    scenario: str = typer.Option(
        "baseline", "--scenario", help="Virtual-lab scenario (`poreml lab scenarios`)."
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Noise seed of the virtual lab."),
    instance_seed: int | None = typer.Option(
        None, "--instance-seed", min=0, help="Randomised instance of the virtual lab (spec §7)."
    ),
    batch: int | None = typer.Option(
        None, "--batch", "-n", min=1, max=1000, help="Candidates per round (default: config)."
    ),
    no_tracking: bool = typer.Option(False, "--no-tracking", help=_TRACKING_HELP),
    storage: str | None = typer.Option(None, "--storage", help=_STORAGE_HELP),
    reports: Path | None = typer.Option(None, "--reports", help=_REPORTS_HELP),
    lock_timeout: float = typer.Option(60.0, "--lock-timeout", min=0.0, help=_LOCK_HELP),
) -> None:
    """Closed loop against the virtual lab: ask a batch, measure it (noisy, seeded), tell."""
    if oracle not in ORACLES:
        raise ConfigError(
            f"--oracle: expected one of {', '.join(ORACLES)}, got {oracle!r}. Fix: use "
            "--oracle virtual-lab (or run suggest / observe with your own lab)."
        )
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from poreml.virtual_lab import VirtualLab

    store = _store(directory, storage, reports, lock_timeout)
    lab = VirtualLab(scenario, instance_seed)
    campaign = _load(store, no_tracking)
    console = Console()

    def measure(candidates: pd.DataFrame, k: int) -> pd.DataFrame:
        return lab.measure(candidates, seed=seed * 100_003 + k, noise=True)

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} rounds"),
        TextColumn("HV {task.fields[hv]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(campaign.config.name, total=rounds, hv="-")

        def advance(k: int, results: pd.DataFrame, summary: Any) -> None:
            progress.update(task, advance=1, hv=f"{campaign.hypervolume():.4g}")

        campaign.run(measure, rounds, batch_size=batch, on_round=advance)

    console.print(
        f"{campaign.n_observations} observations; hypervolume {campaign.hypervolume():.4g}"
    )
    console.print(_front_table(campaign.pareto_front(), campaign))
    if not no_tracking:
        from poreml.settings import get_settings

        uri = get_settings().resolved_tracking_uri
        typer.echo(f"MLflow tracking URI: {uri} (experiment 'poreml-campaigns')")
        typer.echo("Browse the rounds with: poreml ui")
    if store.reports_dir is not None:
        typer.echo(f"Plots: {store.reports_dir}")
    else:
        typer.echo("Plots: none written (give --reports DIR to write them).")


_SHORT = {
    "candidate_id": "id",
    "tap_density_g_cm3": "TD g/cm³",
    "ssa_m2_g": "SSA m²/g",
    "specific_capacity_mah_g": "Q mAh/g",
    "ice_pct": "ICE %",
    "retention_pct": "R500 %",
    "expansion_pct": "exp %",
    "electrode_swelling_pct": "swell %",
    "volumetric_capacity_mah_cm3": "Cvol",
    "strain_buffering": "S",
    "electrolyte_uptake_ul_mg": "µL/mg",
    "pore_size_nm": "pore nm",
    "porosity": "φ",
    "closed_pore_fraction": "closed",
    "carbon_wt_pct": "C wt%",
    "si_domain_nm": "Si nm",
    "shell_nm": "shell nm",
    "d50_um": "d50 µm",
    "graphitic_fraction": "graphitic",
}


def _front_table(front: pd.DataFrame, campaign: Campaign) -> Group:
    """Rich tables of the front: outcomes (id, route, objectives, constrained outcomes) and,
    below, the free design columns; short unit-bearing headers keep them readable at 80
    columns."""
    from rich.console import Group
    from rich.table import Table

    cfg = campaign.config
    first = cfg.objectives[0]
    if first.name in front:
        front = front.sort_values(first.name, ascending=first.direction == "minimize")
    outcome_cols = ["candidate_id", "route", *cfg.outcome_names]
    design_cols = [n for n in campaign.space.feature_names if n != "route" and n in front]
    tables = []
    for title, cols in (
        (f"Pareto front ({len(front)} designs): outcomes", outcome_cols),
        ("Pareto front: design", ["candidate_id", *design_cols]),
    ):
        table = Table(title=title, header_style="bold")
        for c in cols:
            table.add_column(
                _SHORT.get(c, c),
                justify="left" if c in ("candidate_id", "route") else "right",
                no_wrap=True,
            )
        for _, row in front.iterrows():
            table.add_row(*(_cell(row.get(c)) for c in cols))
        tables.append(table)
    return Group(*tables)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
