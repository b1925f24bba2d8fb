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
import logging
from collections.abc import Collection, Coroutine
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
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
        task = asyncio.ensure_future(self.app(scope, exchange.receive, exchange.send))
        task.add_done_callback(self._release)
        try:
            finished = await exchange.wait(task, self.prediction_timeout)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if finished:
            await task  # re-raises what the app raised, for the server-error handler
            return
        late = PredictionTimeoutError(
            f"no answer within the prediction timeout of {self.prediction_timeout:g} s"
        )
        await self.problem(late, None)(scope, receive, send)

    def _release(self, task: asyncio.Future[None]) -> None:
        self.in_flight -= 1
        if not task.cancelled():
            task.exception()  # retrieved: an abandoned (timed-out) request has no one to raise to


class _Exchange:
    """One request's receive/send, instrumented with the body deadline and response start."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, body_timeout: float) -> None:
        self._receive = receive
        self._send = send
        self.body_timeout = body_timeout
        self.deadline = asyncio.get_running_loop().time() + body_timeout
        self.body_done = asyncio.Event()
        self.started = asyncio.Event()
        self.timed_out = False  # the body was too slow: close the connection after the 408
        self.abandoned = False  # the prediction was too slow: the 504 was sent instead
        headers = Headers(scope=scope)
        if headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers:
            self.body_done.set()

    async def receive(self) -> Message:
        if self.body_done.is_set():
            return await self._receive()
        remaining = self.deadline - asyncio.get_running_loop().time()
        try:
            message = await asyncio.wait_for(self._receive(), timeout=max(remaining, 0.0))
        except asyncio.TimeoutError:
            self.timed_out = True
            raise RequestTimeoutError(
                f"the request body did not arrive within {self.body_timeout:g} s"
            ) from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.body_done.set()
        return message

    async def send(self, message: Message) -> None:
        if self.abandoned:
            return
        if message["type"] == "http.response.start":
            self.started.set()
            if self.timed_out:
                MutableHeaders(scope=message)["Connection"] = "close"
        await self._send(message)

    async def wait(self, task: asyncio.Future[None], prediction_timeout: float) -> bool:
        """True when the app answered in time; False (and the app abandoned) when it did not."""
        await _first(task, self.body_done.wait())
        if task.done():
            return True
        await _first(task, self.started.wait(), timeout=prediction_timeout)
        if task.done() or self.started.is_set():
            return True
        self.abandoned = True
        logger.warning("prediction timeout after %g s; the model call runs on", prediction_timeout)
        return False


async def _first(
    task: asyncio.Future[None], event_wait: Coroutine[Any, Any, Any], timeout: float | None = None
) -> None:
    """Wait until ``task`` ends or the event fires, whichever is first (or the timeout)."""
    waiter = asyncio.ensure_future(event_wait)
    try:
        await asyncio.wait({task, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
