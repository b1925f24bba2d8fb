"""Requests the server refused before the app: counted like any request, logged in aggregate.

Under overload the server's protocol answers 503 as soon as a request's headers are in
(``asgi/admission.py``, ``server/protocols/``), without the app and so without the access
layer. Each such refusal is still one ``restpredict_requests_total{status="503"}`` and one
duration observation, under its route's template, as if the access layer had seen it. What it
does not get is an access log line each: at thousands of refusals a second those lines were a
large share of a refusal's cost and say nothing one line cannot. One warning a second at most
says how many were refused since the last one.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.applications import Starlette

from restpredict.middleware.access import UNMATCHED, id_source, request_id, route_template
from restpredict.observability.metrics import Metrics

__all__ = ["SUMMARY_EVERY_S", "EarlyRefusals"]

#: Refusals before the app are logged in one line at most this often.
SUMMARY_EVERY_S = 1.0
_TEMPLATE_CACHE_SIZE = 1024

logger = logging.getLogger("uvicorn.error")


class EarlyRefusals:
    """``Admission.on_refused``: metrics for each refusal, a summary line for many; it gives
    each refusal its request id (the client's ``X-Request-ID`` if safe, as the access layer
    does, else a fresh one from the same kind of source)."""

    def __init__(self, app: Starlette, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._templates: dict[tuple[str, str], str] = {}
        self._unlogged = 0
        self._since = 0.0
        self._summary: asyncio.TimerHandle | None = None
        self._new_id = id_source()

    def __call__(
        self, path: str, method: str, headers: list[tuple[bytes, bytes]], seconds: float
    ) -> str:
        self.metrics.observe_request(self._template(path, method), method, 503, seconds)
        self._unlogged += 1
        if self._summary is None:
            loop = asyncio.get_running_loop()
            self._since = loop.time()
            self._summary = loop.call_later(SUMMARY_EVERY_S, self._log)
        return request_id({"headers": headers}, self._new_id)

    def _log(self) -> None:
        self._summary = None
        elapsed = asyncio.get_running_loop().time() - self._since
        logger.warning(
            "overloaded: %d requests refused with 503 in the last %.1f s, before the app "
            "(counted in restpredict_requests_total, not in the access log)",
            self._unlogged,
            elapsed,
        )
        self._unlogged = 0

    def _template(self, path: str, method: str) -> str:
        template = self._templates.get((path, method))
        if template is None:
            scope = {"type": "http", "path": path, "root_path": "", "method": method}
            template = route_template({**scope, "app": self.app})
            if template != UNMATCHED and len(self._templates) < _TEMPLATE_CACHE_SIZE:
                self._templates[(path, method)] = template
        return template
