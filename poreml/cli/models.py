"""``poreml train | evaluate | predict``: surrogate models on the command line.

* ``train``: fit a surrogate on virtual-lab data, a CSV file or a campaign's own observations
  (optionally tuned with Optuna), score it on held-out data, save the model folder (with
  ``metadata.json`` and ``MODEL_CARD.md``), log the run to MLflow and register / promote it;
* ``evaluate``: grouped CV on real data against the ``mean`` and ``ridge`` baselines and
  virtual-lab learning curves; tables (CSV + markdown) and plots, logged to MLflow;
* ``predict``: predictions with 90 % intervals and the domain flag for a CSV of designs.

Wire them with :func:`register` (top-level commands). Bad input raises
:class:`~poreml.exceptions.PoremlError` subclasses; ``poreml.cli.main`` turns them into exit
code 2. Heavy imports happen inside the commands so ``poreml --help`` stays fast.

The shipped champion is rebuilt with::

    poreml train --model cascade --data virtual-lab --n 256 --seed 0 --out models/champion

Learning from a campaign (``--data campaign:DIR``, or ``campaign:NAME`` with ``--storage URL``).
The rows are the campaign's observations with at least one measured target; failed syntheses
(``feasible = false``) count as the campaign counts them (its ``use_failed_measurements``
setting: by default their measurements train the outcome models). The held-out set is the
newest proposal rounds, taken newest first until they hold at least
:data:`CAMPAIGN_HOLDOUT_FRACTION` of the rows: the model is judged on the batch that came after
what it learned from, as it will be used. The split follows from the campaign's rounds alone
(no random draw), so the same campaign state always gives the same split. The model is fitted
on the other rows only, so its held-out score is that of the registered model. ``@champion``
moves only when the new version beats the current champion re-scored on the same held-out
rows. The metadata records the training rows' count and the sha256 of their canonical CSV
(``candidate_id``, design columns, measured columns, ``feasible``, in the campaign's order).
"""

from __future__ import annotations

import json
import math
import shlex
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import typer

from poreml.exceptions import ConfigError, PoremlError

if TYPE_CHECKING:
    import pandas as pd
    from rich.progress import Progress

    from poreml.optimize.campaign import Campaign
    from poreml.surrogates.base import Surrogate
    from poreml.tracker import Tracker
    from poreml.tracking.artifacts import ModelArtifact, ModelMetadata
    from poreml.tracking.mlflow_tracker import MlflowTracker
    from poreml.tracking.registry import RegistrationResult

VIRTUAL_LAB = "virtual-lab"
"""``--data`` value selecting virtual-lab training data (recorded as ``training.data``, the
value :data:`poreml.tracking.artifacts.VIRTUAL_LAB` names)."""

CAMPAIGN_PREFIX = "campaign:"
"""``--data`` prefix selecting a campaign's observations (``campaign:DIR`` or, with
``--storage``, ``campaign:NAME``)."""

CAMPAIGN_HOLDOUT_FRACTION = 0.2
"""Least share of a campaign's usable rows held out (newest rounds first, whole rounds)."""

MIN_CAMPAIGN_TRAIN_ROWS = 4
"""Fewest campaign rows left to train on after the held-out rounds."""

MIN_CAMPAIGN_HELDOUT_ROWS = 2
"""Fewest held-out rows (the standardised NLL needs a spread of at least two values)."""

HELDOUT_SEED = 10_000
"""Seed of the virtual-lab held-out designs (fixed, so held-out scores are comparable)."""


class ModelCliError(PoremlError, RuntimeError):
    """A model command cannot run (unreachable tracking store, ``mlflow ui`` failed, ...)."""


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
    from poreml.tracker import NullTracker

    if not track:
        return NullTracker()
    from poreml.tracking.mlflow_tracker import SURROGATE_EXPERIMENT, MlflowTracker

    return MlflowTracker(experiment or SURROGATE_EXPERIMENT)


@contextmanager
def _store_errors(store: str, fix: str, libraries: tuple[str, ...]) -> Iterator[None]:
    """Turn errors raised by ``libraries`` while talking to ``store`` into a
    :class:`ModelCliError` naming the store and the fix."""
    try:
        yield
    except PoremlError:
        raise
    except Exception as err:
        if type(err).__module__.split(".")[0] not in libraries:
            raise
        raise ModelCliError(f"{store}: {err}. {fix}") from None


def _tracking_errors(tracker: Tracker) -> AbstractContextManager[None]:
    """MLflow store errors as a :class:`ModelCliError` with a fix."""
    return _store_errors(
        f"MLflow tracking store {getattr(tracker, 'tracking_uri', '?')}",
        "Check POREML_TRACKING_URI (or run with --no-track).",
        ("mlflow", "sqlalchemy"),
    )


def _tuning_storage_errors() -> AbstractContextManager[None]:
    """Optuna storage errors as a :class:`ModelCliError` naming POREML_OPTUNA_STORAGE (inside a
    training run they would otherwise read as MLflow tracking-store errors)."""
    from poreml.optimize.sql_store import safe_url
    from poreml.settings import get_settings

    return _store_errors(
        f"Optuna storage {safe_url(get_settings().resolved_optuna_storage)}",
        "Check POREML_OPTUNA_STORAGE (the database must exist and be reachable).",
        ("optuna", "sqlalchemy", "psycopg"),
    )


EXPLAINED_DESIGNS = 8
"""Designs whose exact Shapley values make a training run's global importance table."""


def _log_explanations(tracker: Tracker, model: Surrogate, seed: int, progress: Progress) -> None:
    """Log the global importance table and partial-dependence plots of ``model`` (designs
    drawn inside its trained ranges)."""
    from poreml.surrogates.explain import log_explanations, trained_space

    task = progress.add_task("explaining (importance, partial dependence)", total=1)
    log_explanations(tracker, model, trained_space(model).sample(EXPLAINED_DESIGNS, seed))
    progress.update(task, completed=1)


@dataclass(frozen=True)
class _TrainOptions:
    """The ``train`` options that decide the model (and so its rebuild command)."""

    model: str
    data: str
    n: int
    scenario: str
    instance_seed: int | None
    seed: int
    tune: bool
    n_trials: int
    study: str | None
    feature_set: str
    param: tuple[str, ...]
    out: Path
    n_test: int
    storage: str | None = None
    tune_seed: int | None = None

    @property
    def campaign(self) -> str | None:
        """The campaign folder or name of ``--data campaign:…``, else None."""
        if not self.data.startswith(CAMPAIGN_PREFIX):
            return None
        return self.data.removeprefix(CAMPAIGN_PREFIX)

    def rebuild_command(self) -> str:
        """The ``poreml train`` command line that rebuilds the model folder."""
        parts = ["poreml train", f"--model {self.model}", f"--data {shlex.quote(self.data)}"]
        if self.campaign is not None and self.storage:
            from poreml.optimize.sql_store import safe_url

            parts.append(f"--storage {shlex.quote(safe_url(self.storage))}")
        if self.data == VIRTUAL_LAB:
            parts.append(f"--n {self.n}")
            if self.scenario != "baseline":
                parts.append(f"--scenario {self.scenario}")
            if self.instance_seed is not None:
                parts.append(f"--instance-seed {self.instance_seed}")
        parts.append(f"--seed {self.seed}")
        if self.tune:
            parts.append(f"--tune --n-trials {self.n_trials}")
            if self.tune_seed is not None:
                parts.append(f"--tune-seed {self.tune_seed}")
        if self.feature_set != "design":
            parts.append(f"--feature-set {self.feature_set}")
        parts += [f"--param {shlex.quote(p)}" for p in self.param]
        parts.append(f"--out {shlex.quote(self.out.as_posix())}")
        return " ".join(parts)


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
    heldout_frame: pd.DataFrame | None = None
    """Held-out rows with every column (scoring another model that needs other inputs)."""
    heldout_noisy: bool = False
    """Whether held-out targets are measurements (intervals then cover a new measurement)."""
    about: str | None = None
    """The source in words, when :attr:`description` cannot derive it."""

    @property
    def description(self) -> str:
        """The source in words (model card and metadata)."""
        s = self.source
        if self.about is not None:
            return self.about
        if s.get("data") != VIRTUAL_LAB:
            return f"CSV {s['data']} ({s.get('rows')} rows)"
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


@dataclass
class _Fit:
    """A fitted surrogate and how it was obtained."""

    model: Surrogate
    settings: dict[str, Any]
    seconds: float
    tuning: Any = None  # poreml.surrogates.tuning's result, when tuned


@dataclass
class _Scores:
    """Held-out scores: per target and their means over targets."""

    per_target: pd.DataFrame
    summary: dict[str, Any]
    heldout_sha256: str


def _load_training_data(opts: _TrainOptions) -> _Data:
    import numpy as np

    from poreml.design.search_space import SearchSpace
    from poreml.surrogates.base import TARGETS
    from poreml.surrogates.evaluation import virtual_lab_data
    from poreml.surrogates.features import FEATURE_SETS
    from poreml.surrogates.splits import random_groups, real_data_groups

    if opts.feature_set not in FEATURE_SETS:
        raise ConfigError(
            f"--feature-set: expected one of {', '.join(FEATURE_SETS)} (got {opts.feature_set!r})"
        )
    inputs = list(FEATURE_SETS[opts.feature_set])
    targets = [t for t in TARGETS if t not in inputs]
    if opts.campaign is not None:
        return _campaign_data(opts, inputs, targets)
    if opts.data == VIRTUAL_LAB:
        from poreml.virtual_lab import VirtualLab

        scenario, instance_seed, n_test = opts.scenario, opts.instance_seed, opts.n_test
        frame = virtual_lab_data(
            opts.n, scenario=scenario, instance_seed=instance_seed, seed=opts.seed, noise=True
        )
        heldout = SearchSpace.contract_box().sample(n_test, HELDOUT_SEED)
        test = VirtualLab(scenario, instance_seed).evaluate(heldout)
        return _Data(
            frame=frame,
            X=frame[inputs],
            y=frame[targets],
            groups=random_groups(len(frame), 10, opts.seed),
            source={
                "data": VIRTUAL_LAB,
                "scenario": scenario,
                "instance_seed": instance_seed,
                "n": opts.n,
                "seed": opts.seed,
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

    path = Path(opts.data)
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
        heldout=f"grouped 5-fold CV of {path.name} (groups = material, else reference)",
        extra={"n_groups": len(np.unique(real_data_groups(frame)))},
    )


def open_campaign(location: str, storage: str | None = None) -> Campaign:
    """Open a campaign to read it: the folder ``location``, or the campaign named ``location``
    in the database ``storage`` (an SQLAlchemy URL).

    Raises:
        CampaignError: no campaign there, or an unreadable state.
        ConfigError: an empty location, or a database this poreml cannot open.
    """
    from poreml.optimize.campaign import Campaign

    if not location.strip():
        raise ConfigError(
            f"--data {CAMPAIGN_PREFIX}: expected a campaign after the colon, e.g. "
            f"--data {CAMPAIGN_PREFIX}campaigns/demo (a folder made by `poreml campaign init`)"
        )
    if not storage:
        return Campaign.load(Path(location))
    from poreml.optimize.sql_store import SqlStore

    return Campaign.load(SqlStore(storage, location))


def campaign_holdout(observations: pd.DataFrame, fraction: float) -> pd.Series:
    """The held-out rows of a campaign: its newest proposal rounds, taken newest first until
    they hold at least ``fraction`` of the rows (at least one round; outside data, which has no
    round, always trains).

    Args:
        observations: campaign observations with a ``round`` column (<NA> for outside data).
        fraction: least share of rows to hold out, in (0, 1).

    Returns:
        Boolean mask aligned with ``observations``.
    """
    import pandas as pd

    rounds = observations["round"]
    held = pd.Series(False, index=observations.index)
    need = fraction * len(observations)
    for k in sorted(rounds.dropna().unique(), reverse=True):
        held |= (rounds == k).fillna(False).astype(bool)
        if held.sum() >= need:
            break
    return held


def _campaign_data(opts: _TrainOptions, inputs: list[str], targets: list[str]) -> _Data:
    """A campaign's usable observations, split into training rows and the newest rounds."""
    from poreml.data.schema import DESIGN_COLUMNS
    from poreml.optimize.sql_store import safe_url
    from poreml.optimize.state import RESULT_COLUMNS
    from poreml.surrogates.splits import random_groups

    location = str(opts.campaign)
    campaign = open_campaign(location, opts.storage)
    where = f"campaign {location}" + (f" in {safe_url(opts.storage)}" if opts.storage else "")
    obs = campaign.observations
    use_failed = bool(campaign.settings.use_failed_measurements)
    made = obs["feasible"].map(lambda v: v is not False).astype(bool)
    usable = obs.loc[(made | use_failed) & obs[targets].notna().any(axis=1)]
    held = campaign_holdout(usable, CAMPAIGN_HOLDOUT_FRACTION)
    train, test = usable.loc[~held], usable.loc[held]
    if len(train) < MIN_CAMPAIGN_TRAIN_ROWS or len(test) < MIN_CAMPAIGN_HELDOUT_ROWS:
        raise ConfigError(
            f"{where}: {len(usable)} observations with a measured target "
            f"({len(obs)} in all) in {usable['round'].nunique()} rounds; training holds out the "
            f"newest round(s) (at least {CAMPAIGN_HOLDOUT_FRACTION:.0%} of the rows, at least "
            f"{MIN_CAMPAIGN_HELDOUT_ROWS}) and needs at least {MIN_CAMPAIGN_TRAIN_ROWS} rows "
            f"besides (got {len(train)} to train on, {len(test)} held out). Fix: measure more "
            "rounds (`poreml campaign suggest` / `observe`, or `poreml campaign run`)"
        )
    columns = ["candidate_id", *DESIGN_COLUMNS, *RESULT_COLUMNS]
    frame = train[columns].reset_index(drop=True)
    test = test.reset_index(drop=True)
    held_rounds = sorted(int(k) for k in test["round"].dropna().unique())
    failed = int((~made.loc[train.index]).sum())
    outside = int(train["round"].isna().sum())
    learned = f"{len(frame)} observations of the rounds before {held_rounds[0]}" + (
        f" ({outside} of them outside data)" if outside else ""
    )
    return _Data(
        frame=frame,
        X=frame[inputs],
        y=frame[targets].astype("float64"),
        groups=random_groups(len(frame), min(10, len(frame)), opts.seed),
        source={
            "data": CAMPAIGN_PREFIX + location,
            "campaign": campaign.config.name,
            **({"storage": safe_url(opts.storage)} if opts.storage else {}),
            "rows": len(frame),
            "heldout_rounds": held_rounds,
            "use_failed_measurements": use_failed,
        },
        heldout=(
            f"{where}: the newest round(s) {', '.join(map(str, held_rounds))} "
            f"({len(test)} rows), measured"
        ),
        heldout_X=test[inputs],
        heldout_y=test[targets].astype("float64"),
        heldout_frame=test,
        heldout_noisy=True,
        about=(
            f"campaign {campaign.config.name!r} ({where}): {learned}; {failed} failed "
            f"syntheses among them (the campaign trains its outcome models on "
            f"{'every measurement' if use_failed else 'successful syntheses only'})"
        ),
    )


def _champion_score(
    tracker: MlflowTracker, version: str, ds: _Data, targets: list[str], metric: str
) -> float | None:
    """``metric`` of registered version ``version`` on the held-out rows of ``ds`` and the
    new model's ``targets``; None when it does not predict all of them (not comparable)."""
    from poreml.surrogates.evaluation import heldout_metrics
    from poreml.surrogates.metrics import summarise
    from poreml.tracking.artifacts import REGISTERED_MODEL, load_uri

    if ds.heldout_frame is None or ds.heldout_y is None:
        return None
    champion = load_uri(f"models:/{REGISTERED_MODEL}/{version}", tracker.tracking_uri).surrogate
    missing = [c for c in champion.feature_columns_ if c not in ds.heldout_frame.columns]
    if not set(targets) <= set(champion.targets_) or missing:
        return None
    metrics, _ = heldout_metrics(
        champion,
        ds.heldout_frame[list(champion.feature_columns_)],
        ds.heldout_y[targets],
        observation_noise=ds.heldout_noisy,
    )
    summary = summarise(metrics.assign(model="champion")).iloc[0].to_dict()
    value = summary.get(metric)
    return None if value is None else float(value)


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
    from poreml.surrogates.evaluation import cross_val_predict_grouped, heldout_metrics
    from poreml.surrogates.metrics import metrics_table
    from poreml.surrogates.registry import make

    if data.heldout_X is not None and data.heldout_y is not None:
        metrics, _ = heldout_metrics(
            fitted, data.heldout_X, data.heldout_y, observation_noise=data.heldout_noisy
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


def _heldout_key(ds: _Data, digest: str) -> str:
    """Identity of the held-out set: the test table's digest, or the CV data's digest."""
    import pandas as pd

    from poreml.tracker import dataset_digest

    if ds.heldout_X is not None and ds.heldout_y is not None:
        return dataset_digest(pd.concat([ds.heldout_X, ds.heldout_y], axis=1))
    return digest


# --------------------------------------------------------------------------------------------
# train


def train(
    model: str = typer.Option("gp", "--model", "-m", help="Surrogate name (registry)."),
    data: str = typer.Option(
        VIRTUAL_LAB,
        "--data",
        help="'virtual-lab', a CSV file of measured rows, or campaign:DIR (campaign:NAME "
        "with --storage): a campaign's observations, its newest rounds held out.",
    ),
    storage: str | None = typer.Option(
        None,
        "--storage",
        envvar="POREML_CAMPAIGN_STORAGE",
        help="Database of campaign:NAME (SQLAlchemy URL); unset = campaign:DIR is a folder.",
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
    tune_seed: int | None = typer.Option(
        None,
        "--tune-seed",
        min=0,
        help="Seed of this worker's Optuna sampler (default: --seed). Workers sharing one "
        "--study keep the same --seed and each take their own --tune-seed.",
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
    from poreml.tracking.artifacts import METADATA_FILE, MODEL_CARD_FILE, ModelArtifact

    if register_model and not track:
        raise ConfigError("--register needs tracking: drop --no-track or add --no-register")
    opts = _TrainOptions(
        model=model,
        data=data,
        n=n,
        scenario=scenario,
        instance_seed=instance_seed,
        seed=seed,
        tune=tune,
        n_trials=n_trials,
        study=study,
        feature_set=feature_set,
        param=tuple(param or ()),
        out=out,
        n_test=n_test,
        storage=storage or None,
        tune_seed=tune_seed,
    )
    settings = _train_settings(opts)
    tracker = _tracker(track)
    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task("data", total=1)
        ds = _load_training_data(opts)
        progress.update(task, completed=1)
        with _tracking_errors(tracker), tracker.start_run(f"train-{model}"):
            digest = _log_training_data(tracker, opts, ds)
            fit = _tune_and_fit(opts, settings, ds, tracker, progress)
            scores = _score(opts, fit, ds, digest, metric, tracker, progress)
            if track:
                _log_explanations(tracker, fit.model, opts.seed, progress)
            meta = _metadata(opts, ds, fit, scores, digest)
            artifact = ModelArtifact(fit.model, meta).save(out)
            result = None
            if register_model:
                result = _register(
                    tracker, artifact, opts, ds, metric, scores, force_promote, progress
                )
            tracker.log_artifact(out / METADATA_FILE)
            tracker.log_artifact(out / MODEL_CARD_FILE)
    summary = scores.summary
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


def _train_settings(opts: _TrainOptions) -> dict[str, Any]:
    """The model's settings from ``--param``, ``--feature-set`` and ``--seed``; unknown
    settings fail here, before any work."""
    from poreml.surrogates.registry import make

    settings = _model_params(opts.model, _parse_params(list(opts.param)), opts.feature_set)
    settings.setdefault("random_state", opts.seed)
    make(opts.model, **settings)
    return settings


def _log_training_data(tracker: Tracker, opts: _TrainOptions, ds: _Data) -> str:
    """Log the source, the training table and the held-out set's identity; return the
    training table's digest."""
    from poreml.tracker import dataset_digest

    digest = dataset_digest(ds.frame)
    tracker.log_params(
        {"model": opts.model, "feature_set": opts.feature_set, "cli": "train", **ds.source}
    )
    tracker.log_dataset(ds.frame, name=str(ds.source["data"]))
    tracker.set_tags(
        {"poreml.heldout_sha256": _heldout_key(ds, digest), "poreml.heldout": ds.heldout}
    )
    return digest


def _tune_and_fit(
    opts: _TrainOptions,
    settings: dict[str, Any],
    ds: _Data,
    tracker: Tracker,
    progress: Progress,
) -> _Fit:
    """Tune the settings with Optuna (``--tune``), then fit the model on every training row."""
    from poreml.surrogates.registry import make

    tuned = None
    if opts.tune:
        import optuna

        from poreml.surrogates.tuning import tune as run_tuning

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        task = progress.add_task(f"tuning {opts.model}", total=opts.n_trials)
        with _tuning_storage_errors():
            tuned = run_tuning(
                opts.model,
                ds.X,
                ds.y,
                ds.groups,
                n_trials=opts.n_trials,
                fixed_params=settings,
                study_name=opts.study,
                seed=opts.seed,
                sampler_seed=opts.tune_seed,
                tracker=tracker,
                on_trial=lambda done, total: progress.update(task, completed=done),
            )
        settings = {**settings, **tuned.best_params}
    tracker.log_params({f"param.{k}": v for k, v in settings.items()})
    task = progress.add_task(f"fitting {opts.model} on {len(ds.X)} rows", total=1)
    t0 = time.perf_counter()
    fitted = make(opts.model, **settings).fit(ds.X, ds.y)
    seconds = time.perf_counter() - t0
    progress.update(task, completed=1)
    return _Fit(fitted, settings, seconds, tuned)


def _score(
    opts: _TrainOptions,
    fit: _Fit,
    ds: _Data,
    digest: str,
    metric: str,
    tracker: Tracker,
    progress: Progress,
) -> _Scores:
    """Held-out scores of the fitted model, logged; ``metric`` must be one of them."""
    from poreml.surrogates.metrics import summarise

    metrics = _heldout_scores(
        opts.model, fit.settings, fit.model, ds, seed=opts.seed, progress=progress
    )
    summary = summarise(metrics.assign(model=opts.model)).iloc[0].to_dict()
    summary.pop("model", None)
    tracker.log_metrics({**summary, "fit_seconds": fit.seconds})
    tracker.log_metrics(
        {
            f"heldout/{r['target']}/{k}": r[k]
            for r in metrics.to_dict("records")
            for k in ("mae", "rmse", "r2", "nll", "nll_std", "coverage_90")
        }
    )
    tracker.log_table(metrics, "heldout_metrics.csv")
    if metric not in summary:
        raise ConfigError(f"--metric {metric!r}: expected one of {', '.join(sorted(summary))}")
    return _Scores(metrics, summary, _heldout_key(ds, digest))


def _metadata(
    opts: _TrainOptions, ds: _Data, fit: _Fit, scores: _Scores, digest: str
) -> ModelMetadata:
    """What ``metadata.json`` records of a trained model (``version`` is set on saving)."""
    import poreml
    from poreml.tracking.artifacts import ModelMetadata, TrainingRecord, trained_ranges

    tuned = fit.tuning
    return ModelMetadata(
        model=opts.model,
        poreml_version=poreml.__version__,
        targets=tuple(fit.model.targets_),
        feature_set=opts.feature_set,
        interval_level=0.9,
        domain_margin=float(fit.model.domain_margin),
        params={k: _plain(v) for k, v in fit.settings.items()},
        design_columns=trained_ranges(ds.X),
        training=TrainingRecord(
            source={k: _plain(v) for k, v in ds.source.items()},
            description=ds.description,
            rows=len(ds.frame),
            observed_rows={k: int(v) for k, v in fit.model.n_observed_.items()},
            sha256=digest,
        ),
        metrics={
            "heldout": ds.heldout,
            "heldout_sha256": scores.heldout_sha256,
            "interval": "latent mean (noise-free truth)"
            if ds.heldout_X is not None and not ds.heldout_noisy
            else "new measurement",
            **{k: _plain(v) for k, v in scores.summary.items()},
            "per_target": {
                r["target"]: {k: _plain(v) for k, v in r.items() if k != "target"}
                for r in scores.per_target.to_dict("records")
            },
        },
        fit_seconds=round(fit.seconds, 3),
        tuning=None
        if tuned is None
        else {
            "study": tuned.study_name,
            "best_value": _plain(tuned.best_value),
            "metric": tuned.metric,
            "trials": tuned.n_trials,
        },
        rebuild_command=opts.rebuild_command(),
    )


def _register(
    tracker: Tracker,
    artifact: ModelArtifact,
    opts: _TrainOptions,
    ds: _Data,
    metric: str,
    scores: _Scores,
    force: bool,
    progress: Progress,
) -> RegistrationResult:
    """Log and register the saved model folder (promoting it if better), then record the
    registered version in its metadata."""
    from poreml.design.search_space import SearchSpace
    from poreml.tracking.artifacts import write_metadata
    from poreml.tracking.registry import register_surrogate

    task = progress.add_task("registering in MLflow", total=1)
    mlflow_tracker = cast("MlflowTracker", tracker)
    targets = list(artifact.metadata.targets)
    rescore = None
    if opts.campaign is not None:

        def rescore(version: str) -> float | None:
            return _champion_score(mlflow_tracker, version, ds, targets, metric)

    result = register_surrogate(
        mlflow_tracker,
        opts.out,
        SearchSpace.contract_box().sample(3, opts.seed),
        targets=targets,
        metric=metric,
        value=float(scores.summary[metric]),
        force=force,
        score_champion=rescore,
    )
    write_metadata(replace(artifact.metadata, registered_version=result.version), opts.out)
    progress.update(task, completed=1)
    return result


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready Python: numpy scalars unwrapped, non-finite floats as None."""
    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


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
    from poreml.surrogates.figures import (
        calibration_figure,
        learning_curve_figure,
        parity_figure,
    )
    from poreml.surrogates.report import write_evaluation

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
            figures["parity"] = parity_figure(result.predictions, model)
            figures["calibration"] = calibration_figure(result.calibration)
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
            figures["learning_curves"] = learning_curve_figure(curves)
        written = write_evaluation(out, tables=tables, figures=figures)
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


def predict(
    infile: Path = typer.Argument(
        ..., help="CSV of designs (design columns, candidate_id; measured columns optional)."
    ),
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

    Measured columns in IN.csv (e.g. ssa_m2_g, tap_density_g_cm3 of a powder already made;
    blank = not measured) are range-checked; a model that can condition on them does.
    Writes candidate_id, the design columns (left-out ones at their defaults), the measured
    columns given, per target <target>_mean, _std, _lower, _upper, then conditioned_on (the
    measured columns the model used, ';'-joined), domain_distance and in_domain.
    """
    from poreml.data.io import read_csv, write_csv
    from poreml.data.schema import COLUMNS, DESIGN_COLUMNS

    frame = read_csv(infile)
    if "candidate_id" not in frame.columns:
        frame.insert(0, "candidate_id", [f"P-{i:04d}" for i in range(1, len(frame) + 1)])
    artifact = _load_artifact(model_dir, model_uri)
    # Other contract columns (e.g. feasible, provenance of a lab file) are accepted and
    # ignored; measured columns are range-checked and passed to the model (CONTRACT.md §4.1).
    result = artifact.predict_table(
        frame,
        level=level,
        source=str(infile),
        ignore_columns=[c for c in COLUMNS if c not in DESIGN_COLUMNS],
        include_inputs=True,
    )
    write_csv(result, out)
    outside = int((~result["in_domain"]).sum())
    typer.echo(
        f"{out}: {len(result)} predictions from {artifact.source} "
        f"({outside} outside the training domain)"
    )


def _load_artifact(model_dir: Path | None, model_uri: str | None) -> ModelArtifact:
    """The model to predict with: the option given, else the settings' URI, else folder."""
    from poreml.settings import get_settings
    from poreml.tracking.artifacts import load_folder, load_uri

    if model_dir is not None and model_uri is not None:
        raise ConfigError("give either --model-dir or --model-uri, not both")
    if model_dir is None and model_uri is None:
        settings = get_settings()
        model_uri, model_dir = settings.model_uri, settings.model_dir
    return load_uri(model_uri) if model_uri else load_folder(model_dir)


def register(app: typer.Typer) -> None:
    """Add ``train``, ``evaluate``, ``predict`` to ``app`` as top-level commands."""
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("predict")(predict)
