"""Adaptive micro-batching: concurrent queries share one ``predict`` call.

A scikit-learn ``predict`` has a fixed cost per call (input validation, one dispatch per tree)
that dwarfs the cost per row for small requests, so paying it once per batch instead of once per
request is most of the throughput there is. The policy, per process:

- One batch runs at a time, in a worker thread, so the event loop keeps accepting requests (and
  answering ``/health/live``) while the model computes; queries that arrive meanwhile queue up.
  A query that finds nothing running, queued or arriving goes to the thread directly.
- A batch takes the oldest waiting query and every waiting query with the same key (same model
  object, same outputs, same dtype and width), in arrival order, up to ``max_batch_size``
  requests and ``max_rows`` rows. Queries with another key wait for the next batch, so labels
  and probabilities, or float and mixed-type rows, are never stacked together.
- It runs at once when no other POST is on its way in (:class:`ArrivalCounter` counts requests
  whose body is still being received or decoded), so a lone request never waits. Otherwise it
  waits for those arrivals, at most ``max_wait_s`` after its first query was queued.
- If the stacked ``predict`` raises, every query of the batch is predicted on its own, so a
  request with a bad row fails alone instead of poisoning the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import MutableMapping
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

import numpy as np
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from restpredict.errors import NotReadyError
from restpredict.model import LoadedModel, Prediction
from restpredict.payload import Query
from restpredict.settings import Settings

__all__ = ["ArrivalCounter", "BatchKey", "Batcher", "batching_middleware", "make_batcher"]

#: What must be equal for two queries to share a ``predict`` call:
#: (model object id, labels wanted, probabilities wanted, rows dtype, row width).
BatchKey = tuple[int, bool, bool, str, int]
Outcome = Prediction | BaseException
_ARRIVING = "restpredict.arriving"


class _Waiting:
    """One query in the queue, with the future its request awaits."""

    __slots__ = ("future", "key", "model", "query", "queued_at")

    def __init__(
        self, model: LoadedModel, query: Query, key: BatchKey, future: asyncio.Future[Prediction]
    ) -> None:
        self.model = model  # held, so the id in ``key`` cannot be reused while queued
        self.query = query
        self.key = key
        self.future = future
        self.queued_at = time.monotonic()


def batch_key(model: LoadedModel, query: Query) -> BatchKey:
    """Queries with equal keys can be stacked row-wise and predicted in one call."""
    rows = query.rows
    return (id(model), query.labels, query.proba, rows.dtype.str, int(rows.shape[1]))


class Batcher:
    """Queues queries from concurrent requests and predicts them in batches.

    Use it as an async context manager (the app's lifespan does): entering starts the collector
    task, leaving stops it and fails whatever is still queued with NotReadyError (503).
    """

    def __init__(self, *, max_batch_size: int, max_wait_s: float, max_rows: int) -> None:
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_rows = max_rows
        #: POST requests being received that have not queued a query yet.
        self.arriving = 0
        self._queue: list[_Waiting] = []
        self._running: list[_Waiting] = []
        self._busy = False  # a prediction is running in the worker thread
        self._changed: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def __aenter__(self) -> Batcher:
        self.arriving = 0
        self._changed = asyncio.Event()  # bound to this loop: an app may be started twice
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="restpredict-batch")
        self._task = asyncio.get_running_loop().create_task(self._collect())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for waiting in [*self._running, *self._queue]:
            if not waiting.future.done():
                waiting.future.set_exception(NotReadyError("the server is shutting down"))
        self._queue.clear()
        self._running = []
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def predict(self, scope: Scope, model: LoadedModel, query: Query) -> Prediction:
        """Queue ``query`` for ``model`` and wait for its share of a batch prediction."""
        self.arrived(scope)
        if self._task is None or self._task.done() or self._changed is None:
            raise NotReadyError("the prediction queue is not running")
        if not self._busy and not self._queue and self.arriving <= 0:
            return await self._predict_alone(model, query)
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        key = batch_key(model, query)
        self._queue.append(_Waiting(model, query, key, future))
        self._changed.set()
        return await future

    async def _predict_alone(self, model: LoadedModel, query: Query) -> Prediction:
        """Nothing queued, running or arriving: straight to the worker thread, no collector hop."""
        assert self._changed is not None
        self._busy = True
        try:
            outcome = await asyncio.get_running_loop().run_in_executor(
                self._executor, _predict_one, model, query
            )
        finally:
            self._busy = False
            if self._queue:
                self._changed.set()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def arriving_request(self, scope: MutableMapping[str, Any]) -> None:
        """A POST started: count it until it queues a query or finishes."""
        scope[_ARRIVING] = True
        self.arriving += 1

    def arrived(self, scope: MutableMapping[str, Any]) -> None:
        """The request queued its query, or finished without one; idempotent."""
        if scope.pop(_ARRIVING, False):
            self.arriving -= 1
            if self._changed is not None:
                self._changed.set()

    async def _collect(self) -> None:
        """Forever: wait for a query, gather its batch, predict it off the loop, answer."""
        loop = asyncio.get_running_loop()
        assert self._changed is not None
        while True:
            while not self._queue or self._busy:
                self._changed.clear()
                await self._changed.wait()
            batch = self._running = await self._gather()
            if not batch:
                continue
            self._busy = True
            try:
                outcomes: list[Outcome] = await loop.run_in_executor(
                    self._executor, predict_batch, batch
                )
            except Exception as exc:  # not the model's (it is caught per query): keep serving
                outcomes = [exc] * len(batch)
            finally:
                self._busy = False
            self._running = []
            for waiting, outcome in zip(batch, outcomes):
                if waiting.future.done():  # its request was cancelled meanwhile
                    continue
                if isinstance(outcome, BaseException):
                    waiting.future.set_exception(outcome)
                else:
                    waiting.future.set_result(outcome)

    async def _gather(self) -> list[_Waiting]:
        """The next batch: run it when full, when nothing else is arriving, or at the deadline."""
        assert self._changed is not None
        first = self._queue[0]
        deadline = first.queued_at + self.max_wait_s
        while True:
            batch, full = self._matching(first.key)
            remaining = deadline - time.monotonic()
            if full or self.arriving <= 0 or remaining <= 0:
                break
            self._changed.clear()
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        taken = {id(waiting) for waiting in batch}
        self._queue = [w for w in self._queue if id(w) not in taken and not w.future.done()]
        return [waiting for waiting in batch if not waiting.future.done()]

    def _matching(self, key: BatchKey) -> tuple[list[_Waiting], bool]:
        """Queued queries with ``key``, oldest first, within the limits; and whether it is full."""
        batch: list[_Waiting] = []
        rows = 0
        for waiting in self._queue:
            if waiting.key != key:
                continue
            size = len(waiting.query)
            if batch and rows + size > self.max_rows:
                return batch, True
            batch.append(waiting)
            rows += size
            if len(batch) >= self.max_batch_size or rows >= self.max_rows:
                return batch, True
        return batch, False


def predict_batch(batch: list[_Waiting]) -> list[Outcome]:
    """Predict the stacked rows once and split them back; per query if the stack fails."""
    first = batch[0]
    model, query = first.model, first.query
    if len(batch) == 1:
        return [_predict_one(model, query)]
    rows = np.concatenate([waiting.query.rows for waiting in batch])
    try:
        stacked = model.predict(rows, labels=query.labels, proba=query.proba)
    except Exception:
        return [_predict_one(model, waiting.query) for waiting in batch]
    outcomes: list[Outcome] = []
    start = 0
    for waiting in batch:
        end = start + len(waiting.query)
        outcomes.append(_slice(stacked, start, end))
        start = end
    return outcomes


def _predict_one(model: LoadedModel, query: Query) -> Outcome:
    try:
        return model.predict(query.rows, labels=query.labels, proba=query.proba)
    except Exception as exc:  # handed to the request's own future, raised in its handler
        return exc


def _slice(prediction: Prediction, start: int, end: int) -> Prediction:
    return Prediction(
        labels=prediction.labels[start:end] if prediction.labels is not None else None,
        proba=prediction.proba[start:end] if prediction.proba is not None else None,
    )


class ArrivalCounter:
    """ASGI middleware: tells the batcher how many POSTs are on their way to a query.

    A batch waits for these (up to its deadline) rather than leave them for the next one; when
    there are none, it runs at once.
    """

    def __init__(self, app: ASGIApp, batcher: Batcher) -> None:
        self.app = app
        self.batcher = batcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        self.batcher.arriving_request(scope)
        try:
            await self.app(scope, receive, send)
        finally:
            self.batcher.arrived(scope)


def make_batcher(settings: Settings) -> Batcher | None:
    """The batcher the settings ask for; None when batching is off (one predict per request)."""
    if not settings.batching or settings.max_batch_size <= 1:
        return None
    return Batcher(
        max_batch_size=settings.max_batch_size,
        max_wait_s=settings.max_batch_wait_ms / 1000,
        max_rows=settings.max_rows,
    )


def batching_middleware(batcher: Batcher | None) -> list[Middleware]:
    """The arrival counter a batcher needs, for ``Starlette(middleware=...)``."""
    return [Middleware(ArrivalCounter, batcher=batcher)] if batcher is not None else []
