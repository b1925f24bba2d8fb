"""uvicorn's h11 protocol with the header deadline (``base.py``).

A module of its own so that h11 and uvicorn's h11 protocol, some 30 ms of imports, load only
when a server runs without httptools (or a test asks for h11); uvicorn[standard] has it.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from restpredict.server.protocols.base import HeaderDeadline

__all__ = ["H11HeaderDeadline"]


class H11HeaderDeadline(HeaderDeadline, H11Protocol):
    """uvicorn's h11 protocol with a header deadline."""

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
