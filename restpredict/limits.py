"""Overload and slow-client protection that answers in JSON: 503, 408 and 504.

``RequestLimits`` wraps every route, so it covers each prediction endpoint however
it is implemented (``run_query``, batching, other protocols):

- a concurrency limit: when ``max_concurrency`` requests are already in flight, the
  next one is refused at once with 503 and ``Retry-After``; exempt paths (health,
  metrics) bypass it and stay fast;
- a body read timeout: the body must be complete within ``body_timeout`` of the
  headers, or the request ends with 408 and the connection is closed;
- a prediction timeout: once the body is in, the response must start within
  ``prediction_timeout``, or the client gets 504. A model call in a thread cannot be
  interrupted, so the request keeps its slot until that call really returns: the
  limit bounds the work actually running, not just the requests still waiting.

Header read timeouts are the connection's business (``connections.py``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Collection

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from restpredict._types import ProblemRenderer
from restpredict.errors import OverloadedError, PredictionTimeoutError, RequestTimeoutError

__all__ = ["RequestLimits"]

logger = logging.getLogger("uvicorn.error")


class RequestLimits:
    """Concurrency limit (503 + Retry-After), body read timeout (408), prediction timeout (504)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_concurrency: int,
        retry_after: int,
        exempt_paths: Collection[str],
        body_timeout: float,
        prediction_timeout: float,
        problem: ProblemRenderer,
    ) -> None:
        self.app = app
        self.max_concurrency = max_concurrency
        self.retry_after = retry_after
        self.exempt = frozenset(exempt_paths)
        self.body_timeout = body_timeout
        self.prediction_timeout = prediction_timeout
        self.problem = problem
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(scope, receive, send, self.body_timeout)
        if scope["path"] in self.exempt:
            await self.app(scope, exchange.receive, exchange.send)
            return
        if self.in_flight >= self.max_concurrency:
            error = OverloadedError(
                f"{self.in_flight} requests are in flight, the limit is {self.max_concurrency}; "
                f"retry in {self.retry_after} s",
            )
            headers = {"Retry-After": str(self.retry_after)}
            await self.problem(error, headers)(scope, receive, send)
            return
        self.in_flight += 1
        exchange.holds_slot = True
        task = asyncio.ensure_future(self.app(scope, exchange.receive, exchange.send))
        task.add_done_callback(functools.partial(self._release, exchange))
        try:
            finished = await exchange.wait(task, self.prediction_timeout)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if finished:
            try:
                await task  # re-raises what the app raised, for the server-error handler
            finally:
                self._release(exchange, task)  # now, not a loop turn later: the slot is free
            return
        late = PredictionTimeoutError(
            f"no answer within the prediction timeout of {self.prediction_timeout:g} s"
        )
        await self.problem(late, None)(scope, receive, send)

    def _release(self, exchange: _Exchange, task: asyncio.Future[None]) -> None:
        if not exchange.holds_slot:
            return
        exchange.holds_slot = False
        self.in_flight -= 1
        if not task.cancelled():
            task.exception()  # retrieved: an abandoned (timed-out) request has no one to raise to


class _Exchange:
    """One request's receive/send, instrumented with the body deadline and response start.

    Plain flags, one future and timer handles rather than events and waiter tasks: this runs
    for every request, and each task it started cost more than the rest of the layer.
    """

    def __init__(self, scope: Scope, receive: Receive, send: Send, body_timeout: float) -> None:
        self._receive = receive
        self._send = send
        self._loop = asyncio.get_running_loop()
        self.body_timeout = body_timeout
        self.deadline = self._loop.time() + body_timeout
        self.body_done = not _has_body(scope)
        self.started = False
        self.timed_out = False  # the body was too slow: close the connection after the 408
        self.abandoned = False  # the prediction was too slow: the 504 was sent instead
        self.holds_slot = False  # counted in RequestLimits.in_flight until released once
        self._waker: asyncio.Future[None] | None = None

    async def receive(self) -> Message:
        if self.body_done:
            return await self._receive()
        remaining = self.deadline - self._loop.time()
        task = asyncio.current_task()
        if remaining <= 0 or task is None:
            raise self._too_slow()
        late = False

        def expire() -> None:
            nonlocal late
            late = True
            task.cancel()

        timer = self._loop.call_later(remaining, expire)
        try:
            message = await self._receive()
        except asyncio.CancelledError:
            if not late:
                raise
            uncancel = getattr(task, "uncancel", None)  # Python 3.11+: this cancel is ours
            if uncancel is not None:
                uncancel()
            raise self._too_slow() from None
        finally:
            timer.cancel()
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.body_done = True
            self._wake()
        return message

    def _too_slow(self) -> RequestTimeoutError:
        self.timed_out = True
        return RequestTimeoutError(
            f"the request body did not arrive within {self.body_timeout:g} s"
        )

    async def send(self, message: Message) -> None:
        if self.abandoned:
            return
        if message["type"] == "http.response.start":
            self.started = True
            self._wake()
            if self.timed_out:
                MutableHeaders(scope=message)["Connection"] = "close"
        await self._send(message)

    async def wait(self, task: asyncio.Future[None], prediction_timeout: float) -> bool:
        """True when the app answered in time; False (and the app abandoned) when it did not."""
        task.add_done_callback(self._wake)
        if not self.body_done and not task.done():
            await self._sleep(None)
        if task.done():
            return True
        if not self.started:
            await self._sleep(prediction_timeout)
        if task.done() or self.started:
            return True
        self.abandoned = True
        logger.warning("prediction timeout after %g s; the model call runs on", prediction_timeout)
        return False

    async def _sleep(self, timeout: float | None) -> None:
        """Until ``_wake`` (the app ended, the body is in, the response started) or the timeout."""
        self._waker = waker = self._loop.create_future()
        timer = None if timeout is None else self._loop.call_later(timeout, self._wake)
        try:
            await waker
        finally:
            self._waker = None
            if timer is not None:
                timer.cancel()

    def _wake(self, *_: object) -> None:
        waker = self._waker
        if waker is not None and not waker.done():
            waker.set_result(None)


def _has_body(scope: Scope) -> bool:
    """Whether a body may follow the headers: a non-zero Content-Length, or chunked."""
    length = None
    for name, value in scope["headers"]:
        if name == b"transfer-encoding":
            return True
        if name == b"content-length" and length is None:
            length = value
    return length is not None and length.decode("latin-1") != "0"
