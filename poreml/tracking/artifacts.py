"""The model artifact: a fitted surrogate with its metadata, saved as a folder or logged to MLflow.

* :class:`ModelMetadata` (and its :class:`TrainingRecord`): what ``metadata.json`` holds, with a
  JSON round trip;
* :class:`ModelArtifact`: surrogate + metadata; :meth:`~ModelArtifact.save` writes the model
  folder (surrogate files, :data:`METADATA_FILE`, :data:`MODEL_CARD_FILE`), :func:`load` reads a
  folder or an MLflow model URI, :meth:`~ModelArtifact.predict_table` validates designs then
  predicts;
* :func:`model_card`, :func:`trained_ranges`: the parts of the metadata that are derived.

The CLI, the API and the MLflow pyfunc all load and predict through this module. mlflow is
imported only to resolve ``models:/`` and ``runs:/`` URIs, so loading a folder never imports it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

import poreml
from poreml.data.io import write_json, write_text
from poreml.data.schema import COLUMNS, DESIGN_COLUMNS, MEASURED_COLUMNS
from poreml.data.validation import validate_designs, validate_table
from poreml.exceptions import ConfigError, PoremlError
from poreml.surrogates.domain import NEIGHBORS, QUANTILE
from poreml.surrogates.registry import load as load_surrogate
from poreml.surrogates.report import markdown_table

if TYPE_CHECKING:
    from poreml.surrogates.base import Surrogate

logger = logging.getLogger(__name__)

METADATA_FILE = "metadata.json"
"""Metadata of a model folder (:class:`ModelMetadata`; served by the API's ``/v1/model``)."""

MODEL_CARD_FILE = "MODEL_CARD.md"
"""Human-readable model card of a model folder (:func:`model_card`)."""

SURROGATE_FILES = ("config.json", "tensors.pt", "estimators.joblib")
"""Files :meth:`~poreml.surrogates.base.Surrogate.save` may write (``config.json`` always)."""

METADATA_FORMAT = "poreml-model-metadata"
"""``format`` marker of :data:`METADATA_FILE`."""

METADATA_FORMAT_VERSION = 1
"""Newest ``format_version`` of :data:`METADATA_FILE` this poreml reads and writes."""

REGISTERED_MODEL = "poreml-surrogate"
"""Name of a poreml model, in its metadata and in the MLflow model registry."""

VIRTUAL_LAB = "virtual-lab"
"""``training.data`` of a model trained on virtual-lab data (``poreml train --data
virtual-lab``; the CLI keeps its own copy of the word so ``poreml --help`` stays import-light)."""

CHAMPION_COMMAND = (
    "poreml train --model cascade --data virtual-lab --n 256 --seed 0 --out models/champion"
)
"""The documented command that rebuilds ``models/champion``."""

DEFAULT_LEVEL = 0.9
"""Level of the central prediction interval unless a caller asks for another."""

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")
"""A URI scheme (two letters or more, so a Windows drive ``C:/`` is a folder)."""


# --------------------------------------------------------------------------------------------
# Metadata


@dataclass(frozen=True)
class TrainingRecord:
    """The training data of a model (``training`` in :data:`METADATA_FILE`).

    Attributes:
        source: how the data was obtained, e.g. ``{"data": "virtual-lab", "scenario":
            "baseline", "n": 256, "seed": 0, ...}`` or ``{"data": "file.csv", "rows": 30}``.
        description: the source in words.
        rows: training rows.
        observed_rows: per target, rows with a measured value.
        sha256: digest of the training table (canonical CSV, ``tracking.base.dataset_digest``).
    """

    source: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    rows: int | None = None
    observed_rows: dict[str, int] = field(default_factory=dict)
    sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the source's keys, then ``description``, ``rows``, ``observed_rows``,
        ``sha256``."""
        return {
            **self.source,
            "description": self.description,
            "rows": self.rows,
            "observed_rows": dict(self.observed_rows),
            "sha256": self.sha256,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingRecord:
        """Read the JSON form (any key may be missing; other keys describe the source)."""
        known = ("description", "rows", "observed_rows", "sha256")
        rows = data.get("rows")
        return cls(
            source={k: v for k, v in data.items() if k not in known},
            description=data.get("description"),
            rows=None if rows is None else int(rows),
            observed_rows={k: int(v) for k, v in (data.get("observed_rows") or {}).items()},
            sha256=data.get("sha256"),
        )


@dataclass(frozen=True)
class ModelMetadata:
    """What :data:`METADATA_FILE` holds: identity, training data, trained ranges and scores.

    Every field may be left out of a file (a folder saved by hand, a model logged before
    metadata travelled with it); keys this version does not know are kept in ``extra`` and
    written back.

    Attributes:
        model_name: registered model name.
        model: surrogate registry name (``gp``, ``trees``, ...).
        version: ``<poreml version>+<sha256 of the surrogate files, 12 hex>``, or the registry
            version / alias of a model loaded from a ``models:/`` URI.
        registered_version: MLflow registry version created by ``poreml train``.
        poreml_version: poreml that trained it.
        targets: predicted columns.
        feature_set: ``design`` or ``descriptors``.
        interval_level: level of the served central interval.
        domain_margin: relative widening of the calibrated domain-distance threshold
            (:mod:`poreml.surrogates.domain`).
        params: the surrogate's settings.
        design_columns: per design column the trained range (:func:`trained_ranges`).
        training: the training data.
        metrics: held-out scores: ``heldout`` (set in words), ``heldout_sha256``, ``interval``,
            the ``mean_*`` scores and ``per_target`` ``{target: {n, mae, ...}}``.
        fit_seconds: fitting time.
        tuning: the Optuna study (``study``, ``best_value``, ``metric``, ``trials``) or None.
        rebuild_command: the command that rebuilds the folder.
        extra: keys of the file this version does not know.
    """

    model_name: str = REGISTERED_MODEL
    model: str | None = None
    version: str | None = None
    registered_version: str | None = None
    poreml_version: str | None = None
    targets: tuple[str, ...] = ()
    feature_set: str | None = None
    interval_level: float | None = None
    domain_margin: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    design_columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    training: TrainingRecord = field(default_factory=TrainingRecord)
    metrics: dict[str, Any] = field(default_factory=dict)
    fit_seconds: float | None = None
    tuning: dict[str, Any] | None = None
    rebuild_command: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of :data:`METADATA_FILE` (``format`` and ``format_version`` first)."""
        out: dict[str, Any] = {
            "format": METADATA_FORMAT,
            "format_version": METADATA_FORMAT_VERSION,
        }
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if f.name == "targets":
                value = list(value)
            elif f.name == "training":
                value = value.to_dict()
            out[f.name] = value
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = METADATA_FILE) -> ModelMetadata:
        """Read the JSON form.

        Args:
            data: the parsed :data:`METADATA_FILE`.
            source: where it came from (for error messages).

        Raises:
            ConfigError: another format, or a newer format version.
        """
        fmt = data.get("format", METADATA_FORMAT)
        version = data.get("format_version", METADATA_FORMAT_VERSION)
        if fmt != METADATA_FORMAT or not isinstance(version, int):
            raise ConfigError(
                f"{source}: expected format {METADATA_FORMAT!r} with an integer format_version "
                f"(got format {fmt!r}, format_version {version!r}); restore the file"
            )
        if version > METADATA_FORMAT_VERSION:
            raise ConfigError(
                f"{source}: format_version {version} is newer than this poreml reads "
                f"({METADATA_FORMAT_VERSION}); upgrade poreml"
            )
        names = {f.name for f in fields(cls)} - {"extra"}
        values: dict[str, Any] = {k: v for k, v in data.items() if k in names}
        if "targets" in values:
            values["targets"] = tuple(values["targets"] or ())
        if "training" in values:
            values["training"] = TrainingRecord.from_dict(values["training"] or {})
        for name in ("params", "design_columns", "metrics"):
            if values.get(name) is None:
                values.pop(name, None)
        if values.get("model_name") is None:
            values.pop("model_name", None)
        for name in ("version", "registered_version"):
            if values.get(name) is not None:
                values[name] = str(values[name])
        extra = {
            k: v
            for k, v in data.items()
            if k not in names and k not in ("format", "format_version")
        }
        return cls(**values, extra=extra)

    @classmethod
    def read(cls, path: str | Path) -> ModelMetadata:
        """Read a :data:`METADATA_FILE`.

        Raises:
            ConfigError: the file is not readable JSON or not model metadata.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ConfigError(f"{path}: not readable JSON ({err}); restore the file") from err
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a JSON object (got {type(data).__name__})")
        return cls.from_dict(data, source=str(path))


def trained_ranges(X: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per design column the values seen in training (``design_columns`` of the metadata).

    Args:
        X: the training inputs (design columns; any may be missing or blank).

    Returns:
        ``{column: {"unit", "min", "max" | "values", "observed_rows", "default"}}`` in contract
        order; ``min``/``max`` in physical units (None when never observed), ``values`` the
        routes seen.
    """
    out: dict[str, dict[str, Any]] = {}
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


def _data_limits(data: str) -> str:
    """The model card's line on what the training data can and cannot tell."""
    if data == VIRTUAL_LAB:
        return (
            "- Trained on the **virtual lab**, a physics-based benchmark function, not on measured "
            "materials: numbers describe that simulator, not real particles."
        )
    if data.startswith("campaign:"):
        return (
            "- Trained on one campaign's own measurements: designs the campaign proposed, so the "
            "model knows the regions it explored best; trust it less far from them "
            "(`domain_distance`)."
        )
    return (
        "- Trained on a small literature table: most design columns are blank there, so "
        "the model leans on `route`, missing-value indicators and the defaults."
    )


def model_card(meta: ModelMetadata) -> str:
    """The ``MODEL_CARD.md`` text of a model: what it is, its data, scores, limits, rebuild."""
    src = meta.training
    ranges = []
    for name, rng in meta.design_columns.items():
        if "values" in rng:
            ranges.append(f"| `{name}` | {', '.join(rng['values']) or '—'} | – |")
        else:
            lo = "—" if rng.get("min") is None else f"{rng['min']:.4g}"
            hi = "—" if rng.get("max") is None else f"{rng['max']:.4g}"
            ranges.append(f"| `{name}` | {lo} – {hi} | {rng['unit']} |")
    scores = meta.metrics
    per_target = pd.DataFrame(
        [{"target": t, **row} for t, row in (scores.get("per_target") or {}).items()]
    )
    nll = scores.get("mean_nll_std")
    margin = meta.domain_margin
    lines = [
        f"# Model card: {meta.model_name} ({meta.model}), version {meta.version}",
        "",
        "## What it is",
        "",
        f"A `{meta.model}` surrogate (poreml {meta.poreml_version}) predicting "
        + ", ".join(f"`{t}`" for t in meta.targets)
        + f" from the `{meta.feature_set}` feature set. Every prediction comes with a "
        "standard deviation and a central 90 % interval for a new measurement, plus an "
        f"`domain_distance` (mean distance to the {NEIGHBORS} nearest training designs in the "
        "model's standardised feature space, divided by the "
        f"{100 * QUANTILE:.0f}th percentile of the same distance for held-out training rows, "
        "widened by "
        + ("—" if margin is None else f"{100 * margin:.0f}")
        + " %) and an `in_domain` flag (`domain_distance <= 1` and a route seen in training).",
        "",
        "Settings: `" + json.dumps(meta.params, sort_keys=True) + "`.",
        "",
        "## Training data",
        "",
        f"- source: {src.description}",
        f"- rows: {src.rows}; sha256 of the training table (canonical CSV): `{src.sha256}`",
        "",
        "Trained ranges of the design columns:",
        "",
        "| column | trained range | unit |",
        "| --- | --- | --- |",
        *ranges,
        "",
        "## Held-out metrics",
        "",
        f"Held-out set: {scores.get('heldout')}. Intervals scored: {scores.get('interval')}.",
        "",
        markdown_table(per_target),
        "",
        "Mean standardised NLL over targets (`mean_nll_std`, the champion metric): "
        + ("—" if nll is None else f"{nll:.4g}")
        + ".",
        "",
        "## Limits",
        "",
        _data_limits(str(src.source.get("data", ""))),
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
        str(meta.rebuild_command),
        "```",
        "",
    ]
    return "\n".join(lines)


def write_metadata(meta: ModelMetadata, folder: str | Path) -> tuple[Path, Path]:
    """Write :data:`METADATA_FILE` and :data:`MODEL_CARD_FILE` into ``folder`` (atomically).

    Returns:
        The two paths.
    """
    folder = Path(folder)
    return (
        write_json(meta.to_dict(), folder / METADATA_FILE),
        write_text(model_card(meta), folder / MODEL_CARD_FILE),
    )


# --------------------------------------------------------------------------------------------
# The artifact


@dataclass(frozen=True)
class ModelArtifact:
    """A fitted surrogate with its metadata.

    Attributes:
        surrogate: a fitted :class:`~poreml.surrogates.base.Surrogate`.
        metadata: its :class:`ModelMetadata`.
        source: where it was loaded from (folder or URI); None for one built in process.
    """

    surrogate: Surrogate
    metadata: ModelMetadata = field(default_factory=ModelMetadata)
    source: str | None = None

    def save(self, folder: str | Path) -> ModelArtifact:
        """Write the model folder: surrogate files, :data:`METADATA_FILE`, :data:`MODEL_CARD_FILE`.

        A metadata ``version`` left as None is set to ``<poreml version>+<12 hex>`` of the
        sha256 of the saved surrogate files, so two folders with the same model share it.

        Returns:
            The saved artifact (``version`` filled, ``source`` = the folder).
        """
        folder = Path(self.surrogate.save(folder))
        meta = self.metadata
        if meta.version is None:
            meta = replace(meta, version=f"{poreml.__version__}+{surrogate_sha256(folder)[:12]}")
        write_metadata(meta, folder)
        return replace(self, metadata=meta, source=str(folder))

    def predict_table(
        self,
        designs: pd.DataFrame,
        level: float = DEFAULT_LEVEL,
        *,
        source: str | None = None,
        ignore_columns: Iterable[str] = (),
        include_inputs: bool = False,
    ) -> pd.DataFrame:
        """Validate ``designs``, then predict every target with its interval and domain flag.

        Args:
            designs: design columns (any subset; left-out ones take the contract defaults),
                optional ``candidate_id``, and any measured columns of a powder already made
                (CONTRACT.md §4.1; blank = not measured). Design values must lie in the
                physical domain, measured values in their contract range. The model uses the
                measured columns it can condition on
                (:meth:`~poreml.surrogates.base.Surrogate.measured_inputs`) and ignores the
                others; ``conditioned_on`` says which it used.
            level: central interval level.
            source: file name (or other label) for error messages.
            ignore_columns: further columns to accept and leave out (e.g. ``feasible`` or
                provenance columns of a lab file).
            include_inputs: put the validated inputs (``candidate_id``, design columns with
                defaults filled, the measured columns given) before the predictions.

        Returns:
            ``candidate_id`` (when given), [the inputs,] per target ``<target>_mean``,
            ``_std``, ``_lower``, ``_upper``, then ``conditioned_on`` (``;``-joined),
            ``domain_distance`` and ``in_domain``; index ``0..n-1``.

        Raises:
            DataValidationError: listing every unknown column and bad value.
        """
        frame = pd.DataFrame(designs).reset_index(drop=True)
        if "candidate_id" in frame.columns:
            frame["candidate_id"] = frame["candidate_id"].astype(str)
        measured = [c for c in MEASURED_COLUMNS if c in frame.columns]
        ignored = [c for c in ignore_columns if c not in measured]
        clean = validate_designs(
            frame,
            source=source,
            physical=True,
            fill_defaults=True,
            allow_columns=("candidate_id", *measured, *ignored),
        )
        head = ["candidate_id"] if "candidate_id" in clean.columns else []
        X = clean[[*head, *DESIGN_COLUMNS]]
        if measured:
            X = pd.concat([X, validate_table(clean[measured], source=source)], axis=1)
        table = self.surrogate.predict_table(X, level=level)
        if include_inputs:
            table = pd.concat([X, table.drop(columns=head)], axis=1)
        return table


def surrogate_sha256(folder: str | Path) -> str:
    """sha256 over the surrogate files of ``folder`` (names and bytes, in a fixed order)."""
    h = hashlib.sha256()
    for name in SURROGATE_FILES:
        path = Path(folder) / name
        if path.is_file():
            h.update(name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def artifact_files(folder: str | Path) -> list[Path]:
    """The files of a model folder that travel with a logged model: the surrogate's files and
    :data:`METADATA_FILE` (when present)."""
    folder = Path(folder)
    return [folder / n for n in (*SURROGATE_FILES, METADATA_FILE) if (folder / n).is_file()]


def load(location: str | Path, tracking_uri: str | None = None) -> ModelArtifact:
    """Load a model folder, or an MLflow model URI (``models:/...``, ``runs:/...``).

    Args:
        location: a folder written by :meth:`ModelArtifact.save` (or by ``Surrogate.save``
            alone: the model then has no metadata and is served as unversioned), or a string
            with a URI scheme (:func:`load_uri`).
        tracking_uri: store to resolve a URI against (default: the settings).

    Raises:
        ConfigError: the folder holds no saved surrogate, or unreadable metadata.
        PoremlError: the URI cannot be resolved or loaded.
    """
    if isinstance(location, str) and _URI.match(location):
        return load_uri(location, tracking_uri)
    return load_folder(location)


def load_folder(folder: str | Path) -> ModelArtifact:
    """Load a model folder (see :func:`load`)."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ConfigError(
            f"{folder}: no saved surrogate here (config.json missing). Train one with "
            f"`{CHAMPION_COMMAND}` and point POREML_MODEL_DIR (or --model-dir) at the folder, "
            "or set POREML_MODEL_URI"
        )
    meta_path = folder / METADATA_FILE
    if meta_path.is_file():
        meta = ModelMetadata.read(meta_path)
    else:
        logger.warning("%s: no %s; the model is unversioned", folder, METADATA_FILE)
        meta = ModelMetadata()
    return ModelArtifact(load_surrogate(folder), meta, source=str(folder))


class ModelUriError(PoremlError, RuntimeError):
    """An MLflow model URI cannot be resolved or loaded."""


def load_pyfunc(model_uri: str, tracking_uri: str | None = None) -> Any:
    """Load a logged or registered surrogate pyfunc (e.g. ``models:/poreml-surrogate@champion``).

    Args:
        model_uri: any MLflow model URI.
        tracking_uri: store to resolve ``models:/`` and ``runs:/`` URIs against (default:
            the settings).

    Returns:
        An ``mlflow.pyfunc.PyFuncModel``; ``.predict(frame, params={"level": 0.9})``.

    Raises:
        ModelUriError: the URI cannot be resolved or loaded.
    """
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    from poreml.tracking.mlflow_tracker import MlflowTracker

    MlflowTracker(tracking_uri=tracking_uri).activate()
    try:
        return mlflow.pyfunc.load_model(model_uri)
    except (MlflowException, OSError) as err:
        raise ModelUriError(
            f"cannot load model {model_uri!r} from {tracking_uri or 'the configured store'}: "
            f"{err}. Check POREML_TRACKING_URI and that the model (or alias) exists."
        ) from None


def load_uri(model_uri: str, tracking_uri: str | None = None) -> ModelArtifact:
    """The artifact inside a pyfunc logged by :func:`~poreml.tracking.registry.log_surrogate`.

    The metadata logged with it is read; a ``models:/<name>/<version>`` or
    ``models:/<name>@<alias>`` URI names the model by its registry name and version (or
    ``@alias``).

    Raises:
        ModelUriError: the URI cannot be resolved or loaded, or holds no poreml model.
    """
    inner = load_pyfunc(model_uri, tracking_uri).unwrap_python_model()
    artifact = getattr(inner, "artifact", None)
    if not isinstance(artifact, ModelArtifact):
        raise ModelUriError(
            f"{model_uri!r} is not a poreml surrogate (got {type(inner).__name__}); log models "
            "with `poreml train` or poreml.tracking.registry.log_surrogate"
        )
    meta = artifact.metadata
    if model_uri.startswith("models:/"):
        name, _, version = model_uri.removeprefix("models:/").partition("/")
        name, _, alias = name.partition("@")
        meta = replace(meta, model_name=name, version=version or (f"@{alias}" if alias else None))
    return replace(artifact, metadata=meta, source=model_uri)
