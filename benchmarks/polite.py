"""Clients that honour ``Retry-After``: a small second population beside h2load's.

h2load's clients send again as soon as a 503 comes. These do what a well-written client does:
each is one keep-alive connection (``http.client``, in a thread of the driver, on the load
core) that POSTs the body, sends again at once after a 2xx, and after a 503 waits the seconds
its ``Retry-After`` names (1 s when it names none) before the next try. Each answer is kept with
its status, its latency and whether a 503 carried ``Retry-After``: h2load's log has no headers,
so these are what checks that every refusal says when to come back.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from benchmarks.h2load import percentile

__all__ = ["Answer", "PoliteClients"]

_TIMEOUT_S = 10.0
_DEFAULT_RETRY_S = 1.0


@dataclass(frozen=True)
class Answer:
    """One request of a polite client."""

    status: int  # -1: the connection failed
    latency_us: int
    retry_after: bool


@dataclass
class PoliteClients:
    """``count`` polite clients, running while the context is entered."""

    url: str
    body: bytes
    count: int
    answers: list[Answer] = field(default_factory=list)
    seconds: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _started: float = 0.0

    def __enter__(self) -> PoliteClients:
        self._started = time.monotonic()
        for _ in range(self.count):
            thread = threading.Thread(target=self._client, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=_TIMEOUT_S + 5)
        self.seconds = time.monotonic() - self._started

    def summary(self) -> dict[str, Any]:
        """What they got: answers, good answers/s, 503s and how many named a ``Retry-After``."""
        answers = self.answers
        admitted = sorted(a.latency_us for a in answers if 200 <= a.status < 300)
        refused = [a for a in answers if a.status == 503]
        return {
            "clients": self.count,
            "requests": len(answers),
            "good_per_s": len(admitted) / self.seconds if self.seconds > 0 else 0.0,
            "refused_503": len(refused),
            "retry_after_503": sum(a.retry_after for a in refused),
            "other": len(answers) - len(admitted) - len(refused),
            "admitted_p99_ms": percentile(admitted, 99) / 1e3 if admitted else None,
        }

    def _client(self) -> None:
        parts = urlsplit(self.url)
        host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
        headers = {"Content-Type": "application/json"}
        connection = http.client.HTTPConnection(host, port, timeout=_TIMEOUT_S)
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                connection.request("POST", path, self.body, headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                self._note(Answer(-1, _micros(started), False))
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=_TIMEOUT_S)
                self._stop.wait(_DEFAULT_RETRY_S)
                continue
            retry_after = response.getheader("Retry-After")
            self._note(Answer(response.status, _micros(started), retry_after is not None))
            if response.status == 503:
                self._stop.wait(_retry_seconds(retry_after))
        connection.close()

    def _note(self, answer: Answer) -> None:
        if not self._stop.is_set():  # answers after the stop are outside the measured time
            with self._lock:
                self.answers.append(answer)


def _micros(started: float) -> int:
    return int((time.perf_counter() - started) * 1e6)


def _retry_seconds(value: str | None) -> float:
    """The wait a ``Retry-After`` asks for, in seconds (its date form is not sent here)."""
    if value is not None and value.strip().isdigit():
        return float(value.strip())
    return _DEFAULT_RETRY_S
