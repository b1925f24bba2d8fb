"""The middleware an unload needs: a request's lease on its model ends with the request."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from restpredict.asgi.registry import ModelRegistry

__all__ = ["LeaseMiddleware", "lease_middleware"]


class LeaseMiddleware:
    """ASGI middleware: releases the lease ``asgi.state.model_for`` took, however the request
    ends (answered, failed, or its client gone), so an unload waits for exactly these."""

    def __init__(self, app: ASGIApp, registry: ModelRegistry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.registry.release(scope)


def lease_middleware(registry: ModelRegistry) -> list[Middleware]:
    """The lease middleware when the registry counts leases (the repository API is on)."""
    return [Middleware(LeaseMiddleware, registry=registry)] if registry.leasing else []
