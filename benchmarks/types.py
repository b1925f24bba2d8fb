"""The shapes passed between the benchmark's modules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: A model's predictions, as JSON would carry them.
Predictions = list[int]


@dataclass(frozen=True)
class RunConfig:
    """Everything one benchmark run needs, parsed once by the CLI."""

    targets: tuple[str, ...]
    models: tuple[str, ...]
    rows: tuple[int, ...]
    concurrency: tuple[int, ...]
    duration_s: int
    warmup_s: int
    extra_args: tuple[str, ...]
    startup_timeout_s: float
    server_core: int
    load_core: int
    #: Each load runs this many times on every server, in turns; cells report the best round.
    rounds: int = 1
    #: After the loads, every server is launched this many more times, in turns; its start-up
    #: time is the median of all its launches, the first included.
    launches: int = 0


@dataclass(frozen=True)
class Payload:
    """One request body, written to a file for wrk, with the answer a correct server gives."""

    rows: int
    body: bytes
    path: Path
    expected: dict[str, Predictions]


@dataclass(frozen=True)
class LoadResult:
    """What wrk measured for one (server, payload, concurrency) cell."""

    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def requests_per_s(self) -> float:
        """Completed requests per second, errors included (wrk counts them as requests)."""
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def clean(self) -> bool:
        """No non-2xx answer and no socket error (wrk may count one failure as both)."""
        return self.non_2xx == 0 and self.socket_errors == 0


@dataclass(frozen=True)
class Cell:
    """One row of the results table: a load result with its coordinates."""

    target: str
    model: str
    rows: int
    concurrency: int
    load: LoadResult


@dataclass(frozen=True)
class ServerReport:
    """Facts about one server process: startup, memory, correctness, or why it failed."""

    target: str
    model: str
    startup_s: float | None
    peak_rss_mib: float | None
    correctness: str
    error: str | None = None
    #: Every launch's seconds to the first prediction; ``startup_s`` is their median.
    launches_s: tuple[float, ...] = ()
