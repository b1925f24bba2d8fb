"""One request as the access log and the metrics see it, and how endpoints add to it.

The access middleware (``middleware/access.py``) puts an ``Exchange`` in every HTTP scope;
endpoints add to it through ``timed`` and ``record_rows``, so one record feeds both the log
line and the metrics.
"""

from __future__ import annotations

import time

from starlette.types import Scope

from restpredict.observability.metrics import Stage

__all__ = ["SCOPE_KEY", "Exchange", "exchange_of", "record_rows", "timed"]

#: Where a request's Exchange is kept in its ASGI scope.
SCOPE_KEY = "restpredict.exchange"


class Exchange:
    """One request as the access log and the metrics see it.

    A plain class with slots, not a dataclass: one is made for every request.
    """

    __slots__ = ("request_id", "route", "rows", "stages")

    def __init__(self, request_id: str, route: str) -> None:
        self.request_id = request_id
        self.route = route
        self.rows: int | None = None
        #: The decode and predict steps timed so far, in seconds.
        self.stages: list[tuple[Stage, float]] = []


def exchange_of(scope: Scope) -> Exchange:
    """This request's record (AccessMiddleware gives every HTTP request one)."""
    exchange: Exchange = scope[SCOPE_KEY]
    return exchange


class timed:
    """Time a decode or predict step of this request into its histogram, failed or not.

    A class rather than a generator context manager: it runs twice per prediction request.
    """

    __slots__ = ("scope", "stage", "started")

    def __init__(self, scope: Scope, stage: Stage) -> None:
        self.scope = scope
        self.stage = stage
        self.started = 0.0

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc_info: object) -> None:
        elapsed = time.perf_counter() - self.started
        exchange_of(self.scope).stages.append((self.stage, elapsed))


def record_rows(scope: Scope, rows: int) -> None:
    """Count the validated rows of this request, for the histogram and the log line."""
    exchange_of(scope).rows = rows
