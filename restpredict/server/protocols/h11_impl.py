"""uvicorn's h11 protocol with the header deadline (``base.py``) and the same strictness as the
httptools protocol: header limits (431), RFC 9112 framing (``framing_error``), and every
refusal answered through the app as problem+json, logged and counted.

h11 finds some faults itself (no Host, two Hosts, a Transfer-Encoding but ``chunked``, a head
over its buffer limit, which is set to ``max_header_bytes``) and uvicorn would answer them with
a plain-text 400; the connection below keeps h11's verdict (its status hint: 400, 431 or 501)
for the refusal instead, and applies ``framing_error`` to every request h11 accepts (chunked on
HTTP/1.0, Transfer-Encoding with Content-Length, Content-Encoding). uvicorn also logs a warning,
"Invalid HTTP request received.", for each of them; the refusal's access line already says it
(with its status), so that warning is filtered out: one line per bad request, as with httptools.

A module of its own so that h11 and uvicorn's h11 protocol, some 30 ms of imports, load only
when a server runs without httptools (or is asked for h11); uvicorn[standard] has it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle

from restpredict.errors import (
    BadRequestError,
    HeadersTooLargeError,
    RestPredictError,
    TransferCodingError,
)
from restpredict.middleware.access import REFUSED
from restpredict.server.protocols.base import HeaderDeadline
from restpredict.server.protocols.httptools_impl import framing_error

__all__ = ["H11HeaderDeadline"]


class _CheckedConnection(h11.Connection):
    """h11's connection, remembering why it refused a request, and refusing more of them."""

    max_header_bytes = 65536
    max_header_count = 100
    refusal: RestPredictError | None = None

    def next_event(self) -> Any:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as error:
            self.refusal = _from_h11(error)
            raise
        if isinstance(event, h11.Request):
            headers = [(name.lower(), value) for name, value in event.headers]
            size = len(event.target) + sum(len(name) + len(value) + 4 for name, value in headers)
            if size > self.max_header_bytes:  # a head that arrived whole in one read
                self.refusal = HeadersTooLargeError(
                    f"the request headers are over the limit of {self.max_header_bytes} bytes"
                )
            elif len(headers) > self.max_header_count:
                self.refusal = HeadersTooLargeError(
                    f"more than {self.max_header_count} header fields; that is the limit"
                )
            else:
                self.refusal = framing_error(headers, event.http_version.decode("ascii"))
            if self.refusal is not None:
                self.refused_request = event
                raise h11.RemoteProtocolError(self.refusal.detail)  # uvicorn: send_400_response
        return event


def _from_h11(error: h11.RemoteProtocolError) -> RestPredictError:
    """h11's reason as our error; its own words stay in the log (they may quote the client)."""
    status = error.error_status_hint
    if status == 431:
        return HeadersTooLargeError("the request headers are over the limit")
    if status == 501:
        return TransferCodingError("only a Transfer-Encoding of exactly 'chunked' is supported")
    return BadRequestError("the request is not valid HTTP/1.1 (RFC 9112)")


#: What uvicorn's h11 protocol logs for each request h11 refuses, before ``send_400_response``.
_UVICORN_INVALID_REQUEST = "Invalid HTTP request received."


class _OneLinePerRefusal(logging.Filter):
    """Drops uvicorn's warning for a refused request: its access line is logged already."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != _UVICORN_INVALID_REQUEST


_ONE_LINE_PER_REFUSAL = _OneLinePerRefusal()


class H11HeaderDeadline(HeaderDeadline, H11Protocol):
    """uvicorn's h11 protocol with a header deadline, header limits and framing checks."""

    def __init__(
        self,
        *args: Any,
        header_timeout: float,
        max_header_bytes: int = 65536,
        max_header_count: int = 100,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self.conn = _CheckedConnection(h11.SERVER, max_incomplete_event_size=max_header_bytes)
        self.conn.max_header_bytes = max_header_bytes
        self.conn.max_header_count = max_header_count
        self._refused = False
        self.logger.addFilter(_ONE_LINE_PER_REFUSAL)  # once: the same filter is added once

    def send_400_response(self, msg: str) -> None:
        """A request h11 or ``framing_error`` refused: answered through the app, then closed."""
        conn = self.conn
        assert isinstance(conn, _CheckedConnection)
        error = conn.refusal or BadRequestError("the request is not valid HTTP/1.1")
        if self._refused:
            return
        self._refused = True
        self.flow.pause_reading()
        request: h11.Request | None = getattr(conn, "refused_request", None)
        method, path, version = "GET", "*", "1.1"
        if request is not None:
            method = request.method.decode("ascii")
            path = request.target.partition(b"?")[0].decode("latin-1")
            version = request.http_version.decode("ascii")
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
            "http_version": version,
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "root_path": self.root_path,
            "headers": [],
            "state": self.app_state.copy(),
            "method": method,
            "path": path,
            "raw_path": b"*",
            "query_string": b"",
            REFUSED: error,
        }
        cycle = RequestResponseCycle(
            scope=scope,  # type: ignore[arg-type]
            conn=conn,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            on_response=self.on_response_complete,
        )
        cycle.more_body = False
        cycle.keep_alive = False
        self.cycle = cycle
        task = self.loop.create_task(cycle.run_asgi(self.app))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)
