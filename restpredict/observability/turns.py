"""Work deferred to the end of the event-loop turn, done back to back.

Under load many requests finish in the same turn of the event loop. What each leaves to do
that its response does not wait for (its metric observations, its access log line, the write
of that line) costs markedly less done for all of them together at the end of the turn than
interleaved with the request path: the code and data of one kind of work stay in the CPU's
caches. Measured in the server at 32 clients: an access log line cost 25.6 µs emitted as its
request ended, 12.3 µs emitted with the others of its turn.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Generic, TypeVar

__all__ = ["TurnQueue"]

T = TypeVar("T")


class TurnQueue(Generic[T]):
    """Items added during one event-loop turn, handed to ``drain`` together at its end.

    An item added where no event loop runs (start-up, another thread) is handed over at once,
    after those pending, so the order holds. The end-of-turn call is queued on the loop of the
    first item of a turn; if that loop closed before running it, the next item added on
    another loop queues one there, so nothing stays stuck. ``flush`` hands over what is
    pending now (at exit, say). ``lock``, if given, is held while handing over.
    """

    __slots__ = ("_drain", "_items", "_lock", "_on")

    def __init__(
        self, drain: Callable[[list[T]], None], lock: AbstractContextManager[object] | None = None
    ) -> None:
        self._drain = drain
        self._lock = lock if lock is not None else contextlib.nullcontext()
        self._items: list[T] = []
        self._on: asyncio.AbstractEventLoop | None = None

    def add(self, item: T) -> None:
        self._items.append(item)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._on is not loop:
            self._on = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        with self._lock:
            self._on = None
            items = self._items
            if items:
                self._items = []
                self._drain(items)

    def __len__(self) -> int:
        return len(self._items)
