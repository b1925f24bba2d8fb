"""uvicorn's httptools protocol with the header deadline (``base.py``), answering in one write.

With httptools the deadline timer also closes a connection left idle after a response for the
keep-alive timeout, in place of the timer uvicorn starts and cancels around every request.

restpredict has no WebSocket routes and runs uvicorn with ``ws="none"``, so every ``Upgrade``
request (``curl --http2`` sends ``Upgrade: h2c`` on plain HTTP) is answered as HTTP/1.1, as
RFC 9110 (7.8) allows. httptools stops parsing at such a request's headers and leaves its body
unparsed; uvicorn then drops it and the app would see an empty body. The protocol below hands
those bytes to the request itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import urllib.parse
from typing import Any, ClassVar

from restpredict.asgi.admission import ADMISSION, Admission
from restpredict.asgi.batching import ARRIVED
from restpredict.asgi.responses import problem_response
from restpredict.errors import (
    BadRequestError,
    HeadersTooLargeError,
    OverloadedError,
    RestPredictError,
    TransferCodingError,
    UnsupportedMediaTypeError,
)
from restpredict.middleware.access import REFUSED
from restpredict.server.protocols.base import HeaderDeadline

try:
    import httptools
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
except ImportError:  # pragma: no cover - uvicorn[standard] ships httptools
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

__all__ = ["HttpToolsProtocol", "OneWriteResponses", "framing_error"]

logger = logging.getLogger("uvicorn.error")


class OneWriteResponses:
    """The transport a response is written to: holds its head until its body comes.

    uvicorn writes a response's status line and headers, then its body, each with its own
    ``transport.write``: two send calls, two TCP segments, the client woken twice. Held here,
    a whole response goes out in one call (about 8% more one-row requests per second, measured
    in alternating runs). Whatever is held at the end of the loop turn is sent then: a head
    whose body is streamed later, or a ``100 Continue``.
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._held = None
            self._transport.writelines((held, data))

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():  # the client left before the body came
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


if HttpToolsProtocol is not None:

    class HttpToolsHeaderDeadline(HeaderDeadline, HttpToolsProtocol):
        """uvicorn's httptools protocol with a header deadline, answering in one write."""

        def __init__(
            self,
            *args: Any,
            header_timeout: float,
            max_header_bytes: int = 65536,
            max_header_count: int = 100,
            send_timeout: float = 60.0,
            write_buffer_budget: int = 256 * 1024 * 1024,
            **kwargs: Any,
        ) -> None:
            super().__init__(*args, **kwargs)
            self.header_timeout = header_timeout
            self.max_header_bytes = max_header_bytes
            self.max_header_count = max_header_count
            self.send_timeout = send_timeout
            self.write_buffer_budget = write_buffer_budget
            self._send_deadline: asyncio.TimerHandle | None = None
            #: A response is complete but unread: the next pipelined request waits for it.
            self._next_waits = False
            #: Bytes received of the current request's head in whole chunks, while it is
            #: incomplete, and how many requests have begun (to tell a head that began
            #: within the latest chunk).
            self._head_bytes = 0
            self._in_head = False
            self._begun = 0
            self._refused = False
            self._header_size = 0

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self._responses = OneWriteResponses(self.transport, self.loop)
            self._admission: Admission | None = self.app_state.get(ADMISSION)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.scope[ARRIVED] = time.monotonic()  # type: ignore[literal-required]
            self._in_head = True
            self._begun += 1
            self._head_bytes = 0
            self._header_size = 0  # of the header fields as kept, counted as they come

        def on_header(self, name: bytes, value: bytes) -> None:
            headers = self.headers
            if len(headers) >= self.max_header_count:
                raise HeadersTooLargeError(
                    f"more than {self.max_header_count} header fields; that is the limit"
                )
            super().on_header(name, value)
            name, value = headers[-1]  # as kept: lowercased, trailing whitespace stripped
            self._header_size += len(name) + len(value) + 4

        def send_400_response(self, msg: str) -> None:
            self.refuse(BadRequestError("the request is not valid HTTP/1.1"))

        def refuse(self, error: RestPredictError) -> None:
            """Answer ``error`` through the app (logged and counted), then close: the rest of
            what this connection sent is not read."""
            if self._refused:
                return
            self._refused = True
            self.flow.pause_reading()
            current: dict[str, Any] = dict(self.scope) if self.scope is not None else {}
            scope: dict[str, Any] = {
                "type": "http",
                "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
                "http_version": current.get("http_version", "1.1"),
                "server": self.server,
                "client": self.client,
                "scheme": self.scheme,
                "root_path": self.root_path,
                "headers": [],
                "state": self.app_state.copy(),
                "method": current.get("method") or "GET",
                "path": current.get("path") or "*",
                "raw_path": b"*",
                "query_string": b"",
                REFUSED: error,
            }
            cycle = RequestResponseCycle(
                scope=scope,  # type: ignore[arg-type]
                transport=self._responses,  # type: ignore[arg-type]
                flow=self.flow,
                logger=self.logger,
                access_logger=self.access_logger,
                access_log=self.access_log,
                default_headers=self.server_state.default_headers,
                message_event=asyncio.Event(),
                expect_100_continue=False,
                keep_alive=False,
                on_response=self.on_response_complete,
            )
            cycle.more_body = False
            existing = self.cycle
            self.cycle = cycle
            if existing is None or existing.response_complete:
                self._start_asgi_task(cycle, self.app)
            else:  # answered after the request before it, in order
                self.pipeline.appendleft((cycle, self.app))

        #: Bytes of the current request's body still to come after an ignored Upgrade.
        _upgrade_body_due = 0

        def data_received(self, data: bytes) -> None:
            # uvicorn's, but an Upgrade keeps its body (see the module docstring). There is no
            # keep-alive timer to cancel here: the deadline timer does that job.
            self._keep_alive_idle = False
            if self._upgrade_body_due:
                data = self._upgrade_body(data)
                if not data:
                    return
            if self._refused:
                return
            begun = self._begun
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError as exc:
                cause = exc.__context__
                if isinstance(cause, RestPredictError):  # raised by a callback of ours
                    self.refuse(cause)
                else:
                    self.refuse(BadRequestError("the request is not valid HTTP/1.1"))
                return
            except httptools.HttpParserUpgrade as upgrade:
                self._upgrade_body_due = _content_length(self.headers)
                rest = self._upgrade_body(data[upgrade.args[0] :])
                if rest:  # the next request, pipelined: the parser starts afresh with it
                    self.data_received(rest)
                return
            # Enforced while the head arrives, not once it is all held in memory; a head that
            # began within this chunk is counted from the next one (and exactly when complete).
            if self._in_head and self._begun == begun:
                self._head_bytes += len(data)
                if self._head_bytes > self.max_header_bytes:
                    self.refuse(self._too_large())

        def _too_large(self) -> HeadersTooLargeError:
            return HeadersTooLargeError(
                f"the request headers are over the limit of {self.max_header_bytes} bytes"
            )

        def _upgrade_body(self, data: bytes) -> bytes:
            """Give the request the body bytes httptools left unparsed; return what follows."""
            due = self._upgrade_body_due
            chunk, rest = data[:due], data[due:]
            self._upgrade_body_due = due - len(chunk)
            cycle = self.cycle
            if cycle is not None:
                cycle.more_body = self._upgrade_body_due > 0
                if chunk:
                    self.on_body(chunk)  # uvicorn's: flow control, and wakes the app
                else:
                    cycle.message_event.set()
            return rest

        def on_response_complete(self) -> None:
            # uvicorn's, less the keep-alive timer it starts after every response (and cancels
            # when the next request's bytes come, ~2.5 µs a request): the connection's one
            # deadline timer closes it when it stays idle that long. And while the client has
            # not read what was written, its next request waits: answers are not computed
            # faster than the client takes them, and none holds a slot waiting for it.
            self.server_state.total_requests += 1
            if self.transport.is_closing():
                return
            if self.flow.write_paused:
                self._next_waits = True
                return
            self._next_request()

        def _next_request(self) -> None:
            self.flow.resume_reading()
            if self.pipeline:
                cycle, app = self.pipeline.pop()
                self._start_asgi_task(cycle, app)
            self._keep_alive_idle = True
            self._arm()

        def pause_writing(self) -> None:
            """The client reads slower than we write: start its send timeout, and keep the
            bytes written but not yet read by all such clients within the budget."""
            super().pause_writing()
            if self._send_deadline is None:
                self._send_deadline = self.loop.call_later(self.send_timeout, self._too_slow)
            _SLOW_READERS[self] = None
            self._enforce_write_budget()

        def resume_writing(self) -> None:
            super().resume_writing()
            _SLOW_READERS.pop(self, None)
            if self._send_deadline is not None:
                self._send_deadline.cancel()
                self._send_deadline = None
            if self._next_waits and not self.transport.is_closing():
                self._next_waits = False
                self._next_request()

        def connection_lost(self, exc: Exception | None) -> None:
            _SLOW_READERS.pop(self, None)
            if self._send_deadline is not None:
                self._send_deadline.cancel()
                self._send_deadline = None
            super().connection_lost(exc)

        def _too_slow(self) -> None:
            """Nothing could be written for ``send_timeout``: drop the connection and its
            buffered bytes (as nginx's ``send_timeout`` does)."""
            self._send_deadline = None
            logger.info(
                "%s read nothing for %g s: connection closed", _peer(self.client), self.send_timeout
            )
            self.transport.abort()

        def _enforce_write_budget(self) -> None:
            """Beyond the budget, drop the connections that stopped reading first."""
            held = {p: p.transport.get_write_buffer_size() for p in _SLOW_READERS}
            total = sum(held.values())
            for protocol, size in held.items():  # oldest first: dicts keep insertion order
                if total <= self.write_buffer_budget:
                    break
                logger.info(
                    "unread answers are over the write budget of %d bytes: closing %s",
                    self.write_buffer_budget,
                    _peer(protocol.client),
                )
                _SLOW_READERS.pop(protocol, None)
                protocol.transport.abort()
                total -= size

        def on_headers_complete(self) -> None:
            self._in_head = False
            version = self.parser.get_http_version()
            size = len(self.url) + self._header_size
            error: RestPredictError | None = None
            if size > self.max_header_bytes:
                error = self._too_large()
            else:
                error = framing_error(self.headers, version)
            if error is not None:
                self.scope["method"] = self.parser.get_method().decode("ascii")
                self.scope["http_version"] = version
                with contextlib.suppress(httptools.HttpParserInvalidURLError):
                    self.scope["path"] = httptools.parse_url(self.url).path.decode("latin-1")
                self.refuse(error)
                return
            admission = self._admission
            if (
                admission is not None
                and admission.refusing(len(self.tasks))
                and self._refused_early(admission, version)
            ):
                return
            super().on_headers_complete()
            cycle = self.cycle
            if cycle is not None:
                cycle.transport = self._responses

        def _refused_early(self, admission: Admission, version: str) -> bool:
            """Refuse an overloaded request here, before any task or app: True if it was.

            Only a plain keep-alive HTTP/1.1 request with nothing before it to answer, on a
            server without a root path, and while the app allows it: anything else is the
            app's to refuse, in full. The body that follows is parsed and dropped.
            """
            started = time.perf_counter()
            existing = self.cycle
            if (
                (existing is not None and not existing.response_complete)
                or version != "1.1"
                or self.expect_100_continue
                or self.root_path
                or self.parser.should_upgrade()
                or not self.parser.should_keep_alive()
                or not admission.early()
            ):
                return False
            try:
                path = httptools.parse_url(self.url).path.decode("ascii")
            except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
                return False  # uvicorn's own handling, then the app's
            if "%" in path:
                path = urllib.parse.unquote(path)
            error = admission.refusal(path, len(self.tasks), self.client)
            if error is None:
                return False
            response = _early_response(error, admission.retry_after, self.server_state)
            if admission.on_refused is not None:
                method = self.parser.get_method().decode("ascii", "replace")
                seconds = time.perf_counter() - started
                request_id = admission.on_refused(path, method, self.headers, seconds)
                response = _REQUEST_ID + request_id.encode("ascii") + b"\r\n" + response
            # Held, with this connection's reading, until the next pacing tick: a client that
            # retries at once (ignoring Retry-After) then costs a refusal per tick, not per
            # loop turn, and the requests admitted keep the loop (``REFUSAL_PACE_S``).
            self.cycle = _Refused()  # the body's callbacks see a request being answered
            self.flow.pause_reading()
            held = _HELD.get(self.loop)
            if held is None:
                held = _HELD[self.loop] = []
                self.loop.call_later(REFUSAL_PACE_S, _answer_held, self.loop)
            held.append((self, response))
            return True

        def answer_refusal(self, response: bytes) -> None:
            """Send a held early refusal; the connection reads its next request."""
            if self.transport.is_closing():
                return
            self.transport.write(_STATUS_503 + response)
            if type(self.cycle) is _Refused:  # else a pipelined request's, parsed meanwhile
                self.cycle = _ANSWERED
            self.on_response_complete()

        def on_body(self, body: bytes) -> None:
            if type(self.cycle) is _Refused:  # a refused request's body is dropped
                return
            super().on_body(body)

        def on_message_complete(self) -> None:
            if type(self.cycle) is _Refused:
                return
            super().on_message_complete()


class _NoEvent:
    """The ``message_event`` of a cycle no app waits on."""

    def set(self) -> None:
        pass


class _Answered:
    """Stands for the cycle of a request refused before the app, once answered."""

    response_complete = True
    disconnected = False
    scope: ClassVar[dict[str, Any]] = {}
    message_event: ClassVar[_NoEvent] = _NoEvent()


class _Refused(_Answered):
    """Stands for the cycle of a request refused before the app, its answer held."""

    response_complete = False


_ANSWERED = _Answered()
#: Early refusals are answered together this often (at most this late): see ``_HELD``.
REFUSAL_PACE_S = 0.05
#: Connections whose early refusal waits for the next pacing tick, with that answer, by event
#: loop (one per server; tests run several servers in one process).
_HELD: dict[asyncio.AbstractEventLoop, list[tuple[Any, bytes]]] = {}


def _answer_held(loop: asyncio.AbstractEventLoop) -> None:
    for protocol, response in _HELD.pop(loop, []):
        protocol.answer_refusal(response)


#: The headers and body of each early refusal, by its detail and Retry-After.
_EARLY_TAILS: dict[tuple[str, int], bytes] = {}


def _early_response(error: OverloadedError, retry_after: int, server_state: Any) -> bytes:
    """A 503 problem+json with Retry-After and the server's default headers, but its status line."""
    key = (error.detail, retry_after)
    tail = _EARLY_TAILS.get(key)
    if tail is None:
        response = problem_response(error, {"Retry-After": str(retry_after)})
        head = b"".join(name + b": " + value + b"\r\n" for name, value in response.raw_headers)
        tail = head + b"\r\n" + response.body
        if len(_EARLY_TAILS) < 64:
            _EARLY_TAILS[key] = tail
    defaults = server_state.default_headers
    return b"".join([*(name + b": " + value + b"\r\n" for name, value in defaults), tail])


_STATUS_503 = b"HTTP/1.1 503 Service Unavailable\r\n"
_REQUEST_ID = b"x-request-id: "


def framing_error(headers: list[tuple[bytes, bytes]], http_version: str) -> RestPredictError | None:
    """What RFC 9112 makes this request's headers unacceptable for, if anything.

    One Host on HTTP/1.1 (at most one on 1.0); a Transfer-Encoding only as exactly ``chunked``,
    only on HTTP/1.1, never with a Content-Length (the shapes request smuggling uses); no
    Content-Encoding but ``identity``: compressed bodies are refused rather than inflated (a
    small zip bomb inflates a thousandfold past ``max_body_bytes``).
    """
    hosts = codings = 0
    transfer: bytes | None = None
    length = False
    for name, value in headers:
        if name == b"host":
            hosts += 1
        elif name == b"transfer-encoding":
            codings += 1
            transfer = value
        elif name == b"content-length":
            length = True
        elif name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            coding = value.decode("latin-1")
            return UnsupportedMediaTypeError(
                f"Content-Encoding {coding!r} is not accepted; send the body uncompressed",
                code="unsupported_content_encoding",
            )
    if hosts > 1 or (hosts == 0 and http_version == "1.1"):
        return BadRequestError(f"a request needs exactly one Host header; it had {hosts}")
    if transfer is None:
        return None
    if http_version != "1.1":
        return BadRequestError("Transfer-Encoding is only allowed on HTTP/1.1")
    if length:
        return BadRequestError("a request cannot have both Transfer-Encoding and Content-Length")
    tokens = [token.strip().lower() for token in transfer.split(b",")]
    if codings > 1 or (tokens != [b"chunked"] and all(t == b"chunked" for t in tokens)):
        return BadRequestError("Transfer-Encoding must be given once, as exactly 'chunked'")
    if tokens != [b"chunked"]:
        coding = transfer.decode("latin-1")
        return TransferCodingError(f"Transfer-Encoding {coding!r} is not supported; only chunked")
    return None


def _content_length(headers: list[tuple[bytes, bytes]]) -> int:
    """The declared body length, or 0 (a chunked body after an Upgrade is not recovered)."""
    for name, value in headers:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return 0


#: Connections whose client reads slower than they are written to, the longest-paused first.
_SLOW_READERS: dict[Any, None] = {}


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "a client"
