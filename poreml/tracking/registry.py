"""Log a surrogate as an MLflow pyfunc model, register it and promote the champion.

The registered model is ``poreml-surrogate``. Its alias ``champion`` moves to a new version
only when that version is better on the declared metric than the current champion, as logged
in the champion's run (lower is better for NLL and error metrics, higher for R²). The first
registered version becomes champion. Runs tag the identity of their held-out set
(``poreml.heldout_sha256``); when both runs carry it and it differs, the scores are not
comparable and the alias stays unless ``force=True``. A caller that can score the champion itself
on the new version's held-out rows (``poreml train --data campaign:DIR``) passes
``score_champion``: the comparison then uses that fresh score, so both versions are judged on
the same rows whatever the champion was scored on when it was registered.

Every function returns what it did (version, whether promoted, and why).
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from poreml.exceptions import ConfigError, PoremlError
from poreml.tracking.artifacts import REGISTERED_MODEL, artifact_files

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from poreml.tracking.mlflow_tracker import MlflowTracker

CHAMPION_ALIAS = "champion"
"""Alias of the best registered version; ``models:/poreml-surrogate@champion``."""

HELDOUT_TAG = "poreml.heldout_sha256"
"""Run tag naming the held-out set a run's metrics were computed on."""

METRIC_DIRECTIONS: dict[str, bool] = {
    "mean_nll_std": False,
    "mean_nll": False,
    "mean_mae": False,
    "mean_rmse": False,
    "mean_r2": True,
}
"""Known champion metrics: True when greater is better."""

CHAMPION_SCORE_METRIC_PREFIX = "champion_"
"""Prefix of the run metric holding the champion's fresh score (``score_champion``)."""

_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)$")


class RegistryError(PoremlError, RuntimeError):
    """A model-registry operation could not be carried out."""


@dataclass(frozen=True)
class RegistrationResult:
    """What :func:`register_surrogate` did.

    Attributes:
        name: registered model name.
        version: the new version.
        model_uri: ``models:/<name>/<version>``.
        run_id: run that logged the model.
        metric: the declared metric.
        value: the new version's value of it.
        promoted: whether the ``champion`` alias now points at the new version.
        champion_version: version holding the alias after the call.
        previous_version: version that held it before (None if there was none).
        previous_value: the previous champion's logged value (None if unknown).
        reason: why the alias moved or stayed, in words.
    """

    name: str
    version: str
    model_uri: str
    run_id: str
    metric: str
    value: float
    promoted: bool
    champion_version: str | None
    previous_version: str | None
    previous_value: float | None
    reason: str


def metric_higher_is_better(metric: str, override: bool | None = None) -> bool:
    """Direction of ``metric``: ``override`` if given, else :data:`METRIC_DIRECTIONS`.

    Raises:
        ConfigError: an unknown metric without an explicit direction.
    """
    if override is not None:
        return bool(override)
    if metric in METRIC_DIRECTIONS:
        return METRIC_DIRECTIONS[metric]
    low = metric.lower()
    if any(key in low for key in ("nll", "mae", "rmse", "error", "loss")):
        return False
    if "r2" in low:
        return True
    raise ConfigError(
        f"metric {metric!r}: direction unknown; expected one of {', '.join(METRIC_DIRECTIONS)} "
        "or pass higher_is_better=True/False."
    )


def log_surrogate(
    tracker: MlflowTracker,
    model_dir: str | Path,
    input_example: pd.DataFrame,
    *,
    targets: list[str] | tuple[str, ...],
    name: str = "model",
    registered_model_name: str | None = None,
) -> Any:
    """Log the saved model folder as a pyfunc model in the tracker's open run.

    The surrogate's files and, when the folder has one, its ``metadata.json`` travel with
    the logged model, so a model loaded by URI reports its training data like a folder does.

    Args:
        tracker: an :class:`MlflowTracker` with an open run.
        model_dir: folder written by :meth:`~poreml.tracking.artifacts.ModelArtifact.save` (or
            :meth:`~poreml.surrogates.base.Surrogate.save` alone).
        input_example: a few design rows (stored with the model; validated against the
            signature).
        targets: targets the model predicts (for the output signature).
        name: name of the logged model within the run.
        registered_model_name: also register it under this name (creates a version).

    Returns:
        MLflow's ``ModelInfo`` (``model_uri``, ``registered_model_version``, ...).
    """
    import mlflow.pyfunc

    import poreml
    from poreml.tracking.pyfunc import PYFUNC_CODE, SURROGATE_ARTIFACT, model_signature

    tracker.run_id  # noqa: B018 - raises when no run is open
    folder = Path(model_dir)
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{folder}: not a saved surrogate (no config.json); save the model first")
    example = input_example.head(5).reset_index(drop=True)
    tracker.activate()
    with tempfile.TemporaryDirectory(prefix="poreml-model-") as tmp:
        # The surrogate's files and its metadata travel with the pyfunc (not the model card).
        staged = Path(tmp) / SURROGATE_ARTIFACT
        staged.mkdir()
        for item in artifact_files(folder):
            (staged / item.name).write_bytes(item.read_bytes())
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(PYFUNC_CODE),
            artifacts={SURROGATE_ARTIFACT: str(staged)},
            signature=model_signature(list(targets)),
            input_example=example,
            registered_model_name=registered_model_name,
            pip_requirements=[f"poreml=={poreml.__version__}", "mlflow", "torch", "pandas"],
        )


def _metric_of_run(client: MlflowClient, run_id: str | None, metric: str) -> float | None:
    if not run_id:
        return None
    try:
        value = client.get_run(run_id).data.metrics.get(metric)
    except Exception:  # deleted run, or a store without it
        return None
    return None if value is None or not math.isfinite(value) else float(value)


def _tag_of_run(client: MlflowClient, run_id: str | None, tag: str) -> str | None:
    if not run_id:
        return None
    try:
        return client.get_run(run_id).data.tags.get(tag)
    except Exception:
        return None


def current_champion(
    client: MlflowClient, name: str = REGISTERED_MODEL, alias: str = CHAMPION_ALIAS
) -> Any | None:
    """The model version holding ``alias``, or None (no such model or alias)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def resolve_model_uri(model_uri: str, tracking_uri: str | None = None) -> str:
    """``models:/NAME@ALIAS`` as ``models:/NAME/VERSION`` (the version the alias names now).

    Any other URI comes back unchanged. A server pins its model this way at start-up, so what
    it reports as its version is a registry version, and a later alias move does not change
    the model under a running process.

    Args:
        model_uri: an MLflow model URI.
        tracking_uri: store holding the registry (default: the settings).

    Raises:
        RegistryError: the store cannot be reached, or no such model or alias.
    """
    match = _ALIAS_URI.match(model_uri)
    if match is None:
        return model_uri
    from mlflow.exceptions import MlflowException

    from poreml.tracking.mlflow_tracker import MlflowTracker

    name, alias = match["name"], match["alias"]
    tracker = MlflowTracker(tracking_uri=tracking_uri)
    try:
        version = tracker.client.get_model_version_by_alias(name, alias).version
    except MlflowException as err:
        raise RegistryError(
            f"cannot resolve {model_uri!r} in {tracker.tracking_uri}: {err}. Check "
            f"POREML_TRACKING_URI and that model {name!r} has the alias {alias!r} (e.g. train "
            "one with `poreml train`)."
        ) from None
    return f"models:/{name}/{version}"


def register_surrogate(
    tracker: MlflowTracker,
    model_dir: str | Path,
    input_example: pd.DataFrame,
    *,
    targets: list[str] | tuple[str, ...],
    metric: str,
    value: float,
    higher_is_better: bool | None = None,
    name: str = REGISTERED_MODEL,
    alias: str = CHAMPION_ALIAS,
    force: bool = False,
    tags: dict[str, str] | None = None,
    score_champion: Callable[[str], float | None] | None = None,
) -> RegistrationResult:
    """Log the surrogate, register a new version and move ``champion`` if it is better.

    Must be called inside ``tracker.start_run(...)``. The new version's ``value`` of
    ``metric`` is logged to the run (so later comparisons find it) and set as version tag.

    Args:
        tracker: MLflow tracker with an open run.
        model_dir: saved surrogate folder.
        input_example: a few design rows.
        targets: the model's targets.
        metric: declared comparison metric (e.g. ``mean_nll_std``).
        value: the new model's value of ``metric`` on its held-out set.
        higher_is_better: direction of ``metric`` when it is not a known one.
        name: registered model name.
        alias: alias to move.
        force: move the alias even if the new version is not better or not comparable.
        tags: extra model-version tags.
        score_champion: called with the current champion's version, returns its value of
            ``metric`` on the same held-out rows as ``value`` (None: it cannot be scored
            there, so the two are not comparable). When given, this fresh score replaces the
            champion's logged one and the held-out tags are not compared; it is logged to the
            run as ``champion_<metric>``.

    Returns:
        The :class:`RegistrationResult`.

    Raises:
        ConfigError: ``value`` is not finite or the metric's direction is unknown.
    """
    higher = metric_higher_is_better(metric, higher_is_better)
    if not math.isfinite(float(value)):
        raise ConfigError(f"{metric}: expected a finite value to register (got {value!r})")
    value = float(value)
    client = tracker.client
    run_id = tracker.run_id
    tracker.log_metrics({metric: value})
    info = log_surrogate(
        tracker, model_dir, input_example, targets=targets, registered_model_name=name
    )
    version = str(info.registered_model_version)
    if version in ("None", ""):
        raise RegistryError(f"MLflow did not register a version of {name!r} for run {run_id}")
    client.set_model_version_tag(name, version, f"poreml.metric.{metric}", str(value))
    for key, tag_value in (tags or {}).items():
        client.set_model_version_tag(name, version, key, str(tag_value))

    previous = current_champion(client, name, alias)
    prev_version = None if previous is None else str(previous.version)
    prev_value = None
    if previous is None:
        promote, reason = True, "first registered version"
    else:
        if score_champion is not None:
            prev_value, mine, theirs = _fresh_score(score_champion, str(prev_version)), None, None
            if prev_value is not None:
                tracker.log_metrics({f"{CHAMPION_SCORE_METRIC_PREFIX}{metric}": prev_value})
        else:
            prev_value = _metric_of_run(client, previous.run_id, metric)
            if prev_value is None:
                tagged = (previous.tags or {}).get(f"poreml.metric.{metric}")
                prev_value = float(tagged) if tagged is not None else None
            mine = _tag_of_run(client, run_id, HELDOUT_TAG)
            theirs = _tag_of_run(client, previous.run_id, HELDOUT_TAG)
        if prev_value is None:
            promote = False
            reason = (
                f"champion v{prev_version} has no logged {metric!r}; not comparable"
                if score_champion is None
                else f"champion v{prev_version} cannot be scored on this held-out set; "
                "not comparable"
            )
        elif mine and theirs and mine != theirs:
            promote = False
            reason = (
                f"champion v{prev_version} was scored on another held-out set "
                f"({theirs[:12]} vs {mine[:12]}); not comparable"
            )
        else:
            better = value > prev_value if higher else value < prev_value
            promote = better
            op = ">" if higher else "<"
            where = " on the same held-out rows" if score_champion is not None else ""
            reason = (
                f"{metric} {value:.6g} {op} champion v{prev_version}'s {prev_value:.6g}{where}"
                if better
                else f"{metric} {value:.6g} is not better than champion v{prev_version}'s "
                f"{prev_value:.6g}{where}"
            )
        if force and not promote:
            promote, reason = True, f"forced ({reason})"
    if promote:
        client.set_registered_model_alias(name, alias, version)
    tracker.set_tags(
        {"poreml.registered_version": version, "poreml.promoted": str(promote).lower()}
    )
    return RegistrationResult(
        name=name,
        version=version,
        model_uri=f"models:/{name}/{version}",
        run_id=run_id,
        metric=metric,
        value=value,
        promoted=promote,
        champion_version=version if promote else prev_version,
        previous_version=prev_version,
        previous_value=prev_value,
        reason=reason,
    )


def _fresh_score(score_champion: Callable[[str], float | None], version: str) -> float | None:
    """The champion's fresh score, or None when it has none (not finite, or not computable)."""
    value = score_champion(version)
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)
