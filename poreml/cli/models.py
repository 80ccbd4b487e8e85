"""``poreml train | evaluate | predict | ui``: surrogate models on the command line.

* ``train``: fit a surrogate on virtual-lab or CSV data (optionally tuned with Optuna), score it
  on held-out data, save the model folder (with ``metadata.json`` and ``MODEL_CARD.md``), log the
  run to MLflow and register / promote it;
* ``evaluate``: grouped CV on real data against the ``mean`` and ``ridge`` baselines and
  virtual-lab learning curves; tables (CSV + markdown) and plots, logged to MLflow;
* ``predict``: predictions with 90 % intervals and the domain flag for a CSV of designs;
* ``ui``: the MLflow UI on the configured tracking store.

Wire them with :func:`register` (top-level commands). Bad input raises
:class:`~poreml.exceptions.PoremlError` subclasses; ``poreml.cli.main`` turns them into exit
code 2. Heavy imports happen inside the commands so ``poreml --help`` stays fast.

The shipped champion is rebuilt with::

    poreml train --model gp --data virtual-lab --n 256 --seed 0 --out models/champion
"""

from __future__ import annotations

import json
import math
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import typer

from poreml.exceptions import ConfigError, PoremlError

if TYPE_CHECKING:
    import pandas as pd
    from rich.progress import Progress

    from poreml.surrogates.base import Surrogate
    from poreml.tracking.base import Tracker
    from poreml.tracking.mlflow_tracker import MlflowTracker

METADATA_FILE = "metadata.json"
"""Model metadata in a saved model folder (served by the API's ``/v1/model``)."""

MODEL_CARD_FILE = "MODEL_CARD.md"
"""Human-readable model card in a saved model folder."""

VIRTUAL_LAB = "virtual-lab"
"""``--data`` value selecting virtual-lab training data."""

HELDOUT_SEED = 10_000
"""Seed of the virtual-lab held-out designs (fixed, so held-out scores are comparable)."""

CHAMPION_COMMAND = (
    "poreml train --model gp --data virtual-lab --n 256 --seed 0 --out models/champion"
)
"""The documented command that rebuilds ``models/champion``."""


class ModelCliError(PoremlError, RuntimeError):
    """A model command cannot run (no model folder, unreachable tracking store, ...)."""


# --------------------------------------------------------------------------------------------
# helpers


def _parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["key=value", ...]`` → settings; values parsed as JSON when possible, else strings."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--param {item!r}: expected KEY=VALUE, e.g. --param prior=constant "
                "or --param n_members=5"
            )
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip()] = value
    return out


def _model_params(model: str, params: dict[str, Any], feature_set: str) -> dict[str, Any]:
    """Settings for ``make(model, ...)``: ``feature_set`` and, where the model has one, the
    torch ``device`` from the settings."""
    from poreml.settings import get_settings
    from poreml.surrogates.registry import get

    allowed = get(model)._get_param_names()
    out = {**params, "feature_set": feature_set}
    if "device" in allowed and "device" not in out:
        out["device"] = get_settings().device
    return out


@contextmanager
def _progress() -> Iterator[Progress]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    ) as progress:
        yield progress


def _tracker(track: bool, experiment: str | None = None) -> Tracker:
    from poreml.tracking.base import NullTracker

    if not track:
        return NullTracker()
    from poreml.tracking.mlflow_tracker import SURROGATE_EXPERIMENT, MlflowTracker

    return MlflowTracker(experiment or SURROGATE_EXPERIMENT)


@contextmanager
def _tracking_errors(tracker: Tracker) -> Iterator[None]:
    """Turn MLflow store errors into a :class:`ModelCliError` with a fix."""
    try:
        yield
    except PoremlError:
        raise
    except Exception as err:
        if type(err).__module__.split(".")[0] not in ("mlflow", "sqlalchemy"):
            raise
        uri = getattr(tracker, "tracking_uri", "?")
        raise ModelCliError(
            f"MLflow tracking store {uri}: {err}. Check POREML_TRACKING_URI (or run with "
            "--no-track)."
        ) from None


@dataclass
class _Data:
    """Training data and how it was obtained."""

    frame: pd.DataFrame
    X: pd.DataFrame
    y: pd.DataFrame
    groups: Any
    source: dict[str, Any]
    heldout: str
    heldout_X: pd.DataFrame | None = None
    heldout_y: pd.DataFrame | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _load_training_data(
    data: str,
    *,
    n: int,
    scenario: str,
    instance_seed: int | None,
    seed: int,
    n_test: int,
    feature_set: str,
) -> _Data:
    import numpy as np

    from poreml.surrogates.base import FEATURE_SETS, TARGETS
    from poreml.surrogates.evaluation import (
        random_groups,
        real_data_groups,
        sample_designs,
        virtual_lab_data,
    )

    if feature_set not in FEATURE_SETS:
        raise ConfigError(
            f"--feature-set: expected one of {', '.join(FEATURE_SETS)} (got {feature_set!r})"
        )
    inputs = list(FEATURE_SETS[feature_set])
    targets = [t for t in TARGETS if t not in inputs]
    if data == VIRTUAL_LAB:
        from poreml.virtual_lab import VirtualLab

        frame = virtual_lab_data(
            n, scenario=scenario, instance_seed=instance_seed, seed=seed, noise=True
        )
        test = VirtualLab(scenario, instance_seed).evaluate(sample_designs(n_test, HELDOUT_SEED))
        return _Data(
            frame=frame,
            X=frame[inputs],
            y=frame[targets],
            groups=random_groups(len(frame), 10, seed),
            source={
                "data": VIRTUAL_LAB,
                "scenario": scenario,
                "instance_seed": instance_seed,
                "n": n,
                "seed": seed,
                "noise": True,
            },
            heldout=(
                f"virtual lab ({scenario}, "
                + ("published constants" if instance_seed is None else f"instance {instance_seed}")
                + f"), {n_test} Sobol designs (seed {HELDOUT_SEED}), noise-free"
            ),
            heldout_X=test[inputs],
            heldout_y=test[targets],
        )
    from poreml.data.io import read_csv
    from poreml.data.validation import validate_table

    path = Path(data)
    frame = validate_table(read_csv(path), source=str(path))
    present = [t for t in targets if t in frame.columns]
    if not present:
        raise ConfigError(
            f"{path}: no target column; expected at least one of {', '.join(targets)}"
        )
    X = frame[[c for c in inputs if c in frame.columns]]
    y = frame[present].astype("float64")
    return _Data(
        frame=frame,
        X=X,
        y=y,
        groups=real_data_groups(frame),
        source={"data": str(path), "rows": len(frame)},
        heldout=f"grouped 5-fold CV of {path.name} (groups = reference)",
        extra={"n_groups": len(np.unique(real_data_groups(frame)))},
    )


def _trained_ranges(X: pd.DataFrame) -> dict[str, Any]:
    """Per design column the values seen in training: min/max (physical units) or routes."""
    from poreml.data.schema import COLUMNS, DESIGN_COLUMNS

    out: dict[str, Any] = {}
    for name in DESIGN_COLUMNS:
        col = COLUMNS[name]
        entry: dict[str, Any] = {"unit": col.unit}
        values = X[name].dropna() if name in X.columns else X.iloc[:0, :0]
        if name == "route":
            entry["values"] = sorted({str(v) for v in values}) if len(values) else []
        elif len(values):
            entry["min"] = float(values.min())
            entry["max"] = float(values.max())
        else:
            entry["min"] = entry["max"] = None
        entry["observed_rows"] = len(values)
        if col.default is not None:
            entry["default"] = col.default
        out[name] = entry
    return out


def _files_sha256(folder: Path, names: tuple[str, ...]) -> str:
    import hashlib

    h = hashlib.sha256()
    for name in names:
        path = folder / name
        if path.is_file():
            h.update(name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _model_card(meta: dict[str, Any], metrics: pd.DataFrame) -> str:
    from poreml.surrogates.evaluation import markdown_table

    src = meta["training"]
    ranges = []
    for name, rng in meta["design_columns"].items():
        if "values" in rng:
            ranges.append(f"| `{name}` | {', '.join(rng['values']) or '—'} | – |")
        else:
            lo = "—" if rng.get("min") is None else f"{rng['min']:.4g}"
            hi = "—" if rng.get("max") is None else f"{rng['max']:.4g}"
            ranges.append(f"| `{name}` | {lo} – {hi} | {rng['unit']} |")
    lines = [
        f"# Model card: {meta['model_name']} ({meta['model']}), version {meta['version']}",
        "",
        "## What it is",
        "",
        f"A `{meta['model']}` surrogate (poreml {meta['poreml_version']}) predicting "
        + ", ".join(f"`{t}`" for t in meta["targets"])
        + f" from the `{meta['feature_set']}` feature set. Every prediction comes with a "
        "standard deviation and a central 90 % interval for a new measurement, plus an "
        "`in_domain` flag (inputs inside the training ranges, widened by "
        f"{100 * meta['domain_margin']:.0f} % of each range, and a route seen in training).",
        "",
        "Settings: `" + json.dumps(meta["params"], sort_keys=True) + "`.",
        "",
        "## Training data",
        "",
        f"- source: {src['description']}",
        f"- rows: {src['rows']}; sha256 of the training table (canonical CSV): `{src['sha256']}`",
        "",
        "Trained ranges of the design columns:",
        "",
        "| column | trained range | unit |",
        "| --- | --- | --- |",
        *ranges,
        "",
        "## Held-out metrics",
        "",
        f"Held-out set: {meta['metrics']['heldout']}. Intervals scored: "
        f"{meta['metrics']['interval']}.",
        "",
        markdown_table(metrics),
        "",
        f"Mean standardised NLL over targets (`mean_nll_std`, the champion metric): "
        f"{meta['metrics']['mean_nll_std']:.4g}.",
        "",
        "## Limits",
        "",
        "- Trained on the **virtual lab**, a physics-based benchmark function, not on measured "
        "materials: numbers describe that simulator, not real particles."
        if src.get("data") == VIRTUAL_LAB
        else "- Trained on a small literature table: most design columns are blank there, so "
        "the model leans on `route`, missing-value indicators and the defaults.",
        "- With `prior=physics` the GP's prior mean *is* the virtual lab (baseline constants); "
        "on virtual-lab data the held-out scores are therefore optimistic compared with a "
        "system whose physics differs (see the randomised-task learning curves in "
        "`experiments/results/surrogate_bench.md`).",
        "- `retention_pct` means retention after 500 cycles; `in_domain = false` marks "
        "extrapolation, where intervals are not to be trusted.",
        "- Predictions for designs the route cannot make (`feasible = false` in the lab) are "
        "for the clipped design the lab would realise.",
        "",
        "## Rebuild",
        "",
        "```",
        meta["rebuild_command"],
        "```",
        "",
    ]
    return "\n".join(lines)


def _heldout_scores(
    model_name: str,
    params: dict[str, Any],
    fitted: Surrogate,
    data: _Data,
    *,
    seed: int,
    progress: Progress | None,
) -> pd.DataFrame:
    """Per-target metrics of ``fitted`` on the held-out set (or grouped CV for CSV data)."""
    from poreml.surrogates.evaluation import (
        cross_val_predict_grouped,
        heldout_metrics,
        metrics_table,
    )
    from poreml.surrogates.registry import make

    if data.heldout_X is not None and data.heldout_y is not None:
        metrics, _ = heldout_metrics(
            fitted, data.heldout_X, data.heldout_y, observation_noise=False
        )
        return metrics
    task = progress.add_task("held-out CV", total=5) if progress is not None else None

    def factory(targets: list[str]) -> Surrogate:
        return make(model_name, **{**params, "targets": list(targets)})

    def on_fold(done: int, total: int) -> None:
        if progress is not None and task is not None:
            progress.update(task, completed=done, total=total)

    targets = [t for t in data.y.columns if data.y[t].notna().sum() >= 2]
    preds = cross_val_predict_grouped(
        factory,
        data.X,
        data.y,
        data.groups,
        targets=targets,
        n_splits=5,
        seed=seed,
        levels=(0.9,),
        observation_noise=True,
        on_fold=on_fold,
    )
    return metrics_table(preds, by=("target",))


# --------------------------------------------------------------------------------------------
# train


def train(
    model: str = typer.Option("gp", "--model", "-m", help="Surrogate name (registry)."),
    data: str = typer.Option(
        VIRTUAL_LAB, "--data", help="'virtual-lab' or a CSV file of measured rows."
    ),
    n: int = typer.Option(256, "--n", min=8, max=200_000, help="Virtual-lab training rows."),
    scenario: str = typer.Option("baseline", "--scenario", help="Virtual-lab scenario."),
    instance_seed: int | None = typer.Option(
        None, "--instance-seed", min=0, help="Randomised virtual-lab instance (spec §7)."
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of data, folds, tuning and model."),
    tune: bool = typer.Option(False, "--tune/--no-tune", help="Tune settings with Optuna first."),
    n_trials: int = typer.Option(20, "--n-trials", min=1, help="Optuna trials (with --tune)."),
    study: str | None = typer.Option(
        None, "--study", help="Optuna study name to create or join (default: from model + data)."
    ),
    feature_set: str = typer.Option("design", "--feature-set", help="design or descriptors."),
    param: list[str] | None = typer.Option(
        None, "--param", "-p", help="Model setting KEY=VALUE (repeatable; JSON values)."
    ),
    out: Path = typer.Option(Path("models/champion"), "--out", "-o", help="Model folder."),
    register_model: bool = typer.Option(
        True, "--register/--no-register", help="Register in MLflow; promote if better."
    ),
    metric: str = typer.Option(
        "mean_nll_std", "--metric", help="Champion metric (mean over targets, held-out)."
    ),
    force_promote: bool = typer.Option(
        False, "--force-promote", help="Move the champion alias even if not better."
    ),
    n_test: int = typer.Option(
        1000, "--n-test", min=10, help="Virtual-lab held-out designs (noise-free)."
    ),
    track: bool = typer.Option(True, "--track/--no-track", help="Log the run to MLflow."),
) -> None:
    """Train a surrogate, score it on held-out data, save it, log and register it."""
    import poreml
    from poreml.data.io import write_json, write_text
    from poreml.surrogates.evaluation import sample_designs, summarise
    from poreml.surrogates.registry import make
    from poreml.tracking.base import dataset_digest

    if register_model and not track:
        raise ConfigError("--register needs tracking: drop --no-track or add --no-register")
    settings = _model_params(model, _parse_params(param), feature_set)
    settings.setdefault("random_state", seed)
    make(model, **settings)  # unknown settings fail before any work
    tracker = _tracker(track)
    started = time.perf_counter()
    with _progress() as progress:
        load = progress.add_task("data", total=1)
        ds = _load_training_data(
            data,
            n=n,
            scenario=scenario,
            instance_seed=instance_seed,
            seed=seed,
            n_test=n_test,
            feature_set=feature_set,
        )
        progress.update(load, completed=1)
        digest = dataset_digest(ds.frame)
        with _tracking_errors(tracker), tracker.start_run(f"train-{model}"):
            tracker.log_params(
                {"model": model, "feature_set": feature_set, "cli": "train", **ds.source}
            )
            tracker.log_dataset(ds.frame, name=str(ds.source["data"]))
            heldout_key = _heldout_key(ds, digest)
            tracker.set_tags({"poreml.heldout_sha256": heldout_key, "poreml.heldout": ds.heldout})
            tuned = None
            if tune:
                import optuna

                from poreml.surrogates.tuning import tune as run_tuning

                optuna.logging.set_verbosity(optuna.logging.WARNING)
                task = progress.add_task(f"tuning {model}", total=n_trials)
                tuned = run_tuning(
                    model,
                    ds.X,
                    ds.y,
                    ds.groups,
                    n_trials=n_trials,
                    fixed_params=settings,
                    study_name=study,
                    seed=seed,
                    tracker=tracker,
                    on_trial=lambda done, total: progress.update(task, completed=done),
                )
                settings = {**settings, **tuned.best_params}
            tracker.log_params({f"param.{k}": v for k, v in settings.items()})
            fit_task = progress.add_task(f"fitting {model} on {len(ds.X)} rows", total=1)
            t0 = time.perf_counter()
            fitted = make(model, **settings).fit(ds.X, ds.y)
            fit_seconds = time.perf_counter() - t0
            progress.update(fit_task, completed=1)
            metrics = _heldout_scores(model, settings, fitted, ds, seed=seed, progress=progress)
            summary = summarise(metrics.assign(model=model)).iloc[0].to_dict()
            summary.pop("model", None)
            tracker.log_metrics({**summary, "fit_seconds": fit_seconds})
            tracker.log_metrics(
                {
                    f"heldout/{r['target']}/{k}": r[k]
                    for r in metrics.to_dict("records")
                    for k in ("mae", "rmse", "r2", "nll", "nll_std", "coverage_90")
                }
            )
            tracker.log_table(metrics, "heldout_metrics.csv")
            if metric not in summary:
                raise ConfigError(
                    f"--metric {metric!r}: expected one of {', '.join(sorted(summary))}"
                )

            out.mkdir(parents=True, exist_ok=True)
            fitted.save(out)
            model_files = ("config.json", "tensors.pt", "estimators.joblib")
            meta: dict[str, Any] = {
                "format": "poreml-model-metadata",
                "format_version": 1,
                "model_name": "poreml-surrogate",
                "model": model,
                "version": f"{poreml.__version__}+{_files_sha256(out, model_files)[:12]}",
                "registered_version": None,
                "poreml_version": poreml.__version__,
                "targets": list(fitted.targets_),
                "feature_set": feature_set,
                "interval_level": 0.9,
                "domain_margin": float(fitted.domain_margin),
                "params": {k: _plain(v) for k, v in settings.items()},
                "design_columns": _trained_ranges(ds.X),
                "training": {
                    **{k: _plain(v) for k, v in ds.source.items()},
                    "description": _describe_source(ds),
                    "rows": len(ds.frame),
                    "observed_rows": {k: int(v) for k, v in fitted.n_observed_.items()},
                    "sha256": digest,
                },
                "metrics": {
                    "heldout": ds.heldout,
                    "heldout_sha256": heldout_key,
                    "interval": "latent mean (noise-free truth)"
                    if ds.heldout_X is not None
                    else "new measurement",
                    **{k: _plain(v) for k, v in summary.items()},
                    "per_target": {
                        r["target"]: {k: _plain(v) for k, v in r.items() if k != "target"}
                        for r in metrics.to_dict("records")
                    },
                },
                "fit_seconds": round(fit_seconds, 3),
                "tuning": None
                if tuned is None
                else {
                    "study": tuned.study_name,
                    "best_value": _plain(tuned.best_value),
                    "metric": tuned.metric,
                    "trials": tuned.n_trials,
                },
                "rebuild_command": _rebuild_command(
                    model,
                    data,
                    n,
                    scenario,
                    instance_seed,
                    seed,
                    tune,
                    n_trials,
                    feature_set,
                    param,
                    out,
                ),
            }
            result = None
            if register_model:
                from poreml.tracking.registry import register_surrogate

                reg_task = progress.add_task("registering in MLflow", total=1)
                result = register_surrogate(
                    cast("MlflowTracker", tracker),
                    out,
                    sample_designs(3, seed).drop(columns="candidate_id"),
                    targets=list(fitted.targets_),
                    metric=metric,
                    value=float(summary[metric]),
                    force=force_promote,
                )
                meta["registered_version"] = result.version
                progress.update(reg_task, completed=1)
            write_json(meta, out / METADATA_FILE)
            write_text(_model_card(meta, metrics), out / MODEL_CARD_FILE)
            tracker.log_artifact(out / METADATA_FILE)
            tracker.log_artifact(out / MODEL_CARD_FILE)

    elapsed = time.perf_counter() - started
    r2 = summary.get("mean_r2", math.nan)
    cov = summary.get("mean_coverage_90", math.nan)
    typer.echo(
        f"{out}: {model} trained on {len(ds.frame)} rows in {elapsed:.1f} s; held-out "
        f"{metric} = {summary[metric]:.4g}, mean R² = {r2:.3f}, mean 90 % coverage = {cov:.2f}"
    )
    if result is not None:
        verb = "promoted to @champion" if result.promoted else "not promoted"
        typer.echo(f"registered {result.name} v{result.version}: {verb} ({result.reason})")


def _plain(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _describe_source(ds: _Data) -> str:
    s = ds.source
    if s.get("data") == VIRTUAL_LAB:
        inst = (
            "published constants"
            if s.get("instance_seed") is None
            else f"instance {s['instance_seed']}"
        )
        return (
            f"virtual lab, scenario {s['scenario']} ({inst}): {s['n']} scrambled-Sobol designs "
            f"over the contract search box (seed {s['seed']}), measured with batch and "
            "measurement noise"
        )
    return f"CSV {s['data']} ({s.get('rows')} rows)"


def _heldout_key(ds: _Data, digest: str) -> str:
    """Identity of the held-out set: the test table's digest, or the CV data's digest."""
    import pandas as pd

    from poreml.tracking.base import dataset_digest

    if ds.heldout_X is not None and ds.heldout_y is not None:
        return dataset_digest(pd.concat([ds.heldout_X, ds.heldout_y], axis=1))
    return digest


def _rebuild_command(
    model: str,
    data: str,
    n: int,
    scenario: str,
    instance_seed: int | None,
    seed: int,
    tune: bool,
    n_trials: int,
    feature_set: str,
    param: list[str] | None,
    out: Path,
) -> str:
    parts = ["poreml train", f"--model {model}", f"--data {data}"]
    if data == VIRTUAL_LAB:
        parts.append(f"--n {n}")
        if scenario != "baseline":
            parts.append(f"--scenario {scenario}")
        if instance_seed is not None:
            parts.append(f"--instance-seed {instance_seed}")
    parts.append(f"--seed {seed}")
    if tune:
        parts.append(f"--tune --n-trials {n_trials}")
    if feature_set != "design":
        parts.append(f"--feature-set {feature_set}")
    parts += [f"--param {shlex.quote(p)}" for p in param or []]
    parts.append(f"--out {shlex.quote(out.as_posix())}")
    return " ".join(parts)


# --------------------------------------------------------------------------------------------
# evaluate


def evaluate(
    model: str = typer.Option("gp", "--model", "-m", help="Surrogate name (registry)."),
    param: list[str] | None = typer.Option(
        None, "--param", "-p", help="Model setting KEY=VALUE (repeatable; JSON values)."
    ),
    feature_set: str = typer.Option("design", "--feature-set", help="design or descriptors."),
    real: Path | None = typer.Option(
        Path("datasets/porous_sic.csv"),
        "--real",
        help="Curated real-data CSV for grouped CV (by reference).",
    ),
    skip_real: bool = typer.Option(False, "--no-real", help="Skip the real-data evaluation."),
    learning_curves: bool = typer.Option(
        True, "--learning-curves/--no-learning-curves", help="Virtual-lab learning curves."
    ),
    sizes: str = typer.Option(
        "16,32,64,128,256,512,1024", "--sizes", help="Learning-curve training sizes."
    ),
    instance_seeds: str = typer.Option(
        "1,2,3", "--instance-seeds", help="Randomised tasks besides baseline ('' for none)."
    ),
    n_test: int = typer.Option(1000, "--n-test", min=10, help="Virtual-lab test designs."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of folds and training data."),
    out: Path = typer.Option(Path("experiments/results"), "--out", "-o", help="Output folder."),
    track: bool = typer.Option(True, "--track/--no-track", help="Log the run to MLflow."),
) -> None:
    """Evaluate a surrogate: real-data grouped CV vs baselines, virtual-lab learning curves."""
    from poreml.surrogates import evaluation as ev

    settings = _model_params(model, _parse_params(param), feature_set)
    if skip_real:
        real = None
    if real is None and not learning_curves:
        raise ConfigError("nothing to evaluate: give --real FILE.csv or --learning-curves")
    size_list = _int_list(sizes, "--sizes")
    tasks = [ev.Task("baseline", None)] + [
        ev.Task("baseline", s) for s in _int_list(instance_seeds, "--instance-seeds")
    ]
    tracker = _tracker(track)
    tables: dict[str, pd.DataFrame] = {}
    figures: dict[str, Any] = {}
    with _progress() as progress, _tracking_errors(tracker), tracker.start_run(f"evaluate-{model}"):
        tracker.log_params({"model": model, "feature_set": feature_set, "cli": "evaluate"})
        tracker.log_params({f"param.{k}": v for k, v in settings.items()})
        if real is not None:
            from poreml.data.io import read_csv
            from poreml.data.validation import validate_table

            frame = validate_table(read_csv(real), source=str(real))
            tracker.log_dataset(frame, name=real.name, context="evaluation")
            names = [model, *[b for b in ev.BASELINES if b != model]]
            bars = {m: progress.add_task(f"grouped CV {m}", total=5) for m in names}
            result = ev.evaluate_real(
                frame,
                model,
                {k: v for k, v in settings.items() if k != "feature_set"},
                feature_set=feature_set,
                seed=seed,
                tracker=tracker,
                on_step=lambda m, done, total: progress.update(
                    bars[m], completed=done, total=total
                ),
            )
            tables["real_metrics"] = result.metrics
            tables["real_calibration"] = result.calibration
            figures["parity"] = ev.parity_figure(result.predictions, model)
            figures["calibration"] = ev.calibration_figure(result.calibration)
            if result.skipped:
                typer.echo(
                    "real data: skipped "
                    + "; ".join(f"{t} ({why})" for t, why in result.skipped.items())
                )
        if learning_curves:
            bar = progress.add_task("learning curves", total=len(size_list) * len(tasks))
            curves = ev.learning_curves(
                model,
                {k: v for k, v in settings.items() if k != "feature_set"},
                sizes=size_list,
                tasks=tasks,
                n_test=n_test,
                seed=seed,
                feature_set=feature_set,
                tracker=tracker,
                on_step=lambda task, n: progress.advance(bar),
            )
            tables["learning_curves"] = curves
            figures["learning_curves"] = ev.learning_curve_figure(curves)
        written = ev.write_evaluation(out, tables=tables, figures=figures)
        for name, fig in figures.items():
            tracker.log_figure(fig, f"{name}.png")
        for name, table in tables.items():
            tracker.log_table(table, f"{name}.md")
    if "real_metrics" in tables:
        cols = ["model", "target", "n", "mae", "r2", "coverage_90", "mae_skill"]
        typer.echo(tables["real_metrics"][cols].to_string(index=False, float_format="%.3g"))
    typer.echo(f"wrote {len(written)} files under {out}")


def _int_list(text: str, option: str) -> list[int]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    try:
        return [int(s) for s in items]
    except ValueError:
        raise ConfigError(f"{option}: expected comma-separated integers (got {text!r})") from None


# --------------------------------------------------------------------------------------------
# predict


def _load_model(model_dir: Path | None, model_uri: str | None) -> tuple[Surrogate, str]:
    """The surrogate to predict with, and a label saying where it came from."""
    from poreml.settings import get_settings
    from poreml.surrogates.registry import load

    if model_dir is not None and model_uri is not None:
        raise ConfigError("give either --model-dir or --model-uri, not both")
    if model_uri is None and model_dir is None:
        settings = get_settings()
        model_uri = settings.model_uri
        model_dir = None if model_uri else settings.model_dir
    if model_uri is not None:
        from poreml.tracking.registry import load_surrogate_from_uri

        return load_surrogate_from_uri(model_uri), model_uri
    assert model_dir is not None
    if not (model_dir / "config.json").is_file():
        raise ModelCliError(
            f"{model_dir}: no saved surrogate here (config.json missing). Train one with "
            f"`{CHAMPION_COMMAND}` or point --model-dir at a model folder."
        )
    return load(model_dir), str(model_dir)


def predict(
    infile: Path = typer.Argument(..., help="CSV of designs (design columns, candidate_id)."),
    out: Path = typer.Option(..., "--out", "-o", help="CSV file to write predictions to."),
    model_dir: Path | None = typer.Option(
        None, "--model-dir", help="Saved model folder (default: POREML_MODEL_DIR, models/champion)."
    ),
    model_uri: str | None = typer.Option(
        None, "--model-uri", help="MLflow model URI, e.g. models:/poreml-surrogate@champion."
    ),
    level: float = typer.Option(0.9, "--level", min=0.01, max=0.99, help="Interval level."),
) -> None:
    """Predict every target with its interval and the domain flag for the designs in IN.csv.

    Writes candidate_id, the design columns (left-out ones at their defaults), and per target
    <target>_mean, _std, _lower, _upper, then in_domain.
    """
    import pandas as pd

    from poreml.data.io import read_csv, write_csv
    from poreml.data.schema import COLUMNS, DESIGN_COLUMNS
    from poreml.data.validation import validate_designs, validate_table
    from poreml.surrogates.evaluation import prediction_table

    frame = read_csv(infile)
    # Other contract columns (e.g. measured values of a lab file) are accepted and ignored,
    # except descriptor inputs of a model trained on the descriptors feature set.
    others = [c for c in COLUMNS if c not in DESIGN_COLUMNS]
    designs = validate_designs(
        frame, source=str(infile), physical=True, fill_defaults=True, allow_columns=others
    )
    if "candidate_id" not in designs.columns:
        designs.insert(0, "candidate_id", [f"P-{i:04d}" for i in range(1, len(designs) + 1)])
    model, where = _load_model(model_dir, model_uri)
    descriptors = [
        c for c in model.feature_columns_ if c not in DESIGN_COLUMNS and c in designs.columns
    ]
    X = designs[["candidate_id", *DESIGN_COLUMNS]]
    if descriptors:
        checked = validate_table(designs[descriptors], source=str(infile))
        X = pd.concat([X, checked], axis=1)
    table = prediction_table(model, X, level=level)
    result = pd.concat(
        [
            designs[["candidate_id", *DESIGN_COLUMNS, *descriptors]],
            table.drop(columns="candidate_id"),
        ],
        axis=1,
    )
    write_csv(result, out)
    outside = int((~result["in_domain"]).sum())
    typer.echo(
        f"{out}: {len(result)} predictions from {where} ({outside} outside the training domain)"
    )


# --------------------------------------------------------------------------------------------
# ui


def ui(
    port: int = typer.Option(5000, "--port", min=1, max=65535, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface (keep it local)."),
) -> None:
    """Run the MLflow UI on the configured tracking store (POREML_TRACKING_URI)."""
    import subprocess
    import sys

    from poreml.settings import get_settings
    from poreml.tracking.mlflow_tracker import ensure_local_store

    settings = get_settings()
    uri = settings.resolved_tracking_uri
    ensure_local_store(uri)
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        host,
        "--port",
        str(port),
    ]
    typer.echo(f"MLflow UI on http://{host}:{port} (store {uri}); Ctrl-C to stop")
    try:
        code = subprocess.call(cmd)
    except KeyboardInterrupt:
        return
    if code not in (0, 130, -2):
        raise ModelCliError(
            f"`mlflow ui` exited with code {code}; is port {port} free? Try --port {port + 1}."
        )


def register(app: typer.Typer) -> None:
    """Add ``train``, ``evaluate``, ``predict`` and ``ui`` to ``app`` as top-level commands."""
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("predict")(predict)
    app.command("ui")(ui)
