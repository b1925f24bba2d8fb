"""The busiest route's request path: what each middleware does for it, in one layer.

A ``POST /predict`` passes the access layer, auth, the limits, the batcher's arrival counter,
the lease layer and ``DirectRoute`` on its way to the endpoint: a coroutine each, and a send
wrapper each for the access layer and the limits. ``HotRoute`` sits outside them and does
their per-request work for that route itself, with the same instances (their id source,
template cache, metrics, deadline sweeper, admission counts and batcher), in one coroutine
and one send wrapper. It is built from the middleware stack it wraps, so it does exactly what
the layers it found there do, and only when it knows every one of them
(``HotRoute.over``): with CORS, say, every request takes the layers.

A request takes the fused path only when the layers would pass it on untouched: an HTTP
``POST`` of the route's path with no root path, not refused by the connection, authorised,
and with admission refusing nothing. Anything else (a 401, a 503, another route) goes through
the layers, which answer it as always.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

from restpredict.asgi.batching import Batcher
from restpredict.asgi.registry import ModelRegistry
from restpredict.asgi.responses import problem_response
from restpredict.errors import RestPredictError
from restpredict.middleware.access import (
    CLIENT_CLOSED,
    REFUSED,
    AccessMiddleware,
    error_response,
)
from restpredict.middleware.auth import BearerAuth
from restpredict.middleware.batching import ArrivalCounter
from restpredict.middleware.direct import DirectRoute
from restpredict.middleware.leases import LeaseMiddleware
from restpredict.middleware.limits import RequestLimits, abandoned_failed

__all__ = ["HotRoute"]

_CLOSE = (b"connection", b"close")


class HotRoute:
    """ASGI middleware: ``DirectRoute``'s requests through every layer's work in one step."""

    def __init__(
        self,
        app: AccessMiddleware,
        *,
        route: DirectRoute,
        limits: RequestLimits,
        auth: BearerAuth | None = None,
        batcher: Batcher | None = None,
        registry: ModelRegistry | None = None,
    ) -> None:
        self.app = app
        self.method = route.method
        self.path = route.path
        self.endpoint = route.endpoint
        self.limits = limits
        self.auth = auth
        self.batcher = batcher
        self.registry = registry

    @classmethod
    def over(cls, access: AccessMiddleware) -> HotRoute | None:
        """The fused path of the layers under ``access``, or None if one of them is not known
        here (its work could not be done for it)."""
        found: dict[type[Any], Any] = {}
        layer: Any = access.app
        while not isinstance(layer, DirectRoute):
            kind = type(layer)
            if kind not in (BearerAuth, RequestLimits, ArrivalCounter, LeaseMiddleware):
                return None
            found[kind] = layer
            layer = layer.app
        limits = found.get(RequestLimits)
        if limits is None:
            return None
        counter: ArrivalCounter | None = found.get(ArrivalCounter)
        leases: LeaseMiddleware | None = found.get(LeaseMiddleware)
        return cls(
            access,
            route=layer,
            limits=limits,
            auth=found.get(BearerAuth),
            batcher=counter.batcher if counter is not None else None,
            registry=leases.registry if leases is not None else None,
        )

    def _fused(self, scope: Scope) -> bool:
        """Whether every layer would pass this request on to the endpoint as it is."""
        return (
            scope["type"] == "http"
            and scope["path"] == self.path
            and scope["method"] == self.method
            and not scope.get("root_path")  # the router strips it: DirectRoute leaves those
            and REFUSED not in scope
            and (self.auth is None or self.auth.admits(scope))
            and self.limits.admits(scope)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._fused(scope):
            await self.app(scope, receive, send)
            return
        access = self.app
        started = time.perf_counter()
        exchange, id_header = access.open(scope)
        status: int | None = None

        async def answer(message: Message) -> None:
            """The access layer's send: the status, the id and the serving headers."""
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = access.start(scope, message, id_header)
            await send(message)

        limits = self.limits
        watched = limits.watch(scope, receive, answer)

        async def send_fused(message: Message) -> None:
            """The limits' send and the access layer's in one: ``watched.send``, then ``answer``."""
            nonlocal status
            if watched.abandoned:
                return
            if message["type"] == "http.response.start":
                watched.started = True
                status = message["status"]
                if watched.timed_out:
                    message = access.start(scope, message, id_header, _CLOSE)
                else:
                    message = access.start(scope, message, id_header)
            await send(message)

        final = 500
        try:
            try:
                await self._endpoint(scope, watched.receive, send_fused)
            except Exception:
                if not watched.abandoned:
                    raise
                abandoned_failed()
            finally:
                await limits.release(watched)
        except ClientDisconnect:
            final = CLIENT_CLOSED
        except Exception as exc:
            if status is None:
                await error_response(scope, receive, answer, exc)
            raise
        finally:
            access.close(scope, exchange, final if status is None else status, started)

    async def _endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The arrival counter, the lease layer and ``DirectRoute``, around the endpoint."""
        batcher = self.batcher
        if batcher is not None:
            batcher.arriving_request(scope)
        try:
            try:
                await self.endpoint(scope, receive, send)
            except RestPredictError as error:  # raised before the response starts
                await problem_response(error)(scope, receive, send)
            finally:
                if self.registry is not None:
                    self.registry.release(scope)
        finally:
            if batcher is not None:
                batcher.arrived(scope)
