"""Admission by queueing delay: refuse new work when requests wait too long, not at a count.

A fixed limit on requests in flight turns overload into collapse (at 200 clients, 97% were
refused and good answers fell tenfold) and refuses well-behaved clients that merely outnumber
it (32 keep-alive clients against a limit of 32). What overload really is, is requests waiting:
so, as CoDel does for packets, the batcher reports how long each query waited for its model
call, and the server is overloaded once that wait has stayed above ``target`` for a whole
``interval`` (a burst that drains within the interval is not overload). While overloaded, new
prediction requests are answered 503 + Retry-After at once; it ends as soon as a query waits
less than the target again, or when no query has been seen for an interval.
"""

from __future__ import annotations

import time

__all__ = ["QueueDelay"]


class QueueDelay:
    """CoDel-style overload detector fed with queueing delays (seconds)."""

    __slots__ = ("_above_since", "_last_seen", "interval", "overloaded_at", "target")

    def __init__(self, target: float, interval: float) -> None:
        self.target = target
        self.interval = interval
        self._above_since: float | None = None  # first of an unbroken run of late queries
        self._last_seen = float("-inf")
        #: When the current overload began (None: not overloaded), for messages and metrics.
        self.overloaded_at: float | None = None

    def observe(self, delay: float) -> None:
        """A query waited ``delay`` seconds between arriving and its model call starting."""
        now = time.monotonic()
        self._last_seen = now
        if delay < self.target:
            self._above_since = None
            self.overloaded_at = None
        elif self._above_since is None:
            self._above_since = now
        elif self.overloaded_at is None and now - self._above_since >= self.interval:
            self.overloaded_at = now

    def overloaded(self) -> bool:
        """Whether new work should be refused now."""
        if self.overloaded_at is None:
            return False
        if time.monotonic() - self._last_seen > self.interval:  # the queue went quiet
            self._above_since = self.overloaded_at = None
            return False
        return True
