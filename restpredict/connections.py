"""Connection-level protection uvicorn 0.54 lacks: a deadline for request headers.

uvicorn's ``timeout_keep_alive`` only runs between requests, once a response has
been sent. A client that connects and sends nothing, or trickles header bytes (a
slowloris), holds its connection forever: tested on uvicorn 0.54 with both the
httptools and the h11 parser. These protocol classes arm a timer when a connection
opens and again after each response; if the next request's headers are not
complete when it fires, the client gets a 408 problem+json and the connection is
closed. Request bodies have their own deadline in the app (``limits.py``). With httptools
the same timer also closes a connection left idle after a response for the keep-alive timeout,
in place of the timer uvicorn starts and cancels around every request.

restpredict has no WebSocket routes and runs uvicorn with ``ws="none"``, so every ``Upgrade``
request (``curl --http2`` sends ``Upgrade: h2c`` on plain HTTP) is answered as HTTP/1.1, as
RFC 9110 (7.8) allows. httptools stops parsing at such a request's headers and leaves its body
unparsed; uvicorn then drops it and the app would see an empty body. The httptools protocol
below hands those bytes to the request itself.

``refuse_new_connections`` serves the graceful shutdown: closing a listening socket
resets every connection the kernel has already completed but nobody has accepted
yet, and those clients see a reset after sending their request. Dropping new SYNs
first (a one-instruction socket filter) lets the server accept and answer what is
queued before it closes the socket; later clients are refused.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import socket
import struct
from typing import Any

from restpredict.app import problem_response
from restpredict.errors import RequestTimeoutError

try:
    import httptools
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - uvicorn[standard] ships httptools
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

__all__ = ["OneWriteResponses", "header_deadline_protocol", "refuse_new_connections"]


def _timeout_response() -> bytes:
    """A complete HTTP/1.1 408 with the API's problem+json body, sent raw by the protocol."""
    error = RequestTimeoutError("the request headers did not arrive within the header timeout")
    response = problem_response(error)
    head = [b"HTTP/1.1 408 Request Timeout"]
    head += [name + b": " + value for name, value in response.raw_headers]
    head.append(b"connection: close")
    return b"\r\n".join(head) + b"\r\n\r\n" + response.body


class _HeaderDeadline:
    """Mixin for a uvicorn HTTP protocol: close connections whose headers arrive too slowly.

    The deadline is ``header_timeout`` after the connection opened or its last response went
    out. One timer per connection: a response only notes the time, and a timer that fires
    early (the connection was answered since) waits on for the rest.
    """

    header_timeout: float
    timeout_keep_alive: int
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any
    _deadline: asyncio.TimerHandle | None = None
    _idle_since = 0.0
    #: Set by a protocol whose deadline timer also closes idle keep-alive connections: set
    #: after each response, cleared when bytes arrive.
    _keep_alive_idle = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)  # type: ignore[misc]

    def _unsupported_upgrade_warning(self) -> None:
        """Silent: restpredict has no WebSocket routes and runs uvicorn with ``ws="none"``.

        An ``Upgrade`` request is answered as plain HTTP. uvicorn would log two warnings per
        such request, one advising to install a WebSocket library: wrong here, and a way for
        any client to fill the log.
        """

    def _due(self) -> float:
        if self._keep_alive_idle:
            return self._idle_since + self.timeout_keep_alive
        return self._idle_since + self.header_timeout

    def _arm(self) -> None:
        self._idle_since = self.loop.time()
        due = self._due()
        deadline = self._deadline
        if deadline is None or deadline.when() > due:
            if deadline is not None:  # a connection's first idle keep-alive ends sooner
                deadline.cancel()
            self._deadline = self.loop.call_at(due, self._expire)

    def _expire(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # the headers came in time; the request is being answered (re-armed after)
        due = self._due()
        if due > self.loop.time():  # answered or spoken to since this timer was set
            self._deadline = self.loop.call_at(due, self._expire)
            return
        if not self._keep_alive_idle:
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()


_TIMEOUT_RESPONSE = _timeout_response()


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

    class HttpToolsHeaderDeadline(_HeaderDeadline, HttpToolsProtocol):
        """uvicorn's httptools protocol with a header deadline, answering in one write."""

        def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.header_timeout = header_timeout

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self._responses = OneWriteResponses(self.transport, self.loop)

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
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                message = "Invalid HTTP request received."
                self.logger.warning(message)
                self.send_400_response(message)
            except httptools.HttpParserUpgrade as upgrade:
                self._upgrade_body_due = _content_length(self.headers)
                rest = self._upgrade_body(data[upgrade.args[0] :])
                if rest:  # the next request, pipelined: the parser starts afresh with it
                    self.data_received(rest)

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
            # deadline timer closes it when it stays idle that long.
            self.server_state.total_requests += 1
            if self.transport.is_closing():
                return
            self.flow.resume_reading()
            if self.pipeline:
                cycle, app = self.pipeline.pop()
                self._start_asgi_task(cycle, app)
            self._keep_alive_idle = True
            self._arm()

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            cycle = self.cycle
            if cycle is not None:
                cycle.transport = self._responses


def _content_length(headers: list[tuple[bytes, bytes]]) -> int:
    """The declared body length, or 0 (a chunked body after an Upgrade is not recovered)."""
    for name, value in headers:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return 0


def header_deadline_protocol(header_timeout: float, parser: str = "auto") -> Any:
    """The protocol factory for ``uvicorn.Config(http=...)``; picklable for spawned workers."""
    if parser == "h11" or HttpToolsProtocol is None:
        from restpredict._h11 import H11HeaderDeadline  # h11 costs ~30 ms to import; rarely used

        return functools.partial(H11HeaderDeadline, header_timeout=header_timeout)
    return functools.partial(HttpToolsHeaderDeadline, header_timeout=header_timeout)


_SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)  # Linux
_DROP_ALL = struct.pack("HBBI", 0x06, 0, 0, 0)  # classic BPF: BPF_RET | BPF_K, accept 0 bytes


def refuse_new_connections(sock: socket.socket) -> bool:
    """Make a listening socket drop new SYNs; connections already queued stay acceptable."""
    program = ctypes.create_string_buffer(_DROP_ALL)
    fprog = struct.pack("@HP", 1, ctypes.addressof(program))  # struct sock_fprog
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
    except OSError:
        return False  # not Linux: the socket is simply closed, as uvicorn does
    return True
