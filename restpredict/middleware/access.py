"""The access layer: each request's id, one access log line, and its metrics.

``AccessMiddleware`` is plain ASGI (not ``BaseHTTPMiddleware``): it wraps ``send``
and nothing else, so it starts no task and never buffers a streamed response.
It puts an ``Exchange`` (``observability/exchange.py``) in every HTTP scope; endpoints add
to it through ``timed`` and ``record_rows``, so one record feeds both the log line and the
metrics. It logs the method, path (never the query string), status, latency,
rows, request id and client address; never a body or any other header.

A finished request's metric observations and log line are recorded at the end of the
event-loop turn it finished in, with those of the other requests that finished in that
turn (``observability/turns.py``): the response does not wait for them, and back to back they
cost about half as much. The in-flight gauge moves at once. When the server's own JSON handler
is the only one the access records would reach (``observability.logs.direct_json_handler``), a
turn's lines go to it already encoded, in one call, without a ``LogRecord`` each.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import logging
import os
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from restpredict.observability.exchange import SCOPE_KEY, Exchange
from restpredict.observability.logs import ACCESS_LOGGER, direct_json_handler, json_document
from restpredict.observability.metrics import Metrics
from restpredict.observability.turns import TurnQueue
from restpredict.settings import Settings

#: Extra headers for a response, given its scope and ``http.response.start`` message.
ResponseHeaders = Callable[[Scope, Message], list[tuple[bytes, bytes]]]

__all__ = [
    "CLIENT_CLOSED",
    "REFUSED",
    "REQUEST_ID_HEADER",
    "UNMATCHED",
    "AccessMiddleware",
    "AccessRecord",
    "ResponseHeaders",
    "error_response",
    "id_source",
    "instrument",
    "request_id",
    "route_template",
]

REQUEST_ID_HEADER = "x-request-id"
_ID_HEADER = REQUEST_ID_HEADER.encode()
UNMATCHED = "<unmatched>"  # the route label of every 404, so random paths add no series
#: Scope key of a request the connection refused before the app (431, a malformed message):
#: the error to answer with. Answered here, so it is logged and counted like any request.
REFUSED = "restpredict.refused"
#: The status recorded for a request whose client left before its answer (nginx's 499).
CLIENT_CLOSED = 499
# What a request id may be: enough for UUIDs, ULIDs, hex and base64 trace ids; nothing
# that could break a log line or a header.
_VALID_ID = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")
_access_log = logging.getLogger(ACCESS_LOGGER)
_TEMPLATE_CACHE_SIZE = 1024


#: A finished request: when, its scope and exchange, its status and how long it took.
_Finished = tuple[float, Scope, Exchange, int, float]


def instrument(
    app: Starlette,
    settings: Settings,
    metrics_dir: Path | None = None,
    *,
    response_headers: ResponseHeaders | None = None,
) -> Metrics:
    """Give ``app`` its Metrics (``app.state.metrics``) and the access middleware."""
    metrics = Metrics(metrics_dir)
    app.state.metrics = metrics
    app.add_middleware(
        AccessMiddleware,
        metrics=metrics,
        access_log=settings.access_log,
        response_headers=response_headers,
    )
    return metrics


class AccessMiddleware:
    """Request ids in and out, metrics for every request, one log line when it is done.

    Its send wrapper is also where ``response_headers`` (the serving headers) are added, so
    the outermost layer is the only one that rewrites a response start.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        access_log: bool = True,
        response_headers: ResponseHeaders | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self.response_headers = response_headers
        # (root path, path, method) -> route template: matching every route's regex again for
        # each request cost more than the rest of this middleware. Bounded, since paths with
        # parameters are the client's to vary; 404s are not kept.
        self._templates: dict[tuple[str, str, str], str] = {}
        self._new_id = id_source()
        self._finished: TurnQueue[_Finished] = TurnQueue(self._record)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        exchange, id_header = self.open(scope)
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = self.start(scope, message, id_header)
            await send(message)

        final = 500
        try:
            refused = scope.get(REFUSED)
            if refused is None:
                await self.app(scope, receive, send_with_id)
            else:
                await error_response(scope, receive, send_with_id, refused)
        except ClientDisconnect:
            # The client's doing, not a server error: no traceback, no 500, nobody to answer.
            final = CLIENT_CLOSED
        except Exception as exc:
            if status is None:
                await error_response(scope, receive, send_with_id, exc)
            raise
        finally:
            self.close(scope, exchange, final if status is None else status, started)

    def open(self, scope: Scope) -> tuple[Exchange, tuple[bytes, bytes]]:
        """A request begins: its ``Exchange`` (in its scope) and its ``X-Request-ID`` header."""
        exchange = Exchange(request_id(scope, self._new_id), self._template(scope))
        scope[SCOPE_KEY] = exchange
        self.metrics.request_started()
        return exchange, (_ID_HEADER, exchange.request_id.encode())

    def start(
        self, scope: Scope, message: Message, id_header: tuple[bytes, bytes], *extra: Any
    ) -> Message:
        """A response start with ``extra`` headers, the request id and the serving headers
        added: the one place a response start is rewritten."""
        headers = [*message.get("headers", ()), *extra, id_header]
        if self.response_headers is not None:
            headers += self.response_headers(scope, message)
        return {**message, "headers": headers}

    def close(self, scope: Scope, exchange: Exchange, status: int, started: float) -> None:
        """A request ended with ``status``: its metrics and log line, at the end of the turn."""
        self.metrics.request_finished()
        elapsed = time.perf_counter() - started
        self._finished.add((time.time(), scope, exchange, status, elapsed))

    def _record(self, finished: list[_Finished]) -> None:
        """The metrics and access lines of the requests that finished in one loop turn."""
        metrics = self.metrics
        log = self.access_log and _access_log.isEnabledFor(logging.INFO)
        direct = direct_json_handler(_access_log) if log else None
        pid = _pid()
        lines: list[dict[str, Any]] = []
        for created, scope, exchange, status, elapsed in finished:
            route = exchange.route
            metrics.observe_request(route, scope["method"], status, elapsed)
            for stage, seconds in exchange.stages:
                metrics.observe_stage(route, stage, seconds)
            if exchange.rows is not None:
                metrics.observe_rows(route, exchange.rows)
            model = scope.get("state", {}).get("model")
            if model is not None:
                metrics.observe_model_request(model, status)
            if not log:
                continue
            args = (scope["method"], scope["path"], status)
            if direct is None:
                fields = _access_fields(scope, exchange, status, elapsed)
                _access_log.handle(AccessRecord(args, fields, created))
            else:  # the line's own fields follow the JSON document's first ones, in one dict
                line = json_document(created, "info", ACCESS_LOGGER, pid, _MESSAGE % args)
                lines.append(_access_fields(scope, exchange, status, elapsed, line))
        if direct is not None and lines:
            direct.add_json_lines(lines)

    def _template(self, scope: Scope) -> str:
        key = (scope.get("root_path", ""), scope["path"], scope["method"])
        template = self._templates.get(key)
        if template is None:
            template = route_template(scope)
            if template != UNMATCHED and len(self._templates) < _TEMPLATE_CACHE_SIZE:
                self._templates[key] = template
        return template


def route_template(scope: Scope) -> str:
    """The path template of the route this request will reach (``/predict``), not its path."""
    routes: list[BaseRoute] = getattr(scope.get("app"), "routes", [])
    return _match(routes, scope, "") or UNMATCHED


def _match(routes: list[BaseRoute], scope: Scope, prefix: str) -> str | None:
    """Starlette's own matching: the first full match wins, else the first partial (a 405)."""
    partial = None
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.NONE:
            continue
        template = prefix + getattr(route, "path", "")
        if isinstance(route, Mount):
            inner = _match(route.routes, {**scope, **child_scope}, template)
            template = inner or template + "/{path}"
        if match is Match.FULL:
            return template
        partial = partial or template
    return partial


def request_id(scope: Scope, new_id: Callable[[], str]) -> str:
    """The client's ``X-Request-ID`` if it is safe to log and echo, else a fresh one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if _VALID_ID.fullmatch(value):
                return str(value.decode("ascii"))
            break
    return new_id()


def id_source() -> Callable[[], str]:
    """Fresh request ids: 32 hex digits, a random prefix per process and a counter.

    Unique across workers and restarts (64 random bits each), like a uuid4, but without
    reading the OS's random source for every request (uuid4 was a tenth of this layer's
    cost). They identify requests; they are not secrets, and consecutive ones are guessable.
    """
    prefix = secrets.token_hex(8)
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter):016x}"


async def error_response(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """Answer an unhandled exception with the app's own 500 handler, so the id is echoed too.

    Starlette's outermost middleware would send the same response, but without our
    header; once we have answered it only re-raises, so the server still logs it.
    """
    app = scope.get("app")
    handlers: dict[Any, Any] = getattr(app, "exception_handlers", {})
    handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
    handler = handler or handlers.get(500)
    if handler is None:
        return
    with contextlib.suppress(Exception):  # a failing handler: Starlette's default 500 follows
        response = handler(Request(scope, receive), exc)
        if inspect.isawaitable(response):
            response = await response
        await response(scope, receive, send)


def _access_fields(
    scope: Scope,
    exchange: Exchange,
    status: int,
    elapsed: float,
    fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An access line's own fields, added to ``fields`` (a JSON line's first ones) if given."""
    if fields is None:
        fields = {}
    client = scope.get("client")
    fields["method"] = scope["method"]
    fields["path"] = scope["path"]
    fields["route"] = exchange.route
    fields["status"] = status
    fields["latency_ms"] = round(elapsed * 1000, 3)
    fields["rows"] = exchange.rows
    fields["request_id"] = exchange.request_id
    fields["client"] = f"{client[0]}:{client[1]}" if client else None
    model = scope.get("state", {}).get("model")
    if model is not None and model.version is not None:  # which version answered (canary)
        fields["model"], fields["model_version"] = model.name, model.version
    return fields


def _pid() -> int | None:
    """``LogRecord.process``, as an access record has it."""
    return _process_names(os.getpid())[1]


class AccessRecord(logging.LogRecord):
    """The ``LogRecord`` of one access log line, with ``access`` holding its fields.

    A complete record for any handler or formatter, built without most of what
    ``LogRecord.__init__`` works out again for every record although it is the same for
    every access line: the source file and module, the level name, the process name (and,
    unlike ``Logger.info``, no walk up the stack for the caller). That was a third of the
    line's cost, paid once per request.
    """

    def __init__(self, args: tuple[Any, ...], access: dict[str, Any], created: float) -> None:
        # In the instance's own dict, where %-style formatters look for them.
        self.__dict__.update(_ACCESS_RECORD_FIELDS)
        self.args = args
        self.access = access
        self.created = created
        self.msecs = int((created - int(created)) * 1000) + 0.0
        self.relativeCreated = (created - _LOGGING_STARTED) * 1000
        if logging.logThreads:
            self.thread: int | None = threading.get_ident()
            self.threadName: str | None = threading.current_thread().name
        else:
            self.thread = self.threadName = None
        self.processName, self.process = _process_names(os.getpid())


_MESSAGE = "%s %s %d"  # method, path, status
_LOGGING_STARTED: float = getattr(logging, "_startTime", time.time())
# What every access record holds alike (``taskName`` is read by Python 3.12+ formatters).
_ACCESS_RECORD_FIELDS: dict[str, Any] = {
    "name": ACCESS_LOGGER,
    "msg": _MESSAGE,
    "levelname": logging.getLevelName(logging.INFO),
    "levelno": logging.INFO,
    "pathname": __file__,
    "filename": Path(__file__).name,
    "module": Path(__file__).stem,
    "lineno": 0,
    "funcName": "_log",
    "exc_info": None,
    "exc_text": None,
    "stack_info": None,
    "taskName": None,
}


@functools.lru_cache(maxsize=1)
def _process_names(pid: int) -> tuple[str | None, int | None]:
    """``processName`` and ``process`` as ``LogRecord`` finds them, once per process id."""
    name: str | None = None
    if logging.logMultiprocessing:
        name = "MainProcess"
        multiprocessing = sys.modules.get("multiprocessing")
        if multiprocessing is not None:
            with contextlib.suppress(Exception):
                name = multiprocessing.current_process().name
    return name, pid if logging.logProcesses else None
