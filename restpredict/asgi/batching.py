"""Adaptive micro-batching: concurrent queries share one ``predict`` call.

A scikit-learn ``predict`` has a fixed cost per call (input validation, one dispatch per tree)
that dwarfs the cost per row for small requests, so paying it once per batch instead of once per
request is most of the throughput there is. The policy, per process:

- One batch runs at a time; queries that arrive meanwhile queue up. A query that finds nothing
  running, queued or expected is predicted at once, so a lone request never waits (one for the
  event loop passes through the collector first, one loop turn, so that the requests read in
  the same turn join it).
- Every batch runs in the batcher's one worker thread (``PredictThread``), never on the event
  loop: a model that is fast on every input seen so far can still take seconds on the next one,
  and the loop must keep answering ``/health/live`` and sending 504s meanwhile. Running calls
  measured to be fast on the loop itself was tried and dropped: it cannot be made safe, and in
  the benchmark (LR, 1 row, 32 clients) it was not faster than the hand-off.
- A batch takes the oldest waiting query and every waiting query with the same key (same model
  object, same outputs, same dtype and width), in arrival order, up to ``max_batch_size``
  requests and ``max_rows`` rows. Queries with another key wait for the next batch, so labels
  and probabilities, or float and mixed-type rows, are never stacked together.
- It runs when full, or when nothing else is expected, or a wait after its first query was
  queued or the previous batch finished, whichever is later: the wait bounds how long the
  model sits idle for stragglers, and a group that queued behind a running batch still waits
  for the group that batch just answered (else the two would stay out of step, each taking a
  whole call for a part of the clients). Expected are the POSTs whose body is still being
  received or decoded, and the kept-alive connections answered in the last ``EXPECT_WINDOW_S``
  (or the wait, if shorter) that have not sent their next request: under load, clients
  answered together come back together, and the first one back should not take the model
  alone while the others queue behind it. A connection whose request asked to close is not
  expected back; one on a kept-alive connection never waits for itself.
- The wait is ``max_wait_s``, or, for a model whose calls take longer, one call's measured
  time (at most ``FOLLOW_FACTOR`` times ``max_wait_s``), and answered connections stay expected
  as long: a request that misses a batch waits a whole call for the next one anyway, and the
  event loop needs about as long to answer a full batch and read its clients' next requests.
  Measured on a 100-tree forest (8 ms per call) with 32 clients: batches of 16.5 on average
  with a fixed 2 ms, 31.9 with the call-long wait, 1.6x the requests per second.
- Both are counted from the latest return of an answered connection, not from the answer:
  while the group answered together keeps coming back, the rest of it is still on its way
  (the loop reads 32 requests in several milliseconds when it also logs them). Without that,
  the last few of a group missed its batch and waited a whole extra cycle: the slowest
  percent of requests took twice the median. Either way no batch waits longer than
  ``FOLLOW_FACTOR`` times ``max_wait_s`` after its first query queued or the model was freed,
  and no answered connection is expected longer than that after its answer.
- If the stacked ``predict`` raises, every query of the batch is predicted on its own, so a
  request with a bad row fails alone instead of poisoning the others.
- A queued query whose client disconnected leaves the queue at once: its request ends (499)
  and stops counting against admission, and its rows never reach the model. The server
  calls the ``ON_DISCONNECT`` hook the queued request leaves in its scope
  (``server/protocols/base.py``; under another ASGI server queued rows are still predicted).
  A query already handed to the model is computed; its answer is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, MutableMapping
from types import TracebackType
from typing import Any, TypeVar

import numpy as np
from starlette.requests import ClientDisconnect
from starlette.types import Scope

from restpredict.codecs.payload import Query
from restpredict.errors import NotReadyError
from restpredict.model.loading import LoadedModel, Prediction
from restpredict.settings import Settings

__all__ = [
    "ARRIVED",
    "EXPECT_WINDOW_S",
    "FOLLOW_FACTOR",
    "ON_DISCONNECT",
    "BatchKey",
    "Batcher",
    "CallCost",
    "PredictThread",
    "make_batcher",
]

#: What must be equal for two queries to share a ``predict`` call:
#: (model object id, labels wanted, probabilities wanted, rows dtype, row width).
BatchKey = tuple[int, bool, bool, str, int]
#: How long an answered connection counts as about to send its next request. Clients under
#: load come back within a fraction of a millisecond; this bounds the wait when one does not.
EXPECT_WINDOW_S = 0.002
#: A slow model's call-long wait is capped at this many times ``max_wait_s``.
FOLLOW_FACTOR = 10
Outcome = Prediction | BaseException
_ARRIVING = "restpredict.arriving"
#: Scope key of a queued request: a callable taking no argument, for the server to call when
#: the request's client disconnects (the query then leaves the queue). Removed once answered.
ON_DISCONNECT = "restpredict.on_disconnect"
#: Scope key of the ``time.monotonic()`` at which the server began reading the request (set by
#: ``server/protocols/``): a query's wait, as admission sees it, counts from there, since under
#: load much of it is spent before the app runs (tasks waiting for the loop, bodies decoded).
ARRIVED = "restpredict.arrived"


class _Waiting:
    """One query in the queue, with the future its request awaits."""

    __slots__ = ("arrived_at", "client", "future", "key", "model", "query", "queued_at", "size")

    def __init__(
        self,
        model: LoadedModel,
        query: Query,
        key: BatchKey,
        future: asyncio.Future[Prediction],
        client: Hashable | None,
        arrived_at: float | None = None,
    ) -> None:
        self.model = model  # held, so the id in ``key`` cannot be reused while queued
        self.query = query
        #: Its rows: ``len(query)`` once, as the batch is gathered over and over.
        self.size = len(query)
        self.client = client
        self.key = key
        self.future = future
        self.queued_at = time.monotonic()
        #: When the server began reading the request (``ARRIVED``), else when it queued.
        self.arrived_at = self.queued_at if arrived_at is None else arrived_at


def batch_key(model: LoadedModel, query: Query) -> BatchKey:
    """Queries with equal keys can be stacked row-wise and predicted in one call."""
    rows = query.rows
    return (id(model), query.labels, query.proba, rows.dtype.str, int(rows.shape[1]))


class CallCost:
    """What one model's ``predict`` calls have taken: a moving average per call and per row.

    An estimate for ``rows`` scales the average call linearly beyond its average size, which
    over-estimates calls dominated by their fixed cost.
    """

    __slots__ = ("calls", "rows", "seconds")
    _WEIGHT = 0.2  # of the newest call; a stray slow call (a GC pause) fades within a few

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0
        self.rows = 0.0

    def record(self, rows: int, seconds: float) -> None:
        if self.calls == 0:
            self.seconds, self.rows = seconds, float(rows)
        else:
            self.seconds += self._WEIGHT * (seconds - self.seconds)
            self.rows += self._WEIGHT * (rows - self.rows)
        self.calls += 1

    def estimate(self, rows: int) -> float:
        """Seconds a call on ``rows`` rows should take; infinite before any was measured."""
        if self.calls == 0:
            return float("inf")
        return self.seconds * max(1.0, rows / max(self.rows, 1.0))


class Batcher:
    """Queues queries from concurrent requests and predicts them in batches.

    Use it as an async context manager (the app's lifespan does): entering starts the collector
    task, leaving stops it and fails whatever is still queued with NotReadyError (503).
    """

    def __init__(self, *, max_batch_size: int, max_wait_s: float, max_rows: int) -> None:
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_rows = max_rows
        #: How long a batch waits for expected requests, and how long an answered connection
        #: is expected back; both follow the model's measured call time (``record``).
        self.wait_s = max_wait_s
        self.expect_window_s = min(max_wait_s, EXPECT_WINDOW_S)
        #: The longest any batch waits, and any answered connection is expected back.
        self.longest_wait_s = max_wait_s * FOLLOW_FACTOR
        self._returned_at = float("-inf")  # when an answered connection last came back
        #: POST requests being received that have not queued a query yet.
        self.arriving = 0
        self._queue: list[_Waiting] = []
        self._running: list[_Waiting] = []
        self._busy = False  # a prediction is running in the worker thread
        self._freed_at = 0.0  # when the last prediction finished (time.monotonic)
        # Connections answered lately (client address -> when), oldest first in the deque.
        self._answered: dict[Hashable, float] = {}
        self._answered_order: deque[tuple[float, Hashable]] = deque()
        self._costs: dict[int, CallCost] = {}
        self._waker: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: PredictThread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Called with the rows of every model call (``Metrics.observe_batch``).
        self.on_batch: Callable[[int], None] | None = None
        #: Called with each query's wait, from queued to its call starting (admission).
        self.on_wait: Callable[[float], None] | None = None
        #: Called with the moving average of the called model's call time (admission).
        self.on_call: Callable[[float], None] | None = None
        #: A model's own ``max_batch_size`` (``models:``), by model name, below the server's.
        self.model_batch_sizes: dict[str, int] = {}

    async def __aenter__(self) -> Batcher:
        self.arriving = 0
        self._answered.clear()
        self._answered_order.clear()
        self._loop = asyncio.get_running_loop()  # an app may be started twice, on two loops
        self._thread = PredictThread(self._loop)
        self._task = self._loop.create_task(self._collect())
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
        if self._thread is not None:
            self._thread.stop()

    async def predict(self, scope: Scope, model: LoadedModel, query: Query) -> Prediction:
        """Queue ``query`` for ``model`` and wait for its share of a batch prediction."""
        self.arrived(scope)
        if self._task is None or self._task.done() or self._loop is None:
            raise NotReadyError("the prediction queue is not running")
        arrived_at = scope.get(ARRIVED)
        if not self._busy and not self._queue and self.expected() <= 0:
            # Nothing to share the call with: it can start now without blocking anyone.
            return await self._predict_alone(model, query, returning_client(scope), arrived_at)
        future: asyncio.Future[Prediction] = self._loop.create_future()
        client = returning_client(scope)
        waiting = _Waiting(model, query, batch_key(model, query), future, client, arrived_at)
        self._queue.append(waiting)
        scope[ON_DISCONNECT] = functools.partial(self._client_left, waiting)
        self._wake()
        try:
            return await future
        finally:
            scope.pop(ON_DISCONNECT, None)

    def _client_left(self, waiting: _Waiting) -> None:
        """``waiting``'s client disconnected: out of the queue, its request ends (499)."""
        if waiting.future.done() or waiting not in self._queue:
            return  # answered, or its rows are with the model already
        self._queue.remove(waiting)
        waiting.future.set_exception(ClientDisconnect())
        self._wake()  # what the batch being gathered waited for may have changed

    def cost(self, model: LoadedModel) -> CallCost:
        """The measured cost of ``model``'s calls (kept for the few latest models only)."""
        cost = self._costs.get(id(model))
        if cost is None:
            if len(self._costs) >= 256:  # hot reloads replace models: forget old ones
                self._costs.clear()
            cost = self._costs[id(model)] = CallCost()
        return cost

    def record(self, model: LoadedModel, rows: int, seconds: float) -> None:
        """A call on ``model`` took ``seconds``: update its cost and the batches' wait."""
        cost = self.cost(model)
        cost.record(rows, seconds)
        if self.on_call is not None:
            self.on_call(cost.seconds)
        if self.max_wait_s <= 0:  # told never to wait
            return
        self.wait_s = min(max(self.max_wait_s, cost.seconds), self.longest_wait_s)
        self.expect_window_s = min(self.wait_s, max(EXPECT_WINDOW_S, cost.seconds))

    async def _predict_alone(
        self, model: LoadedModel, query: Query, client: Hashable | None, arrived_at: float | None
    ) -> Prediction:
        """Nothing queued, running or expected: straight to the worker thread."""
        assert self._thread is not None
        if self.on_batch is not None:
            self.on_batch(len(query))
        if self.on_wait is not None:
            self.on_wait(0.0 if arrived_at is None else time.monotonic() - arrived_at)
        self._busy = True
        try:
            outcome, seconds = await self._thread.run(_predict_one, model, query)
        finally:
            self._busy = False
            self._freed_at = time.monotonic()
            self.answered(client)  # before the collector looks at what queued meanwhile
            if self._queue:
                self._wake()
        self.record(model, len(query), seconds)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    # Arrivals, as the middleware reports them -------------------------------------------------

    def arriving_request(self, scope: MutableMapping[str, Any]) -> None:
        """A POST started: count it until it queues a query or finishes."""
        scope[_ARRIVING] = True
        self.arriving += 1
        client = _client_key(scope)
        if client is not None and self._answered.pop(client, None) is not None:
            self._returned_at = time.monotonic()

    def arrived(self, scope: MutableMapping[str, Any]) -> None:
        """The request queued its query, or finished without one; idempotent."""
        if scope.pop(_ARRIVING, False):
            self.arriving -= 1
            self._wake()

    def answered(self, client: Hashable | None) -> None:
        """A query was answered: its connection may well send the next one shortly.

        Noted when the batch is split back, before the responses go out: the next batch must
        already count these connections, or it runs before they had a chance to come back.
        """
        if client is None:
            return
        now = time.monotonic()
        self._answered[client] = now
        self._answered_order.append((now, client))

    def refused(self, client: Hashable) -> None:
        """``client``'s request was refused (overload): its connection is not coming back."""
        if self._answered.pop(client, None) is not None:
            self._wake()  # a batch gathering may have waited for it

    def expected(self) -> int:
        """Requests on their way: bodies being received, and connections answered lately."""
        cutoff = self._expected_since(time.monotonic())
        order, answered = self._answered_order, self._answered
        while order and order[0][0] < cutoff:
            when, client = order.popleft()
            if answered.get(client) == when:
                del answered[client]
        return self.arriving + len(answered)

    def _coming_back(self, now: float) -> bool:
        """An answered connection came back within the window: its group is still coming."""
        return now - self._returned_at < self.expect_window_s

    def _expected_since(self, now: float) -> float:
        """Connections answered before this are no longer expected back."""
        window = self.longest_wait_s if self._coming_back(now) else self.expect_window_s
        return now - window

    def _until_expected_expire(self) -> float:
        """Seconds until the oldest answered connection may stop being expected."""
        if not self._answered_order:
            return float("inf")
        now = time.monotonic()
        oldest = self._answered_order[0][0]
        if self._coming_back(now):
            return min(self._returned_at + self.expect_window_s, oldest + self.longest_wait_s) - now
        return oldest + self.expect_window_s - now

    # The collector --------------------------------------------------------------------------

    def _wake(self) -> None:
        waker = self._waker
        if waker is not None and not waker.done():
            waker.set_result(None)

    async def _sleep(self, timeout: float | None) -> None:
        """Until ``_wake`` (a query queued, an arrival, a thread freed) or the timeout."""
        assert self._loop is not None
        self._waker = waker = self._loop.create_future()
        timer = None if timeout is None else self._loop.call_later(timeout, self._wake)
        try:
            await waker
        finally:
            self._waker = None
            if timer is not None:
                timer.cancel()

    async def _collect(self) -> None:
        """Forever: wait for a query, gather its batch, predict it, answer."""
        assert self._thread is not None
        thread = self._thread
        while True:
            while not self._queue or self._busy:
                await self._sleep(None)
            batch = self._running = await self._gather()
            if not batch:
                continue
            model, rows = batch[0].model, sum(waiting.size for waiting in batch)
            if self.on_batch is not None:
                self.on_batch(rows)
            if self.on_wait is not None:
                now = time.monotonic()
                for waiting in batch:
                    self.on_wait(now - waiting.arrived_at)
            try:
                self._busy = True
                try:
                    outcomes, seconds = await thread.run(predict_batch, batch)
                finally:
                    self._busy = False
                self.record(model, rows, seconds)
            except Exception as exc:  # not the model's (it is caught per query): keep serving
                outcomes = [exc] * len(batch)
            self._freed_at = time.monotonic()
            self._running = []
            for waiting, outcome in zip(batch, outcomes):
                if waiting.future.done():  # its request was cancelled meanwhile
                    continue
                if isinstance(outcome, BaseException):
                    waiting.future.set_exception(outcome)
                else:
                    waiting.future.set_result(outcome)
                self.answered(waiting.client)

    async def _gather(self) -> list[_Waiting]:
        """The next batch: run it when full, when nothing else is expected, or at the deadline."""
        first = self._queue[0]
        since = max(first.queued_at, self._freed_at)
        while True:
            limit = self.model_batch_sizes.get(first.model.name, self.max_batch_size)
            batch, full = self._matching(first.key, min(limit, self.max_batch_size))
            # Later while answered connections keep coming back; never past the longest wait.
            deadline = min(max(since, self._returned_at) + self.wait_s, since + self.longest_wait_s)
            remaining = deadline - time.monotonic()
            if full or remaining <= 0 or self.expected() <= 0:
                break
            await self._sleep(min(remaining, self._until_expected_expire()))
        taken = {id(waiting) for waiting in batch}
        self._queue = [w for w in self._queue if id(w) not in taken and not w.future.done()]
        return [waiting for waiting in batch if not waiting.future.done()]

    def _matching(self, key: BatchKey, max_batch_size: int) -> tuple[list[_Waiting], bool]:
        """Queued queries with ``key``, oldest first, within the limits; and whether it is full."""
        batch: list[_Waiting] = []
        rows = 0
        for waiting in self._queue:
            if waiting.key != key:
                continue
            size = waiting.size
            if batch and rows + size > self.max_rows:
                return batch, True
            batch.append(waiting)
            rows += size
            if len(batch) >= max_batch_size or rows >= self.max_rows:
                return batch, True
        return batch, False


class PredictThread:
    """The one thread a batcher's model calls run in, handed work without an executor.

    ``loop.run_in_executor`` wraps each call in two futures, a work item and a condition
    variable; a call here is one queue put and one ``call_soon_threadsafe`` back. The thread
    is a daemon: a model call stuck for minutes does not keep a stopping server alive.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="restpredict-batch", daemon=True)
        self._thread.start()

    def run(self, function: Callable[..., _T], *args: Any) -> asyncio.Future[_T]:
        """Run ``function(*args)`` in the thread; the future resolves on the loop."""
        future: asyncio.Future[_T] = self._loop.create_future()
        self._jobs.put((future, function, args))
        return future

    def stop(self) -> None:
        """Let the thread end after the call it is running, if any."""
        self._jobs.put(None)

    def _work(self) -> None:
        jobs, loop = self._jobs, self._loop
        while (job := jobs.get()) is not None:
            future, function, args = job
            try:
                result = function(*args)
            except BaseException as exc:  # handed to the awaiting request, raised there
                outcome: tuple[bool, Any] = (False, exc)
            else:
                outcome = (True, result)
            try:
                loop.call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:  # the loop closed while the call ran: nobody is waiting
                return


_T = TypeVar("_T")
_Job = tuple["asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    """Resolve ``future`` on the loop, unless its waiter was cancelled meanwhile."""
    if future.done():
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _client_key(scope: Scope) -> Hashable | None:
    """The client address as a dict key: ASGI allows a list (daphne sends one), not hashable."""
    client = scope.get("client")
    return None if client is None else tuple(client)


def returning_client(scope: Scope) -> Hashable | None:
    """The request's client address, unless its connection closes after this answer."""
    client = _client_key(scope)
    if client is None:
        return None
    kept_alive = scope.get("http_version") != "1.0"
    for name, value in scope.get("headers", ()):
        if name == b"connection":
            tokens = value.lower()
            if b"close" in tokens:
                return None
            kept_alive = kept_alive or b"keep-alive" in tokens
    return client if kept_alive else None


def predict_batch(batch: list[_Waiting]) -> tuple[list[Outcome], float]:
    """Predict the stacked rows once and split them back (per query if the stack fails);
    with the seconds the model took."""
    first = batch[0]
    model, query = first.model, first.query
    if len(batch) == 1:
        outcome, seconds = _predict_one(model, query)
        return [outcome], seconds
    rows = np.concatenate([waiting.query.rows for waiting in batch])
    started = time.perf_counter()
    try:
        stacked = model.predict(rows, labels=query.labels, proba=query.proba)
    except Exception:
        singles = [_predict_one(model, waiting.query) for waiting in batch]
        return [outcome for outcome, _ in singles], time.perf_counter() - started
    seconds = time.perf_counter() - started
    outcomes: list[Outcome] = []
    start = 0
    for waiting in batch:
        end = start + waiting.size
        outcomes.append(_slice(stacked, start, end))
        start = end
    return outcomes, seconds


def _predict_one(model: LoadedModel, query: Query) -> tuple[Outcome, float]:
    started = time.perf_counter()
    try:
        outcome: Outcome = model.predict(query.rows, labels=query.labels, proba=query.proba)
    except Exception as exc:  # handed to the request's own future, raised in its handler
        outcome = exc
    return outcome, time.perf_counter() - started


def _slice(prediction: Prediction, start: int, end: int) -> Prediction:
    return Prediction(
        labels=prediction.labels[start:end] if prediction.labels is not None else None,
        proba=prediction.proba[start:end] if prediction.proba is not None else None,
    )


def make_batcher(settings: Settings) -> Batcher | None:
    """The batcher the settings ask for; None when batching is off (one predict per request)."""
    if not settings.batching or settings.max_batch_size <= 1:
        return None
    return Batcher(
        max_batch_size=settings.max_batch_size,
        max_wait_s=settings.max_batch_wait_ms / 1000,
        max_rows=settings.max_rows,
    )
