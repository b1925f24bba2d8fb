"""Overload and slow-client protection that answers in JSON: 503, 408 and 504.

``RequestLimits`` wraps every route, so it covers each prediction endpoint however
it is implemented (``run_query``, batching, other protocols):

- admission (``asgi/admission.py``): a request that would wait over the queueing-delay
  target under overload, or that finds ``max_concurrency`` requests in flight, is refused
  at once with 503 and ``Retry-After``; exempt paths (health, metrics) bypass it and stay
  fast. The server's protocol asks the same question earlier and more cheaply, so under
  the server this layer refuses only what got past it (a burst within one loop turn);
- a body read timeout: the body must be complete within ``body_timeout`` of the
  headers, or the request ends with 408 and the connection is closed;
- a prediction timeout: once the body is in, the response must start within
  ``prediction_timeout``, or the client gets 504. A model call in a thread cannot be
  interrupted, so the request keeps its slot until that call really returns: the
  limit bounds the work actually running, not just the requests still waiting.
  Admin operations (``admin_operation``: a reload, a repository load or unload) have
  ``reload_timeout`` instead: loading a large model can take longer than a prediction should.

Header read timeouts are the connection's business (``server/protocols/``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from restpredict.asgi.admission import Admission
from restpredict.asgi.types import ProblemRenderer
from restpredict.errors import PredictionTimeoutError, ReloadTimeoutError, RequestTimeoutError

__all__ = ["RequestLimits", "abandoned_failed", "admin_operation"]

logger = logging.getLogger("uvicorn.error")


class RequestLimits:
    """Admission (503 + Retry-After), body read timeout (408), prediction timeout (504).

    Everything runs in the request's own task, and one sweeper timer per layer, not a timer or
    a task per request, watches the deadlines: this runs for every request, and those cost more
    than the rest of the layer. When the prediction deadline passes before the response
    started, the 504 is sent from a task made only then, and the app's own answer is dropped
    when it finally comes.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        admission: Admission,
        body_timeout: float,
        prediction_timeout: float,
        reload_timeout: float,
        problem: ProblemRenderer,
    ) -> None:
        self.app = app
        self.admission = admission
        self.retry_after = admission.retry_after
        self.exempt = admission.exempt
        self.body_timeout = body_timeout
        self.prediction_timeout = prediction_timeout
        self.reload_timeout = reload_timeout
        self.problem = problem
        # Deadlines are checked this often: a tenth of the shorter timeout, within reason.
        self.tick = min(max(min(body_timeout, prediction_timeout) / 10, 0.01), 0.5)
        self._watched: set[_Exchange] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exempt = scope["path"] in self.exempt
        admission = self.admission
        if not exempt and admission.refusing(admission.admitted):
            client = scope.get("client")
            client_key = None if client is None else tuple(client)
            refusal = admission.refusal(scope["path"], admission.admitted, client_key)
            if refusal is not None:
                headers = {"Retry-After": str(self.retry_after)}
                await self.problem(refusal, headers)(scope, receive, send)
                return
        exchange = self.watch(scope, receive, send, exempt)
        if exempt:
            try:
                await self.app(scope, exchange.receive, exchange.send)
            finally:
                self._watched.discard(exchange)
            return
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except Exception:
            if not exchange.abandoned:
                raise
            abandoned_failed()
        finally:
            await self.release(exchange)

    def admits(self, scope: Scope) -> bool:
        """Whether this request certainly passes admission now, with a deadline to watch: not
        an exempt path, and nothing is being refused (``refusing`` is cheap and usually False).
        """
        return scope["path"] not in self.exempt and not self.admission.refusing(
            self.admission.admitted
        )

    def watch(self, scope: Scope, receive: Receive, send: Send, exempt: bool = False) -> _Exchange:
        """Start watching this request's deadlines (its receive and send go through the
        result); one not ``exempt`` also takes its admission slot, until ``release``."""
        loop = asyncio.get_running_loop()
        exchange = _Exchange(self, scope, receive, send, loop.time(), exempt)
        self._watched.add(exchange)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self.tick, self._sweep, loop)
        if not exempt:
            self.admission.admitted += 1
        return exchange

    async def release(self, exchange: _Exchange) -> None:
        """An admitted request's app returned or raised: free its slot, stop watching it, and
        send its 504 if one is due."""
        # The slot is held until the app really returns: the limit bounds the work actually
        # running, not just the requests still waiting.
        self.admission.admitted -= 1
        self._watched.discard(exchange)
        late = exchange.late_answer
        if late is not None:
            # The 504 is this request's one response: it must be out before the request ends,
            # or the server would answer a response-less request with its own 500 and then
            # see the 504 as a second start.
            await late

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Enforce the deadlines that have passed; keep sweeping while requests are watched."""
        self._sweeper = None
        now = loop.time()
        for exchange in list(self._watched):
            if exchange.check(now):
                self._watched.discard(exchange)
        if self._watched:
            self._sweeper = loop.call_later(self.tick, self._sweep, loop)


def abandoned_failed() -> None:
    """Log what the app raised for a request already answered with its 504."""
    # The client has its 504 and the connection may serve others by now: what the late call
    # raised is for the log only.
    logger.exception("a prediction that timed out failed later")


class _Exchange:
    """One request's receive/send, with its body deadline and prediction deadline.

    Made for every request, so its hot path only sets flags. Whatever can wait (does a body
    follow the headers at all? which deadline applies?) is worked out in ``check``, which runs
    only for requests still going when the sweeper comes by.
    """

    __slots__ = (
        "_limits",
        "_receive",
        "_receiving",
        "_scope",
        "_send",
        "abandoned",
        "arrived",
        "body_done",
        "body_done_at",
        "exempt",
        "late_answer",
        "started",
        "timed_out",
    )

    def __init__(
        self,
        limits: RequestLimits,
        scope: Scope,
        receive: Receive,
        send: Send,
        arrived: float,
        exempt: bool,
    ) -> None:
        self._limits = limits
        self._scope = scope
        self._receive = receive
        self._send = send
        self.arrived = arrived
        self.exempt = exempt  # exempt paths have no prediction deadline
        self._receiving: asyncio.Task[Any] | None = None  # the task waiting in receive()
        self.late_answer: asyncio.Task[None] | None = None
        self.started = False
        self.timed_out = False  # the body was too slow: close the connection after the 408
        self.abandoned = False  # the prediction was too slow: the 504 was sent instead
        self.body_done = False
        self.body_done_at = 0.0

    def check(self, now: float) -> bool:
        """Act on a passed deadline; True once nothing is left to watch."""
        if self.started or self.abandoned:
            return True
        limits = self._limits
        if not self.body_done:
            if self._receiving is None and not _has_body(self._scope):
                self.body_done, self.body_done_at = True, self.arrived  # and none will come
            else:
                if self._receiving is not None and now >= self.arrived + limits.body_timeout:
                    self.timed_out = True
                    self._receiving.cancel()
                return False
        if self.exempt:
            return True
        admin = admin_operation(self._scope["path"])
        timeout = limits.reload_timeout if admin else limits.prediction_timeout
        if now < self.body_done_at + timeout:
            return False
        self.abandoned = True
        if admin:
            logger.warning("reload timeout after %g s; the reload runs on", timeout)
        else:
            logger.warning("prediction timeout after %g s; the model call runs on", timeout)
        self.late_answer = asyncio.get_running_loop().create_task(self._answer_late(admin))
        return True

    async def _answer_late(self, admin: bool) -> None:
        late: ReloadTimeoutError | PredictionTimeoutError
        if admin:
            late = ReloadTimeoutError(
                f"no answer within the reload timeout of {self._limits.reload_timeout:g} s; "
                "the reload or load runs on"
            )
        else:
            late = PredictionTimeoutError(
                f"no answer within the prediction timeout of {self._limits.prediction_timeout:g} s"
            )
        await self._limits.problem(late, None)(self._scope, self._receive, self._send)

    async def receive(self) -> Message:
        if self.body_done:
            return await self._receive()
        if self.timed_out:
            raise self._too_slow()
        task = self._receiving = asyncio.current_task()
        try:
            message = await self._receive()
        except asyncio.CancelledError:
            if not self.timed_out or task is None:
                raise
            uncancel = getattr(task, "uncancel", None)  # Python 3.11+: this cancel is ours
            if uncancel is not None:
                uncancel()
            raise self._too_slow() from None
        finally:
            self._receiving = None
        now = asyncio.get_running_loop().time()
        if message["type"] == "http.request" and message.get("more_body", False):
            if now >= self.arrived + self._limits.body_timeout:  # a body still trickling in
                raise self._too_slow()
            return message
        self.body_done, self.body_done_at = True, now  # the prediction deadline runs from here
        return message

    def _too_slow(self) -> RequestTimeoutError:
        self.timed_out = True
        return RequestTimeoutError(
            f"the request body did not arrive within {self._limits.body_timeout:g} s"
        )

    async def send(self, message: Message) -> None:
        if self.abandoned:
            return
        if message["type"] == "http.response.start":
            self.started = True
            if self.timed_out:
                message = {
                    **message,
                    "headers": [*message.get("headers", ()), (b"connection", b"close")],
                }
        await self._send(message)


def admin_operation(path: str) -> bool:
    """Whether ``path`` (concrete, or a route's template) is bounded by ``reload_timeout``.

    ``POST /admin/reload`` and the repository's ``/v2/repository/models/{name}/load`` and
    ``/unload`` (``routes/admin.py``, ``routes/repository.py``): they load, verify and warm a
    model, or drain one, and answer when done.
    """
    if path == "/admin/reload":
        return True
    return path.startswith("/v2/repository/models/") and path.endswith(("/load", "/unload"))


def _has_body(scope: Scope) -> bool:
    """Whether a body may follow the headers: a non-zero Content-Length, or chunked."""
    length = None
    for name, value in scope["headers"]:
        if name == b"transfer-encoding":
            return True
        if name == b"content-length" and length is None:
            length = value
    return length is not None and length.decode("latin-1") != "0"
