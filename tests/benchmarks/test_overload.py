"""The overload cell's verdicts, from loads made up to sit on each side of every goal."""

from __future__ import annotations

from typing import Any

from benchmarks.h2load import figures, parse_log, percentile
from benchmarks.overload import judge, render


def _load(clients: int, good: float, p99: float, refused: int = 0, **more: Any) -> dict[str, Any]:
    load: dict[str, Any] = {
        "clients": clients,
        "requests": int(good * 10) + refused,
        "seconds": 10.0,
        "good_per_s": good,
        "refused_503": refused,
        "other_non_2xx": 0,
        "socket_errors": 0,
        "p50_ms": p99 / 2,
        "p99_ms": p99,
        "admitted_p99_ms": p99,
        "refused_p50_ms": 0.4 if refused else None,
        "refused_p99_ms": 0.5 if refused else None,
    }
    if refused:
        load["polite"] = _polite(2)
    load.update(more)
    return load


def _polite(refused: int, bare: int = 0) -> dict[str, Any]:
    """What clients that honour Retry-After saw: ``refused`` 503s, ``bare`` without it."""
    return {
        "clients": 8,
        "requests": 100,
        "good_per_s": 10.0,
        "refused_503": refused,
        "retry_after_503": refused - bare,
        "other": 0,
        "admitted_p99_ms": 6.0,
    }


def _verdicts(loads: list[dict[str, Any]]) -> dict[str, bool]:
    return {goal["goal"]: goal["met"] for goal in judge(loads)}


def test_overload_goals_are_ratios_to_the_peak_and_the_unloaded_p99() -> None:
    loads = [
        _load(1, 1000, 2.0),
        _load(32, 8000, 5.0),
        _load(64, 7000, 9.0, refused=1),  # a 503 at 64 well-behaved clients
        _load(200, 7300, 5.9, refused=5000),  # 0.91x the peak, 2.95x the unloaded p99
        _load(320, 7100, 7.0, refused=9000, polite=_polite(2, bare=1)),  # 0.89x, 3.5x, a bare 503
    ]
    verdicts = _verdicts(loads)
    assert verdicts == {
        "32 clients: no 503, no error": True,
        "64 clients: no 503, no error": False,
        "200 clients: good answers/s >= 0.9x peak": True,
        "200 clients: admitted p99 <= 3x unloaded p99": True,
        "200 clients: admitted p99 <= 3x p99 at the peak (32 clients)": True,
        "200 clients: the rest are 503 + Retry-After": True,
        "320 clients: good answers/s >= 0.9x peak": False,
        "320 clients: admitted p99 <= 3x unloaded p99": False,
        "320 clients: admitted p99 <= 3x p99 at the peak (32 clients)": True,
        "320 clients: the rest are 503 + Retry-After": False,
    }
    document = {
        "model": "rf",
        "rows": 1,
        "duration_s": 10,
        "loads": loads,
        "goals": judge(loads),
        "peak_rss_mib": 200.0,
        "loadavg": [1.0, 1.0, 1.0],
    }
    report = render(document)
    assert (
        "| 200 | 7,300 | 0.91x | 5,000 | 0 | 2.95 | 5.90 | 2.95x | 1.18x | 0.40 | 0.50 | - |"
        in report
    )
    assert "| 320 | 8 | 100 | 10 | 2 | 1 | 6.00 |" in report
    assert report.count("MISSED") == 4


def test_each_requests_status_and_latency_make_exact_figures() -> None:
    """h2load's log, one line per request: 2xx and 503 latencies kept apart, nothing estimated."""
    lines = [f"{1_000_000 + i * 1000}\t200\t{1000 + i}" for i in range(99)]
    lines += ["1000000\t503\t50000", "1000000\t503\t70", "1050000\t-1\t5", ""]
    run = parse_log("\n".join(lines), errors=1)
    assert run.seconds == (1_000_000 + 98 * 1000 + 1098 - 1_000_000) / 1e6
    load = figures(200, run)
    assert load["requests"] == 102
    assert load["refused_503"] == 2 and load["other_non_2xx"] == 1 and load["socket_errors"] == 1
    assert load["good_per_s"] == 99 / run.seconds
    assert load["admitted_p99_ms"] == 1.098  # the slowest 2xx (rank 99 of 99), not a 503
    assert load["refused_p50_ms"] == 0.07 and load["refused_p99_ms"] == 50.0


def test_percentile_is_the_nearest_rank() -> None:
    assert percentile([], 99) == 0.0
    assert percentile([7], 50) == 7.0
    assert percentile(list(range(1, 101)), 99) == 99.0
    assert percentile(list(range(1, 101)), 50) == 50.0
    assert percentile(list(range(1, 201)), 99.5) == 199.0
