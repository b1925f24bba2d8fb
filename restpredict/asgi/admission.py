"""Admission by queueing delay: refuse new work when requests would wait too long, not at a count.

A fixed limit on requests in flight turns overload into collapse (at 200 clients, 97% were
refused and good answers fell tenfold) and refuses well-behaved clients that merely outnumber
it (32 keep-alive clients against a limit of 32). What overload really is, is requests waiting.
So, as CoDel does for packets, the batcher reports how long each query waited for its model
call, counted from when the server began reading the request (``QueueDelay``), and the server is
overloaded once most waits of a whole ``interval`` were above the target (a burst that drains
within the interval is not overload; with batching a query routinely waits one call for the
batch ahead of it, so the target is never below two model calls).

While overloaded, a new request is refused (503 + Retry-After, at once) when it would wait over
the target: when more requests are in flight than reach the model within the target at the
rate they have lately (Little's law), and more than three full batches. The rest are
admitted, so the model stays busy with a bounded queue instead of alternating between a full
queue and an empty one. Overload ends when a whole interval passes without a refusal (demand
fits again), or without a query (the queue went quiet).

``Admission`` is that decision, asked twice: by the server's HTTP protocol as soon as a
request's headers are in (``server/protocols/``: a refusal there costs a fraction of one made
by the app), and by ``middleware/limits.py`` for any request that got past it (another server,
a test client, a burst admitted within one loop turn).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Hashable

from restpredict.errors import OverloadedError

__all__ = [
    "ADMISSION",
    "MIN_IN_FLIGHT_BATCHES",
    "MIN_TARGET_CALLS",
    "RATE_WINDOW_S",
    "Admission",
    "QueueDelay",
]

#: Key of the lifespan state (and so of every request's ``scope["state"]``) holding the app's
#: ``Admission``, where the server's protocol finds it.
ADMISSION = "restpredict.admission"
#: The target is never below this many model calls: a query that arrives while a batch runs
#: waits for that call, then for its own batch to gather.
MIN_TARGET_CALLS = 2.0
#: While overloaded, at least this many full batches of requests are admitted: one computing,
#: one gathering, and one whose clients are on their way back (a client answered sends its
#: next request before the server has noted its last one done).
MIN_IN_FLIGHT_BATCHES = 3
#: The model's rate of queries is measured over windows this long.
RATE_WINDOW_S = 0.1


class QueueDelay:
    """CoDel-style overload detector fed with queueing delays (seconds).

    Judged over whole intervals: an interval in which most waits were over the target (the
    median wait was) starts an overload. Not the minimum wait, as CoDel has it for packets:
    with batching, a query that finds the model idle goes straight in, and under any load a
    few do, so the minimum stays low while most requests wait long.
    """

    __slots__ = (
        "_above",
        "_below",
        "_last_refused",
        "_window_start",
        "interval",
        "last_seen",
        "overloaded_at",
        "target",
    )

    def __init__(self, target: float, interval: float) -> None:
        self.target = target
        self.interval = interval
        self._window_start = float("-inf")
        self._above = self._below = 0  # waits over and under the target in this interval
        self.last_seen = float("-inf")  # when a query last reached the model
        self._last_refused = float("-inf")
        #: When the current overload began (None: not overloaded), for messages and metrics.
        self.overloaded_at: float | None = None

    def observe(self, delay: float, target: float | None = None) -> None:
        """A query waited ``delay`` seconds between arriving and its model call starting;
        ``target``, if given, replaces ``self.target`` for it (see ``Admission``)."""
        now = time.monotonic()
        if now - self.last_seen > self.interval:  # after a quiet spell, a fresh interval
            self._window_start, self._above, self._below = now, 0, 0
        self.last_seen = now
        if delay < (self.target if target is None else target):
            self._below += 1
        else:
            self._above += 1
        if now - self._window_start >= self.interval:
            if self._above > self._below and self.overloaded_at is None:
                self.overloaded_at = self._last_refused = now
            self._window_start, self._above, self._below = now, 0, 0

    def refused(self) -> None:
        """A request was refused for overload: the overload goes on for another interval."""
        self._last_refused = time.monotonic()

    def overloaded(self) -> bool:
        """Whether the server is overloaded now (requests that would wait long are refused)."""
        if self.overloaded_at is None:
            return False
        now = time.monotonic()
        if now - self.last_seen > self.interval or now - self._last_refused > self.interval:
            # The queue went quiet, or a whole interval needed no refusal: demand fits again.
            self.overloaded_at = None
            return False
        return True


class Admission:
    """Whether a new request is admitted now: the one decision the protocol and the limits share.

    ``max_concurrency`` caps ``admitted``, the requests the limits layer holds (never health
    probes or scrapes). The queueing-delay limit applies to ``in_flight``, the caller's count:
    the protocol counts the server's request tasks (which include those whose task has not run
    yet, so a burst read in one loop turn is judged as a whole), the middleware ``admitted``.
    ``call_seconds`` is set by the batcher: the measured time of a model call.
    """

    __slots__ = (
        "_counted",
        "_overloaded",
        "_too_many",
        "_window_start",
        "admitted",
        "batch_size",
        "call_seconds",
        "delay",
        "early",
        "exempt",
        "max_concurrency",
        "on_client_refused",
        "on_refused",
        "rate",
        "retry_after",
    )

    def __init__(
        self,
        *,
        max_concurrency: int,
        retry_after: int,
        exempt_paths: Collection[str],
        delay: QueueDelay | None = None,
        batch_size: int = 1,
    ) -> None:
        self.max_concurrency = max_concurrency
        self.retry_after = retry_after
        self.exempt = frozenset(exempt_paths)
        self.delay = delay
        self.batch_size = batch_size
        self.call_seconds = 0.0
        #: Requests the limits layer admitted and still holds (health and metrics excluded):
        #: what ``max_concurrency`` caps.
        self.admitted = 0
        #: Queries reaching the model per second, lately (a moving average over windows).
        self.rate = 0.0
        self._counted = 0
        self._window_start = float("-inf")
        #: Whether the server may refuse before the app now (not when the app must shape every
        #: answer itself: CORS headers on a 503, say, or Connection: close while draining).
        self.early: Callable[[], bool] = lambda: True
        #: Called with (path, method, headers, seconds) for each request refused before the
        #: app, so it is counted like any other; returns its request id (``X-Request-ID``).
        self.on_refused: Callable[[str, str, list[tuple[bytes, bytes]], float], str] | None = None
        #: Called with the address of each refused client: the batcher stops expecting its
        #: connection back (else batches would wait for requests that were refused).
        self.on_client_refused: Callable[[Hashable], None] | None = None
        retry = f"retry in {retry_after} s"
        # One error each, and so one fixed body the protocol can keep encoded.
        self._too_many = OverloadedError(
            f"the limit is {max_concurrency} requests in flight (max_concurrency); {retry}"
        )
        target_ms = 0.0 if delay is None else delay.target * 1000
        self._overloaded = OverloadedError(
            f"requests wait over the queueing-delay target of {target_ms:g} ms for the model "
            f"(overloaded); {retry}"
        )

    def target(self) -> float:
        """The queueing-delay target now: the configured one, at least two model calls."""
        assert self.delay is not None
        return max(self.delay.target, MIN_TARGET_CALLS * self.call_seconds)

    def called(self, seconds: float) -> None:
        """A model call takes ``seconds`` on average now (the batcher's ``on_call``)."""
        self.call_seconds = seconds

    def observe(self, delay: float) -> None:
        """A query waited ``delay`` seconds for its model call (the batcher's ``on_wait``)."""
        delay_state = self.delay
        assert delay_state is not None
        delay_state.observe(delay, self.target())
        self._counted += 1
        now = delay_state.last_seen
        elapsed = now - self._window_start
        if elapsed >= RATE_WINDOW_S:
            rate = self._counted / elapsed
            fresh = elapsed > 2 * RATE_WINDOW_S  # after a pause, start afresh
            self.rate = rate if fresh or self.rate == 0 else self.rate + 0.5 * (rate - self.rate)
            self._counted, self._window_start = 0, now

    def refusing(self, in_flight: int) -> bool:
        """Cheap and usually False: whether any request might be refused now."""
        delay = self.delay
        return self.admitted >= self.max_concurrency or (delay is not None and delay.overloaded())

    def refusal(
        self, path: str, in_flight: int, client: Hashable | None = None
    ) -> OverloadedError | None:
        """Why a request for ``path`` from ``client`` is refused now, with ``in_flight`` being
        handled; None: admitted."""
        if not self.refusing(in_flight) or path in self.exempt:
            return None
        if self.admitted >= self.max_concurrency:
            error = self._too_many
        else:
            delay = self.delay
            assert delay is not None
            if in_flight < self.limit():
                return None
            delay.refused()
            error = self._overloaded
        if client is not None and self.on_client_refused is not None:
            self.on_client_refused(client)
        return error

    def limit(self) -> float:
        """While overloaded: how many requests in flight are answered within the target.

        Little's law on the measured rate of queries reaching the model (whatever holds them
        up: the model, or the event loop that reads, decodes and answers them), and never
        below ``MIN_IN_FLIGHT_BATCHES`` full batches.
        """
        return max(self.rate * self.target(), MIN_IN_FLIGHT_BATCHES * self.batch_size)
