"""The MLflow implementation of :class:`~poreml.tracker.Tracker`.

Where runs go comes from the settings (``POREML_TRACKING_URI``, ``POREML_ARTIFACT_LOCATION``,
default SQLite under ``POREML_HOME``), read when the tracker is created, never at import time.
The tracking URI is set on the mlflow module only when a run starts, so two trackers pointing at
different stores can be used one after the other in one process.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from poreml.settings import get_settings
from poreml.tracker import dataset_digest
from poreml.tracking.base import DIGEST_TAG, finite_metrics, flatten_params

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SURROGATE_EXPERIMENT = "poreml-surrogates"
"""Experiment of surrogate training, tuning and evaluation runs."""

CAMPAIGN_EXPERIMENT = "poreml-campaigns"
"""Experiment of optimisation campaign runs."""

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
"""Experiment tag by which MLflow 3 tells model-development from GenAI experiments."""

EXPERIMENT_KIND = "custom_model_development"
"""Value of :data:`EXPERIMENT_KIND_TAG` for poreml's experiments: classic ML (runs, metrics,
models), shown as "Machine learning" in the MLflow UI, which then opens them on their runs
rather than on the GenAI overview of traces."""

ML_WORKFLOW_QUERY = "workflowType=machine_learning"
"""Query of MLflow UI links that open the "Machine learning" view. MLflow 3.5+ decides the
experiment page layout by the UI-wide workflow switch (GenAI by default, remembered by the
browser) and only older 3.x UIs read :data:`EXPERIMENT_KIND_TAG`; links carry both."""


class TrackingError(RuntimeError):
    """A tracking call was made in the wrong state (e.g. logging with no open run)."""


def ensure_local_store(uri: str) -> None:
    """Create the parent folder of a ``sqlite:///`` or ``file:`` store; leave others alone.

    SQLite does not create missing folders, and the default stores live under ``.poreml/``.

    Args:
        uri: a tracking URI, artifact location or SQLAlchemy URL.
    """
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///") :]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    elif uri.startswith("file:"):
        Path(urlparse(uri).path).mkdir(parents=True, exist_ok=True)


def ensure_experiment(
    client: MlflowClient, name: str, *, artifact_location: str | None = None
) -> str:
    """Id of experiment ``name``, created when missing, marked as model development.

    A new experiment gets :data:`EXPERIMENT_KIND_TAG` = :data:`EXPERIMENT_KIND` at creation;
    an existing one gets it when the tag is missing (experiments made before poreml set it).
    A kind already set (e.g. chosen in the UI) is kept.

    Args:
        client: a client on the tracking store.
        name: the experiment name.
        artifact_location: artifact root of a newly created experiment (its local folder is
            created); None lets the store decide.

    Returns:
        The experiment id.
    """
    found = client.get_experiment_by_name(name)
    if found is None:
        if artifact_location:
            ensure_local_store(artifact_location)
        try:
            return client.create_experiment(
                name,
                artifact_location=artifact_location,
                tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
            )
        except MlflowException:
            # another process created it between the look-up and the create: use theirs
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
    if not found.tags.get(EXPERIMENT_KIND_TAG):
        client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return found.experiment_id


DATASET_LOG_ATTEMPTS = 3
"""Tries of logging a dataset input when a concurrent run created the same dataset first."""


def _is_duplicate_dataset(err: Exception) -> bool:
    """Whether ``err`` is the tracking store refusing a dataset row another run just created."""
    text = str(err)
    return "dataset_pk" in text or ("UNIQUE constraint failed" in text and "datasets" in text)


class MlflowTracker:
    """Log runs, datasets, figures, tables and models to MLflow.

    Args:
        experiment: experiment name (created on first use with the configured artifact
            location): :data:`SURROGATE_EXPERIMENT` or :data:`CAMPAIGN_EXPERIMENT`.
        tracking_uri: MLflow tracking URI; default ``get_settings().resolved_tracking_uri``.
        artifact_location: artifact root for a newly created experiment; default
            ``get_settings().resolved_artifact_location`` (only used with the default store).

    Example:
        >>> tracker = MlflowTracker()  # doctest: +SKIP
        >>> with tracker.start_run("train-gp"):  # doctest: +SKIP
        ...     tracker.log_params({"model": "gp"})
        ...     tracker.log_metrics({"nll": 0.3})
    """

    def __init__(
        self,
        experiment: str = SURROGATE_EXPERIMENT,
        *,
        tracking_uri: str | None = None,
        artifact_location: str | None = None,
    ) -> None:
        settings = get_settings()
        self.experiment = experiment
        self.tracking_uri = tracking_uri or settings.resolved_tracking_uri
        if artifact_location is not None:
            self.artifact_location: str | None = artifact_location
        elif tracking_uri is None and (
            settings.tracking_uri is None or settings.artifact_location is not None
        ):
            self.artifact_location = settings.resolved_artifact_location
        else:
            # A remote tracking server decides where artifacts go unless told otherwise.
            self.artifact_location = settings.artifact_location
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None
        self._runs: list[str] = []

    # -- store -----------------------------------------------------------------------------

    @property
    def client(self) -> MlflowClient:
        """An MlflowClient on this tracker's store (tracking and registry)."""
        if self._client is None:
            os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
            ensure_local_store(self.tracking_uri)
            self._client = MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri
            )
        return self._client

    @property
    def experiment_id(self) -> str:
        """Id of :attr:`experiment`, created (with the artifact location) when missing.

        The experiment is marked as a model-development experiment (:data:`EXPERIMENT_KIND_TAG`)
        when created, and an existing one without the mark (made by an older poreml) gets it
        when first opened; a kind a person chose in the UI is left alone.
        """
        if self._experiment_id is None:
            self._experiment_id = ensure_experiment(
                self.client, self.experiment, artifact_location=self.artifact_location
            )
        return self._experiment_id

    def activate(self) -> None:
        """Point the mlflow module (fluent API, model logging) at this tracker's store.

        Also turns MLflow's usage telemetry off unless ``MLFLOW_DISABLE_TELEMETRY`` is set:
        poreml makes no network calls the user did not configure.
        """
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        ensure_local_store(self.tracking_uri)
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)

    # -- runs ------------------------------------------------------------------------------

    @contextmanager
    def start_run(
        self, name: str, nested: bool = False, *, tags: Mapping[str, str] | None = None
    ) -> Iterator[Run]:
        """Open a run named ``name`` in :attr:`experiment`; close it on exit.

        Args:
            name: run name shown in the MLflow UI.
            nested: open the run as a child of the run this tracker has open.
            tags: extra tags for the run.

        Yields:
            The MLflow run. It ends ``FINISHED``, or ``FAILED`` when the block raises.
        """
        experiment_id = self.experiment_id
        self.activate()
        if nested and not self._runs:
            raise TrackingError(
                f"start_run({name!r}, nested=True) needs an open parent run; "
                "open one with start_run() first or pass nested=False."
            )
        parent = self._runs[-1] if nested else None
        run = mlflow.start_run(
            experiment_id=experiment_id,
            run_name=name,
            nested=nested,
            parent_run_id=parent,
            tags=dict(tags or {}),
        )
        self._runs.append(run.info.run_id)
        status = "FINISHED"
        try:
            yield run
        except BaseException:
            status = "FAILED"
            raise
        finally:
            self._runs.pop()
            mlflow.end_run(status=status)

    @property
    def run_id(self) -> str:
        """Id of the innermost open run."""
        if not self._runs:
            raise TrackingError("no open run: call inside `with tracker.start_run(name):`.")
        return self._runs[-1]

    def log_run_metrics(
        self, run_id: str, metrics: Mapping[str, float], step: int | None = None
    ) -> None:
        """Record the finite entries of ``metrics`` at ``step`` on the run ``run_id``.

        The run need not be open: a campaign's parent run collects one point per round long
        after it was created.

        Args:
            run_id: an existing run of this tracker's store.
            metrics: name -> value; NaN and infinite values are left out.
            step: the step (e.g. the round); default 0.
        """
        import time

        from mlflow.entities import Metric

        clean = finite_metrics(metrics)
        if clean:
            now = int(time.time() * 1000)
            batch = [Metric(k, v, now, step or 0) for k, v in clean.items()]
            self.client.log_batch(run_id, metrics=batch)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record ``params`` (nested mappings flattened to ``a.b``) on the open run."""
        from mlflow.entities import Param

        flat = flatten_params(params)
        if flat:
            self.client.log_batch(self.run_id, params=[Param(k, v) for k, v in flat.items()])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record the finite entries of ``metrics`` at ``step`` (default 0)."""
        self.log_run_metrics(self.run_id, metrics, step)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Attach ``tags`` to the open run."""
        from mlflow.entities import RunTag

        if tags:
            self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_figure(self, figure: Figure, filename: str) -> None:
        """Store a matplotlib figure as ``filename`` (its suffix picks the format)."""
        self.client.log_figure(self.run_id, figure, filename)

    def log_table(self, table: pd.DataFrame, filename: str) -> None:
        """Store ``table`` as ``filename``: ``.csv`` (default), ``.md`` or ``.json`` records."""
        path = Path(filename)
        suffix = path.suffix.lower()
        with tempfile.TemporaryDirectory(prefix="poreml-table-") as tmp:
            local = Path(tmp) / path.name
            if suffix == ".md":
                from poreml.surrogates.report import markdown_table

                local.write_text(markdown_table(table) + "\n", encoding="utf-8")
            elif suffix == ".json":
                local.write_text(
                    json.dumps(json.loads(table.to_json(orient="records")), indent=2) + "\n",
                    encoding="utf-8",
                )
            else:
                if suffix != ".csv":
                    local = local.with_suffix(local.suffix + ".csv")
                table.to_csv(local, index=False, lineterminator="\n")
            parent = str(path.parent) if str(path.parent) not in ("", ".") else None
            self.client.log_artifact(self.run_id, str(local), parent)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Store a local file, or every file of a local folder, under ``artifact_path``."""
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_dataset(self, frame: pd.DataFrame, name: str, context: str = "training") -> str:
        """Record ``frame`` as a run input and its sha256 as a param and tag.

        The digest is :func:`~poreml.tracking.base.dataset_digest` (sha256 of the canonical
        CSV), logged as param and tag ``poreml.dataset_sha256`` (for ``context="training"``;
        ``poreml.<context>_dataset_sha256`` otherwise) and as the digest of an MLflow dataset
        input (first 32 hex digits: MLflow's limit), so the UI shows which data trained the
        model.

        Returns:
            The digest.
        """
        import mlflow.data

        digest = dataset_digest(frame)
        key = DIGEST_TAG if context == "training" else f"poreml.{context}_dataset_sha256"
        self.log_params({key: digest, f"poreml.{context}_rows": len(frame)})
        self.set_tags({key: digest})
        # MLflow caps dataset digests at 36 characters: the input carries the first 32 hex
        # digits; the param and tag carry all 64.
        dataset = mlflow.data.from_pandas(
            frame.reset_index(drop=True), name=name, digest=digest[:32]
        )
        # The fluent call logs to the active run, which start_run made this tracker's run.
        # The tracking server creates a dataset row on first use without guarding against a
        # concurrent creator: two runs logging the same data at once (parallel tuning workers)
        # can collide on its unique key. The row exists after the collision, so log again.
        for attempt in range(DATASET_LOG_ATTEMPTS):
            try:
                mlflow.log_input(dataset, context=context)
                break
            except MlflowException as err:
                if attempt + 1 == DATASET_LOG_ATTEMPTS or not _is_duplicate_dataset(err):
                    raise
                time.sleep(0.2 * (attempt + 1))
        return digest
