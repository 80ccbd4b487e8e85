"""MlflowTracker: runs with params, metrics, tags, tables, figures, files and dataset digests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from poreml.tracker import dataset_digest
from poreml.tracking import DIGEST_TAG, MlflowTracker
from poreml.tracking.mlflow_tracker import TrackingError


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            out |= _artifacts(client, run_id, item.path)
        else:
            out.add(item.path)
    return out


def test_store_and_artifacts_follow_the_settings(store: Path) -> None:
    tracker = MlflowTracker()
    assert tracker.tracking_uri == f"sqlite:///{(store / 'mlflow.db').resolve()}"
    assert tracker.artifact_location == (store / "mlartifacts").resolve().as_uri()
    assert tracker.experiment == "poreml-surrogates"
    experiment = tracker.client.get_experiment(tracker.experiment_id)
    assert experiment.artifact_location == tracker.artifact_location


def test_run_records_params_metrics_tags_dataset_and_artifacts(
    store: Path, tmp_path: Path, vl_data: pd.DataFrame
) -> None:
    from matplotlib.figure import Figure

    tracker = MlflowTracker()
    note = tmp_path / "note.txt"
    note.write_text("hello")
    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    with tracker.start_run("unit") as run:
        tracker.log_params({"model": "ridge", "nested": {"alpha": 1.0}})
        tracker.log_metrics({"mae": 1.5, "skipped": float("nan")}, step=2)
        tracker.log_metrics({"mae": 1.0}, step=3)
        digest = tracker.log_dataset(vl_data, name="vl")
        tracker.log_table(vl_data.head(3), "tables/head.csv")
        tracker.log_table(vl_data.head(3)[["route", "porosity"]], "head.md")
        tracker.log_figure(fig, "fig.png")
        tracker.log_artifact(note, "files")
    client = tracker.client
    data = client.get_run(run.info.run_id).data
    assert data.params["model"] == "ridge"
    assert data.params["nested.alpha"] == "1.0"
    assert data.params[DIGEST_TAG] == digest == dataset_digest(vl_data)
    assert data.tags[DIGEST_TAG] == digest
    assert data.metrics["mae"] == 1.0
    assert "skipped" not in data.metrics
    history = client.get_metric_history(run.info.run_id, "mae")
    assert [(m.step, m.value) for m in history] == [(2, 1.5), (3, 1.0)]
    assert _artifacts(client, run.info.run_id) == {
        "tables/head.csv",
        "head.md",
        "fig.png",
        "files/note.txt",
    }
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert [d.dataset.digest for d in inputs] == [digest[:32]]
    assert client.get_run(run.info.run_id).info.status == "FINISHED"


def test_nested_runs_have_a_parent_and_failures_are_recorded(store: Path) -> None:
    tracker = MlflowTracker()
    with tracker.start_run("parent") as parent:
        with tracker.start_run("child", nested=True) as child:
            tracker.log_metrics({"x": 1.0})
        with pytest.raises(RuntimeError), tracker.start_run("boom", nested=True) as failed:
            raise RuntimeError("boom")
    client = tracker.client
    assert client.get_run(child.info.run_id).data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert client.get_run(failed.info.run_id).info.status == "FAILED"
    assert "x" not in client.get_run(parent.info.run_id).data.metrics


def test_logging_needs_an_open_run(store: Path) -> None:
    tracker = MlflowTracker()
    with pytest.raises(TrackingError, match="no open run"):
        tracker.log_metrics({"x": 1.0})
    with pytest.raises(TrackingError, match="parent run"), tracker.start_run("x", nested=True):
        pass


def test_explicit_tracking_uri_wins_over_settings(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'other' / 'mlflow.db'}"
    tracker = MlflowTracker("poreml-campaigns", tracking_uri=uri)
    assert tracker.tracking_uri == uri
    assert tracker.artifact_location is None  # the store decides, unless configured
    monkeypatch.setenv("POREML_TRACKING_URI", "http://mlflow.lab:5000")
    remote = MlflowTracker()
    assert remote.tracking_uri == "http://mlflow.lab:5000"
    assert remote.artifact_location is None
    monkeypatch.setenv("POREML_ARTIFACT_LOCATION", "s3://bucket/poreml")
    assert MlflowTracker().artifact_location == "s3://bucket/poreml"


def test_new_experiments_are_marked_as_model_development(store: Path) -> None:
    from poreml.tracking.mlflow_tracker import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG

    tracker = MlflowTracker("kind-new")
    experiment = tracker.client.get_experiment(tracker.experiment_id)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND == "custom_model_development"


def test_existing_experiments_get_the_kind_when_opened_and_a_chosen_kind_is_kept(
    store: Path,
) -> None:
    from poreml.tracking.mlflow_tracker import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG

    client = MlflowTracker("kind-old").client
    old = client.create_experiment("kind-old")  # as made before poreml set the kind
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(old).tags
    assert MlflowTracker("kind-old").experiment_id == old
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND

    chosen = client.create_experiment("kind-chosen", tags={EXPERIMENT_KIND_TAG: "finetuning"})
    assert MlflowTracker("kind-chosen").experiment_id == chosen
    assert client.get_experiment(chosen).tags[EXPERIMENT_KIND_TAG] == "finetuning"


def test_log_run_metrics_adds_a_series_to_a_closed_run(store: Path) -> None:
    tracker = MlflowTracker("closed-run-metrics")
    with tracker.start_run("parent") as run:
        pass
    for step, value in ((1, 0.5), (2, 0.75), (3, float("nan"))):
        tracker.log_run_metrics(run.info.run_id, {"hypervolume": value}, step=step)
    history = tracker.client.get_metric_history(run.info.run_id, "hypervolume")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.75)]


def test_a_dataset_another_run_created_at_the_same_moment_is_logged_again(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    real = mlflow.log_input
    calls: list[int] = []

    def collide_once(*args, **kwargs):  # what the server answers to the second creator
        calls.append(1)
        if len(calls) == 1:
            raise MlflowException(
                'BAD_REQUEST: duplicate key value violates unique constraint "dataset_pk"'
            )
        return real(*args, **kwargs)

    monkeypatch.setattr(mlflow, "log_input", collide_once)
    frame = pd.DataFrame({"porosity": [0.1, 0.2]})
    tracker = MlflowTracker("race")
    with tracker.start_run("r") as run:
        digest = tracker.log_dataset(frame, name="virtual-lab")
    assert digest == dataset_digest(frame) and len(calls) == 2
    logged = MlflowClient().get_run(run.info.run_id).inputs.dataset_inputs
    assert [d.dataset.name for d in logged] == ["virtual-lab"]


def test_other_dataset_errors_are_not_retried(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    calls: list[int] = []

    def refuse(*args, **kwargs):
        calls.append(1)
        raise MlflowException("RESOURCE_DOES_NOT_EXIST: no such run")

    monkeypatch.setattr(mlflow, "log_input", refuse)
    tracker = MlflowTracker("race")
    with pytest.raises(MlflowException), tracker.start_run("r"):
        tracker.log_dataset(pd.DataFrame({"porosity": [0.1]}), name="x")
    assert len(calls) == 1
