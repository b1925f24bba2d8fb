"""One h2load run over HTTP/1.1, pinned to the load core, read back request by request.

The overload cell needs what wrk cannot give: the latency of the admitted (2xx) answers apart
from the refusals'. wrk keeps one histogram for every answer; h2load (Debian's
``nghttp2-client``) writes one line per request to its ``--log-file``: the start time in µs
since the epoch, the status (-1 for a failed stream) and the µs until the answer's end. Its
clients are keep-alive connections, one request in flight each (``-m 1``, no pipelining), that
send the next request as soon as an answer comes, 503s included: like wrk's, they ignore
``Retry-After``. One thread (``-t1``), as for wrk: it has one core.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.errors import BenchmarkError

__all__ = ["Requests", "figures", "parse_log", "percentile", "require_h2load", "run"]

# h2load stops by itself after its duration; past this slack it is presumed hung and killed.
_SLACK_S = 30.0
# Its summary's "failed" counts non-2xx answers too; "errored" and "timeout" are the socket's.
_ERRORS = re.compile(r"(\d+) errored, (\d+) timeout")


@dataclass(frozen=True)
class Requests:
    """Every request of one run, in the order their answers ended."""

    statuses: list[int]
    latencies_us: list[int]
    #: From the first request's start to the last answer's end.
    seconds: float
    #: Requests that got no answer: h2load's "errored" and "timeout" (its summary line).
    errors: int


def require_h2load() -> None:
    """Fail early, with the install command, when h2load is missing."""
    if shutil.which("h2load") is None:
        raise BenchmarkError(
            "h2load is not installed: apt-get update && apt-get install -y nghttp2-client"
        )


def run(
    url: str, body_path: Path, connections: int, duration_s: int, core: int, log_path: Path
) -> Requests:
    """POST the JSON body at ``url`` over ``connections`` connections for ``duration_s``.

    h2load appends to its log: ``log_path`` is emptied first.
    """
    log_path.unlink(missing_ok=True)
    argv = [
        "taskset", "-c", str(core), "h2load", "--h1", "-t1", "-m1",
        f"-c{connections}", f"-D{duration_s}", f"--log-file={log_path}",
        "-d", str(body_path), "-H", "content-type: application/json", url,
    ]  # fmt: skip
    try:
        finished = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration_s + _SLACK_S, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise BenchmarkError(f"h2load did not finish within {duration_s + _SLACK_S:g} s") from error
    errors = _ERRORS.search(finished.stdout)
    if finished.returncode != 0 or errors is None:
        words = finished.stderr.strip() or finished.stdout.strip()
        raise BenchmarkError(f"h2load failed (exit {finished.returncode}): {words}")
    return parse_log(log_path.read_text(), sum(int(n) for n in errors.groups()))


def parse_log(text: str, errors: int = 0) -> Requests:
    """The requests of an h2load ``--log-file`` (tab-separated: start µs, status, µs taken)."""
    statuses: list[int] = []
    latencies: list[int] = []
    first, last = float("inf"), float("-inf")
    for line in text.splitlines():
        if not line.strip():
            continue
        start, status, latency = (int(field) for field in line.split("\t")[:3])
        statuses.append(status)
        latencies.append(latency)
        first, last = min(first, start), max(last, start + latency)
    seconds = (last - first) / 1e6 if statuses else 0.0
    return Requests(statuses=statuses, latencies_us=latencies, seconds=seconds, errors=errors)


def figures(clients: int, run: Requests) -> dict[str, Any]:
    """One load's figures, exact, from each of its requests' status and latency."""
    statuses, latencies_us, seconds = run.statuses, run.latencies_us, run.seconds
    admitted = sorted(us for status, us in zip(statuses, latencies_us) if 200 <= status < 300)
    refused = sorted(us for status, us in zip(statuses, latencies_us) if status == 503)
    every = sorted(latencies_us)
    return {
        "clients": clients,
        "requests": len(statuses),
        "seconds": seconds,
        "good_per_s": len(admitted) / seconds if seconds > 0 else 0.0,
        "refused_503": len(refused),
        "other_non_2xx": len(statuses) - len(admitted) - len(refused),
        "socket_errors": run.errors,
        "p50_ms": percentile(every, 50) / 1e3,
        "p99_ms": percentile(every, 99) / 1e3,
        "admitted_p50_ms": percentile(admitted, 50) / 1e3,
        "admitted_p99_ms": percentile(admitted, 99) / 1e3,
        "refused_p50_ms": percentile(refused, 50) / 1e3 if refused else None,
        "refused_p99_ms": percentile(refused, 99) / 1e3 if refused else None,
    }


def percentile(ordered: Sequence[int], q: float) -> float:
    """The nearest-rank ``q``th percentile of sorted values; 0 for none."""
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n q / 100), at least 1
    return float(ordered[int(rank) - 1])
