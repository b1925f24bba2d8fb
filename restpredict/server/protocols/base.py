"""Connection-level protection uvicorn 0.54 lacks: a deadline for request headers.

uvicorn's ``timeout_keep_alive`` only runs between requests, once a response has
been sent. A client that connects and sends nothing, or trickles header bytes (a
slowloris), holds its connection forever: tested on uvicorn 0.54 with both the
httptools and the h11 parser. ``HeaderDeadline`` arms a timer when a connection
opens and again after each response; if the next request's headers are not
complete when it fires, the client gets a 408 problem+json and the connection is
closed. Request bodies have their own deadline in the app (``middleware/limits.py``).
The protocol classes that use it are ``httptools_impl`` and ``h11_impl``; ``auto`` picks one.
It also tells a request waiting in the batcher's queue that its client left (``ON_DISCONNECT``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from restpredict.asgi.batching import ON_DISCONNECT
from restpredict.asgi.responses import problem_response
from restpredict.errors import RequestTimeoutError

__all__ = ["HeaderDeadline"]


def _timeout_response() -> bytes:
    """A complete HTTP/1.1 408 with the API's problem+json body, sent raw by the protocol."""
    error = RequestTimeoutError("the request headers did not arrive within the header timeout")
    response = problem_response(error)
    head = [b"HTTP/1.1 408 Request Timeout"]
    head += [name + b": " + value for name, value in response.raw_headers]
    head.append(b"connection: close")
    return b"\r\n".join(head) + b"\r\n\r\n" + response.body


class HeaderDeadline:
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
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # A request still waiting in the batcher's queue leaves it: nobody is left to
            # answer, and its rows must not take the model's time from those still waiting.
            client_left = cycle.scope.pop(ON_DISCONNECT, None)
            if client_left is not None:
                client_left()

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
        if getattr(self, "_next_waits", False):
            return  # an answer is still being written: the send timeout watches (re-armed after)
        due = self._due()
        if due > self.loop.time():  # answered or spoken to since this timer was set
            self._deadline = self.loop.call_at(due, self._expire)
            return
        if not self._keep_alive_idle:
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()


_TIMEOUT_RESPONSE = _timeout_response()
