"""Concurrent ``/v1/predict`` requests answered together, from the event loop.

A single-candidate predict costs the server several times more around the model call (a
DataFrame per request, its selections and copies, the records, a hop to the thread pool)
than in it. :class:`PredictBatcher` takes the validated candidates of every JSON predict
request as it arrives; one task at a time hands all requests waiting at that moment, up to
:data:`~poreml.api.service.CHUNK_ROWS` candidates, to :func:`~poreml.api.service.
predict_many` in the thread pool (one frame, one model call, one set of records) and gives
each request its own part. Requests that arrive while a batch runs form the next one, so
batches grow with the load and nothing waits for a timer: a lone request is answered at once.

Each request's answer is what it would get alone (rows are predicted independently; the
model's numbers agree to rounding, see :mod:`poreml.surrogates.gp`'s fast path), and a model
failure or a non-finite prediction is answered per request as before (503).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool

from poreml.api import service
from poreml.api.errors import ModelUnavailableError

__all__ = ["PredictBatcher"]

_Waiting = tuple[Sequence[Any], "asyncio.Future[Any]"]


class PredictBatcher:
    """Answers predict requests of one served model in shared batches (module doc).

    Use from the event loop only (the routes do); the model runs in the thread pool.

    Args:
        model: the served model.
        max_rows: most candidates per batch (a request larger than this is a batch of its
            own; :class:`~poreml.api.service.ServedModel` chunks it).
    """

    def __init__(self, model: service.ServedModel, max_rows: int = service.CHUNK_ROWS) -> None:
        self.model = model
        self.max_rows = int(max_rows)
        self.batch_sizes: deque[int] = deque(maxlen=1024)  # requests per batch, latest last
        self._waiting: deque[_Waiting] = deque()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def answer(self, candidates: Sequence[Any]) -> list[dict[str, Any]]:
        """The prediction records of one request's candidates.

        Raises:
            ModelUnavailableError: the model failed, or returned a non-finite number for one
                of these candidates.
        """
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (a test client's): start afresh
            self._loop, self._waiting, self._task = loop, deque(), None
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((candidates, future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._serve())
        answer = await future
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def _serve(self) -> None:
        """Run batches until no request waits."""
        while self._waiting:
            batch = [self._waiting.popleft()]
            rows = len(batch[0][0])
            while self._waiting and rows + len(self._waiting[0][0]) <= self.max_rows:
                batch.append(self._waiting.popleft())
                rows += len(batch[-1][0])
            self.batch_sizes.append(len(batch))
            requests = [candidates for candidates, _ in batch]
            try:
                answers: list[Any] = await run_in_threadpool(
                    service.predict_many, self.model, requests
                )
            except asyncio.CancelledError:  # the loop is shutting down: so are the requests
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as err:  # not the model's own failure: still a 503, not a 500
                failure = ModelUnavailableError(
                    f"the server failed on a batch of {rows} candidate(s): "
                    f"{type(err).__name__}: {err}"
                )
                failure.__cause__ = err
                answers = [failure] * len(batch)
            for (_, future), answer in zip(batch, answers, strict=True):
                if not future.done():  # the request may have been cancelled meanwhile
                    future.set_result(answer)
