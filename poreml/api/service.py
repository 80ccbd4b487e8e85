"""What the API does, without HTTP: load the model, predict, screen, format answers.

The routes in :mod:`poreml.api.routes` only call these functions. Nothing loops over
candidates in Python: a request's candidates become one DataFrame, the surrogate predicts them
in as few calls as possible (one per :data:`CHUNK_ROWS` rows, shared with concurrent requests,
see :class:`ServedModel`), Pareto ranks and feasibility probabilities are array operations
(:mod:`poreml.api.ranking`), and the answer is assembled from columns.
"""

from __future__ import annotations

import io
import math
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from poreml.api.errors import InvalidRequestError, ModelUnavailableError, TooManyCandidatesError
from poreml.api.ranking import probability_feasible
from poreml.data.schema import COLUMNS, DESIGN_COLUMNS, MEASURED_COLUMNS, ROUTES
from poreml.design.objectives import Objective, OutcomeConstraint
from poreml.design.pareto import pareto_ranks
from poreml.settings import Settings
from poreml.surrogates import explain as shapley
from poreml.surrogates.features import LOG_FEATURES
from poreml.tracking import artifacts
from poreml.tracking.artifacts import ModelArtifact, ModelMetadata
from poreml.tracking.registry import resolve_model_uri

__all__ = [
    "CHUNK_ROWS",
    "INTERVAL_LEVEL",
    "Predictions",
    "ServedModel",
    "candidates_frame",
    "explain",
    "load_model",
    "predict",
    "predict_many",
    "predictions_csv",
    "screen",
    "served_model",
]

INTERVAL_LEVEL = 0.9
"""Coverage of the ``lower``/``upper`` interval in every answer."""

_STATS = ("mean", "std", "lower", "upper")

CHUNK_ROWS = 2048
"""Most rows per model call (see :class:`ServedModel`)."""


@dataclass(frozen=True)
class Predictions:
    """Predictions for a batch of candidates, as arrays.

    Attributes:
        targets: predicted columns, in the order of the last axis.
        mean, std, lower, upper: float arrays of shape ``(n, len(targets))`` in contract units;
            ``lower``/``upper`` bound the central :data:`INTERVAL_LEVEL` interval.
        in_domain: bool array ``(n,)``: inside the training domain of the model.
        domain_distance: float array ``(n,)``: distance to the training data relative to the
            model's calibrated threshold (``<= 1`` within it;
            :meth:`~poreml.surrogates.base.Surrogate.domain_distance`).
        conditioned_on: object array ``(n,)``: per candidate the list of measured columns the
            model conditioned on (CONTRACT.md §4.1; empty list when none).
    """

    targets: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    in_domain: np.ndarray
    domain_distance: np.ndarray
    conditioned_on: np.ndarray

    def column(self, target: str) -> int:
        """Index of ``target`` on the last axis."""
        return self.targets.index(target)


@dataclass(frozen=True)
class ServedModel:
    """The surrogate the API serves, with what ``GET /v1/model`` reports.

    :meth:`predict` may be called from many threads at once (FastAPI's thread pool). Model
    calls are serialised: surrogates are not documented as thread-safe (GPyTorch settings are
    process-global) and each call already uses every core through torch. Concurrent requests
    are combined: whichever thread holds the model runs every waiting request in one call, up
    to :data:`CHUNK_ROWS` rows. A surrogate's cost per call is mostly fixed (input checks,
    encoding), so 32 clients asking for one candidate each cost about one call, not 32.
    Requests larger than :data:`CHUNK_ROWS` are predicted chunk by chunk, taking turns with
    the others, which bounds peak memory for models whose cost grows faster than the batch
    (an exact GP's test covariance) and lets small requests through during a long screen.

    Attributes:
        surrogate: a fitted :class:`~poreml.surrogates.base.Surrogate`.
        info: the ``GET /v1/model`` answer (see :class:`~poreml.api.schemas.ModelInfo`).
    """

    surrogate: Any
    info: Mapping[str, Any]
    _model_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _queue_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _queue: deque[_Job] = field(default_factory=deque, repr=False)

    @property
    def version(self) -> str:
        """Model version, echoed as ``model_version``."""
        return str(self.info["version"])

    @property
    def targets(self) -> tuple[str, ...]:
        """Predicted columns."""
        return tuple(self.info["targets"])

    def predict(self, frame: pd.DataFrame) -> Predictions:
        """Predict every row of ``frame`` (thread-safe; see the class doc).

        Args:
            frame: the design columns (validated, defaults filled), one row per candidate,
                and any measured columns (NaN where a candidate did not send one).

        Returns:
            The :class:`Predictions`, rows in the order of ``frame``.

        Raises:
            ModelUnavailableError: the model raised, or returned non-finite numbers.
        """
        job = self._predicted(frame)
        if job.error is not None:
            raise job.error
        problem = _nonfinite(job.values, self.targets)
        if problem is not None:
            raise problem
        return job.predictions(self.targets)

    def _predicted(self, frame: pd.DataFrame) -> _Job:
        """The finished :class:`_Job` of ``frame``'s rows (its ``error`` set if the model
        failed); predictions are not checked for finiteness here."""
        # The frame goes to the model as it is: the surrogate reads the columns it needs
        # (selecting them here would copy the frame, which costs more than a one-row predict).
        job = _Job(frame, len(self.targets))
        with self._queue_lock:
            self._queue.append(job)
        while not job.finished:
            with self._model_lock:
                # Nothing runs while this thread holds the model: a request still unfinished
                # here has rows left in the queue, so every turn makes progress.
                if not job.finished:
                    self._run(self._next_rows())
        return job

    def _next_rows(self) -> list[tuple[_Job, int, int]]:
        """Take up to :data:`CHUNK_ROWS` rows from the queue: ``(job, start, stop)`` pieces.

        Jobs are served in turn: a job with rows left goes back to the end of the queue.
        """
        pieces: list[tuple[_Job, int, int]] = []
        rows = 0
        with self._queue_lock:
            while self._queue and rows < CHUNK_ROWS:
                job = self._queue.popleft()
                if job.taken >= job.n:  # failed while waiting for its turn
                    continue
                stop = min(job.n, job.taken + CHUNK_ROWS - rows)
                pieces.append((job, job.taken, stop))
                rows += stop - job.taken
                job.taken = stop
                if job.taken < job.n:
                    self._queue.append(job)
        return pieces

    def _run(self, pieces: list[tuple[_Job, int, int]]) -> None:
        """Predict the rows of ``pieces`` in one model call and hand each job its part."""
        parts = [
            job.X if stop - start == job.n else job.X.iloc[start:stop]
            for job, start, stop in pieces
        ]
        # Requests that sent different measured columns concatenate with NaN (not measured).
        X = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        try:
            # The request models have validated every value and the frame holds every design
            # column, so the surrogate skips its own (pandera) checks on this path.
            arrays = self.surrogate.predict_arrays(X, level=INTERVAL_LEVEL, check_input=False)
            order = [arrays.targets.index(t) for t in self.targets]
            values = {stat: getattr(arrays, stat)[:, order] for stat in _STATS}
            in_domain = arrays.in_domain
            distance = arrays.domain_distance
            conditioned = _as_lists(arrays.conditioned_on)
        except Exception as err:
            failure = ModelUnavailableError(
                f"the model failed on a batch of {len(X)} candidate(s): {type(err).__name__}: {err}"
            )
            failure.__cause__ = err
            for job, _, _ in pieces:
                job.fail(failure)
            return
        offset = 0
        for job, start, stop in pieces:
            rows = slice(offset, offset + stop - start)
            job.fill(
                start,
                stop,
                {k: v[rows] for k, v in values.items()},
                in_domain[rows],
                distance[rows],
                conditioned[rows],
            )
            offset += stop - start


def _as_lists(texts: np.ndarray) -> np.ndarray:
    """``;``-joined column names as an object array of lists, one list per distinct text."""
    unique, which = np.unique(texts, return_inverse=True)
    # An object array of lists (np.array of equal-length lists would be 2-D).
    lists = np.empty(len(unique), dtype=object)
    lists[:] = [text.split(";") if text else [] for text in unique]
    return lists[which.reshape(-1)]


class _Job:
    """One request's rows waiting for, or being filled by, model calls."""

    def __init__(self, X: pd.DataFrame, n_targets: int) -> None:
        self.X = X
        self.n = len(X)
        self.taken = 0  # rows handed to a model call so far
        self.done = 0  # rows with predictions
        self.values = {stat: np.empty((self.n, n_targets)) for stat in _STATS}
        self.in_domain = np.empty(self.n, dtype=bool)
        self.domain_distance = np.empty(self.n, dtype=np.float64)
        self.conditioned_on = np.empty(self.n, dtype=object)
        self.error: ModelUnavailableError | None = None

    @property
    def finished(self) -> bool:
        """Every row predicted, or a model call failed."""
        return self.error is not None or self.done == self.n

    def fill(
        self,
        start: int,
        stop: int,
        values: Mapping[str, np.ndarray],
        in_domain: np.ndarray,
        domain_distance: np.ndarray,
        conditioned_on: np.ndarray,
    ) -> None:
        """Store predictions of rows ``start:stop``."""
        for stat, block in values.items():
            self.values[stat][start:stop] = block
        self.in_domain[start:stop] = in_domain
        self.domain_distance[start:stop] = domain_distance
        self.conditioned_on[start:stop] = conditioned_on
        self.done += stop - start

    def fail(self, error: ModelUnavailableError) -> None:
        """Record a failed model call; the job's remaining rows are not predicted."""
        self.error = error
        self.taken = self.n

    def predictions(self, targets: tuple[str, ...]) -> Predictions:
        """The finished job as :class:`Predictions` (rows as predicted, finite or not)."""
        return Predictions(
            targets,
            in_domain=self.in_domain,
            domain_distance=self.domain_distance,
            conditioned_on=self.conditioned_on,
            **self.values,
        )


def _nonfinite(
    values: Mapping[str, np.ndarray], targets: Sequence[str], rows: slice = slice(None)
) -> ModelUnavailableError | None:
    """The error a request gets when the model returned a non-finite number for one of its
    ``rows`` (candidates counted from the first of them), else None."""
    for stat, block in values.items():
        bad = ~np.isfinite(block[rows])
        if bad.any():
            row, col = (int(v) for v in np.argwhere(bad)[0])
            return ModelUnavailableError(
                f"the model returned a non-finite {stat} for {targets[col]} "
                f"(candidate {row} and {int(bad.any(axis=1).sum()) - 1} more)"
            )
    return None


# --------------------------------------------------------------------------------------------
# Loading


def load_model(settings: Settings) -> ServedModel:
    """Load the model named by the settings: ``model_uri`` if set, else ``model_dir``.

    An alias URI (``models:/NAME@ALIAS``) is pinned to the version the alias names now, so the
    server reports, and keeps serving, that version when the alias moves later.

    Raises:
        PoremlError: nothing loadable there (the message says what was looked for and how to
            fix it).
    """
    if settings.model_uri:
        tracking_uri = settings.resolved_tracking_uri
        pinned = resolve_model_uri(settings.model_uri, tracking_uri)
        return served_model(artifacts.load_uri(pinned, tracking_uri))
    return served_model(artifacts.load_folder(settings.model_dir))


def served_model(model: Any) -> ServedModel:
    """``model`` as a :class:`ServedModel`: returned as is, or an artifact or surrogate wrapped,
    its caches built now (:meth:`~poreml.surrogates.base.Surrogate.warm_up`) so that the first
    request does not pay for them.

    Args:
        model: a :class:`ServedModel`, a :class:`~poreml.tracking.artifacts.ModelArtifact`, or
            a fitted surrogate (served without metadata: unversioned).
    """
    if isinstance(model, ServedModel):
        return model
    artifact = model if isinstance(model, ModelArtifact) else ModelArtifact(model)
    source = artifact.source or f"in-process {type(artifact.surrogate).__name__}"
    artifact.surrogate.warm_up()
    return ServedModel(artifact.surrogate, _info(artifact.surrogate, artifact.metadata, source))


def _info(surrogate: Any, meta: ModelMetadata, source: str) -> dict[str, Any]:
    """The ``GET /v1/model`` answer: trained ranges from the surrogate's fitted domain,
    identity and training data from ``meta``."""
    domain = surrogate.domain_
    ranges: dict[str, dict[str, Any]] = {}
    for name in DESIGN_COLUMNS:
        col = COLUMNS[name]
        entry: dict[str, Any] = {
            "unit": col.unit,
            "contract_low": col.bounds[0] if col.bounds else None,
            "contract_high": col.bounds[1] if col.bounds else None,
            "trained_low": None,
            "trained_high": None,
        }
        if name == "route":
            entry["trained_values"] = [ROUTES[i] for i in domain.routes]
        else:
            lo, hi = domain.low.get(name, math.nan), domain.high.get(name, math.nan)
            if not (math.isnan(lo) or math.isnan(hi)):
                log = name in LOG_FEATURES  # the domain keeps log-scale columns in log10
                entry["trained_low"] = 10.0**lo if log else lo
                entry["trained_high"] = 10.0**hi if log else hi
        ranges[name] = entry
    rows = meta.training.rows
    return {
        "name": meta.model_name,
        "version": meta.version or "unversioned",
        "model_type": str(getattr(surrogate, "name", type(surrogate).__name__)),
        "targets": list(surrogate.targets_),
        "design_columns": ranges,
        "training_rows": int(surrogate.n_train_ if rows is None else rows),
        "training_data_sha256": meta.training.sha256,
        "interval_level": INTERVAL_LEVEL,
        "source": source,
    }


# --------------------------------------------------------------------------------------------
# Requests


def candidates_frame(
    candidates: Sequence[Any],
    max_candidates: int,
    setting: str = "POREML_API_MAX_CANDIDATES",
) -> pd.DataFrame:
    """The validated candidates of a request as one DataFrame.

    Args:
        candidates: :class:`~poreml.api.schemas.DesignCandidate` objects (defaults filled).
        max_candidates: the server's cap.
        setting: the environment variable that sets the cap (named in the 413 message).

    Returns:
        Columns ``candidate_id`` (object, None where not sent), the design columns in
        contract order (``route`` as str, the rest float64), then the measured columns that
        at least one candidate sent (float64, NaN where not sent; CONTRACT.md §4.1); index
        ``0..n-1``.

    Raises:
        TooManyCandidatesError: more than ``max_candidates`` candidates.
    """
    n = len(candidates)
    if n > max_candidates:
        raise TooManyCandidatesError(n, max_candidates, setting)
    # object dtype keeps None for ids not sent (a str column would turn them into NaN).
    data: dict[str, Any] = {
        "candidate_id": pd.Series([c.candidate_id for c in candidates], dtype=object)
    }
    for name in DESIGN_COLUMNS:
        values = [getattr(c, name) for c in candidates]
        data[name] = values if name == "route" else np.asarray(values, dtype=np.float64)
    for name in MEASURED_COLUMNS:
        values = [getattr(c, name, None) for c in candidates]
        if any(v is not None for v in values):
            data[name] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return pd.DataFrame(data)


def predict(model: ServedModel, frame: pd.DataFrame) -> tuple[pd.DataFrame, Predictions]:
    """Predict the candidates of ``frame`` (from :func:`candidates_frame`).

    Returns:
        ``(frame, predictions)``; ``frame`` gains an ``index`` column (request position) and
        loses the measured columns (the answer says which it used: ``conditioned_on``).
    """
    out = _answer_frame(frame)
    out.insert(1, "index", np.arange(len(frame)))
    return out, model.predict(frame)


def predict_many(
    model: ServedModel, requests: Sequence[Sequence[Any]]
) -> list[list[dict[str, Any]] | ModelUnavailableError]:
    """Answer several ``/v1/predict`` requests with one frame and one model call.

    What each request gets is what :func:`predict` and :func:`prediction_records` give it on
    its own (``index`` counts its own candidates; measured columns another request sent are
    NaN, not measured, for it), but the frame building, the model call and the record
    building are paid once for the batch: for single-candidate requests they cost several
    times the model's share (:mod:`poreml.api.batching`).

    Args:
        model: the served model.
        requests: each request's validated candidates (the server's cap already checked).

    Returns:
        Per request, in order, its prediction records, or the :class:`ModelUnavailableError`
        it is answered with (every request when the model failed; only the requests with a
        non-finite prediction otherwise).
    """
    sizes = [len(candidates) for candidates in requests]
    frame = candidates_frame([c for candidates in requests for c in candidates], sum(sizes))
    job = model._predicted(frame)
    if job.error is not None:
        return [job.error] * len(requests)
    out = _answer_frame(frame)
    out.insert(1, "index", np.concatenate([np.arange(n) for n in sizes]))
    records = prediction_records(out, job.predictions(model.targets))
    answers: list[list[dict[str, Any]] | ModelUnavailableError] = []
    start = 0
    for n in sizes:
        rows = slice(start, start + n)
        answers.append(_nonfinite(job.values, model.targets, rows) or records[rows])
        start += n
    return answers


def _answer_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without its measured columns (inputs the answer does not echo)."""
    return frame.drop(columns=[c for c in MEASURED_COLUMNS if c in frame.columns])


def screen(
    model: ServedModel,
    frame: pd.DataFrame,
    objectives: Sequence[Objective],
    constraints: Sequence[OutcomeConstraint],
    top_k: int,
) -> tuple[pd.DataFrame, Predictions]:
    """Rank candidates by Pareto rank of the predicted means, keep the best ``top_k``.

    Ranking: Pareto rank under the predicted means of the objectives (1 = front), ties broken
    by ``probability_feasible`` (highest first), then by request order.

    Args:
        model: the served model.
        frame: candidates from :func:`candidates_frame`.
        objectives: at least one; each a target the model predicts.
        constraints: outcome constraints on targets the model predicts (may be empty).
        top_k: how many candidates to keep (all when larger than the batch).

    Returns:
        ``(frame, predictions)`` of the kept candidates, best first; ``frame`` gains ``index``,
        ``pareto_rank`` and ``probability_feasible`` columns.

    Raises:
        InvalidRequestError: an objective or constraint names a column the model does not
            predict.
        ModelUnavailableError: the model failed.
    """
    for kind, items in (("objectives", objectives), ("constraints", constraints)):
        for item in items:
            if item.name not in model.targets:
                raise InvalidRequestError(
                    f"{kind}.{item.name}",
                    item.name,
                    f"a column the served model predicts: {', '.join(model.targets)}",
                )
    pred = model.predict(frame)
    signed = np.column_stack([o.sign * pred.mean[:, pred.column(o.name)] for o in objectives])
    ranks = pareto_ranks(signed, n_needed=top_k)
    cols = [pred.column(c.name) for c in constraints]
    p_feasible = probability_feasible(
        pred.mean[:, cols],
        pred.std[:, cols],
        np.array([c.sign for c in constraints]),
        np.array([c.bound for c in constraints]),
    )
    # Unranked rows (rank 0: beyond the fronts needed for top_k) sort last.
    sort_rank = np.where(ranks > 0, ranks, np.iinfo(np.int64).max)
    order = np.lexsort((np.arange(len(frame)), -p_feasible, sort_rank))[:top_k]
    out = _answer_frame(frame).iloc[order].reset_index(drop=True)
    out.insert(1, "index", order)
    out["pareto_rank"] = ranks[order]
    out["probability_feasible"] = p_feasible[order]
    kept = Predictions(
        pred.targets,
        pred.mean[order],
        pred.std[order],
        pred.lower[order],
        pred.upper[order],
        pred.in_domain[order],
        pred.domain_distance[order],
        pred.conditioned_on[order],
    )
    return out, kept


# --------------------------------------------------------------------------------------------
# Answers


def prediction_records(frame: pd.DataFrame, pred: Predictions) -> list[dict[str, Any]]:
    """One JSON object per candidate: the columns of ``frame``, then per target
    ``{"mean", "std", "lower", "upper"}``, then ``conditioned_on``, ``domain_distance`` and
    ``in_domain``.

    Built column-wise (``tolist`` per column, one ``zip`` over rows), so ten thousand
    candidates cost milliseconds.
    """
    columns = list(frame.columns)
    values = [_plain_list(frame[c]) for c in columns]
    per_target = [
        [
            {"mean": m, "std": s, "lower": lo, "upper": hi}
            for m, s, lo, hi in zip(
                pred.mean[:, j].tolist(),
                pred.std[:, j].tolist(),
                pred.lower[:, j].tolist(),
                pred.upper[:, j].tolist(),
                strict=True,
            )
        ]
        for j in range(len(pred.targets))
    ]
    names = columns + list(pred.targets) + ["conditioned_on", "domain_distance", "in_domain"]
    rows = zip(
        *values,
        *per_target,
        [list(c) for c in pred.conditioned_on],
        pred.domain_distance.tolist(),
        pred.in_domain.tolist(),
        strict=True,
    )
    return [dict(zip(names, row, strict=True)) for row in rows]


def predictions_csv(frame: pd.DataFrame, pred: Predictions) -> str:
    """The same rows as CSV: ``frame``'s columns, ``domain_distance``, ``in_domain``,
    ``conditioned_on`` (``;``-joined), then ``<target>_<stat>``."""
    table = frame.copy()
    table["domain_distance"] = pred.domain_distance
    table["in_domain"] = pred.in_domain
    table["conditioned_on"] = [";".join(c) for c in pred.conditioned_on]
    for j, t in enumerate(pred.targets):
        for stat in _STATS:
            table[f"{t}_{stat}"] = getattr(pred, stat)[:, j]
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def _plain_list(series: pd.Series) -> list[Any]:
    """Column values as plain Python objects (numpy scalars -> int/float/str/None)."""
    if series.dtype == object:
        return series.tolist()
    return series.to_numpy().tolist()


# --------------------------------------------------------------------------------------------
# Explanations


def explain(model: ServedModel, frame: pd.DataFrame) -> dict[str, Any]:
    """The ``POST /v1/explain`` answer: additive Shapley explanations of the predicted means.

    The mean function is the served model's own (:meth:`ServedModel.predict`) over the design
    columns: measured columns a candidate carries are ignored here (the contributions are of
    design columns, CONTRACT.md §4.1), so the numbers add up to the ``mean`` that
    ``/v1/predict`` answers for the design alone, and the explanation's model calls
    take turns with other requests. Cost: ``2**9 * BACKGROUND_SIZE`` model rows per candidate
    (:mod:`poreml.surrogates.explain`).

    Args:
        model: the served model.
        frame: candidates from :func:`candidates_frame`.

    Returns:
        ``{"model_version", "method", "explanations"}``; one object per candidate with
        ``candidate_id``, ``index`` and per target ``{"base_value", "contributions"}``.

    Raises:
        ModelUnavailableError: the model failed, or its explanation did not add up.
    """
    designs = frame[list(DESIGN_COLUMNS)]
    try:
        result = shapley.explain(
            model.surrogate,
            designs,
            mean_function=lambda X: model.predict(X).mean,
        )
    except shapley.ExplanationError as err:
        raise ModelUnavailableError(f"the model could not be explained: {err}") from err
    explanations: list[dict[str, Any]] = []
    ids = frame["candidate_id"].tolist()
    base = result.base_values.tolist()
    for i, cid in enumerate(ids):
        entry: dict[str, Any] = {"candidate_id": cid, "index": i}
        for j, target in enumerate(result.targets):
            entry[target] = {
                "base_value": base[i][j],
                "contributions": dict(
                    zip(result.columns, result.contributions[i, :, j].tolist(), strict=True)
                ),
            }
        explanations.append(entry)
    return {"model_version": model.version, "method": result.method, "explanations": explanations}
