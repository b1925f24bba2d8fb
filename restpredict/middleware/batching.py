"""The middleware batching needs: it tells the batcher which requests are on their way."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from restpredict.asgi.batching import Batcher

__all__ = ["ArrivalCounter", "batching_middleware"]


class ArrivalCounter:
    """ASGI middleware: tells the batcher which POSTs are on their way to a query.

    A batch waits for these (up to its deadline) rather than leave them for the next one; when
    there are none, it runs at once.
    """

    def __init__(self, app: ASGIApp, batcher: Batcher) -> None:
        self.app = app
        self.batcher = batcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        self.batcher.arriving_request(scope)
        try:
            await self.app(scope, receive, send)
        finally:
            self.batcher.arrived(scope)


def batching_middleware(batcher: Batcher | None) -> list[Middleware]:
    """The arrival counter a batcher needs, for ``Starlette(middleware=...)``."""
    return [Middleware(ArrivalCounter, batcher=batcher)] if batcher is not None else []
