"""The HTTP protocol the server runs: httptools when installed (uvicorn[standard]), else h11."""

from __future__ import annotations

import functools
from typing import Any

from restpredict.server.protocols import httptools_impl

__all__ = ["header_deadline_protocol"]


def header_deadline_protocol(
    header_timeout: float,
    parser: str = "auto",
    *,
    max_header_bytes: int = 65536,
    max_header_count: int = 100,
    send_timeout: float = 60.0,
    write_buffer_budget: int = 256 * 1024 * 1024,
) -> Any:
    """The protocol factory for ``uvicorn.Config(http=...)``; picklable for spawned workers.

    Both parsers enforce the header limits (431) and the RFC 9112 framing checks; the send
    timeout and the write budget are the httptools protocol's (the default) only.
    """
    if parser == "h11" or httptools_impl.HttpToolsProtocol is None:
        # Lazy for start-up time: h11 costs ~30 ms to import, and is rarely used.
        from restpredict.server.protocols.h11_impl import H11HeaderDeadline

        return functools.partial(
            H11HeaderDeadline,
            header_timeout=header_timeout,
            max_header_bytes=max_header_bytes,
            max_header_count=max_header_count,
        )
    return functools.partial(
        httptools_impl.HttpToolsHeaderDeadline,
        header_timeout=header_timeout,
        max_header_bytes=max_header_bytes,
        max_header_count=max_header_count,
        send_timeout=send_timeout,
        write_buffer_budget=write_buffer_budget,
    )
