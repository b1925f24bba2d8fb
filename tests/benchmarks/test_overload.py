"""The overload cell's verdicts, from loads made up to sit on each side of every goal."""

from __future__ import annotations

from typing import Any

from benchmarks.overload import judge, render


def _load(clients: int, good: float, p99: float, refused: int = 0, **more: Any) -> dict[str, Any]:
    load: dict[str, Any] = {
        "clients": clients,
        "requests": int(good * 10) + refused,
        "seconds": 10.0,
        "good_per_s": good,
        "refused_503": refused,
        "retry_after_503": refused,
        "other_non_2xx": 0,
        "socket_errors": 0,
        "p50_ms": p99 / 2,
        "p99_ms": p99,
        "admitted_p99_ms": p99,
        "refused_p99_ms": 0.5 if refused else None,
    }
    load.update(more)
    return load


def _verdicts(loads: list[dict[str, Any]]) -> dict[str, bool]:
    return {goal["goal"]: goal["met"] for goal in judge(loads)}


def test_overload_goals_are_ratios_to_the_peak_and_the_unloaded_p99() -> None:
    loads = [
        _load(1, 1000, 2.0),
        _load(32, 8000, 5.0),
        _load(64, 7000, 9.0, refused=1),  # a 503 at 64 well-behaved clients
        _load(200, 7300, 5.9, refused=5000),  # 0.91x the peak, 2.95x the unloaded p99
        _load(320, 7100, 7.0, refused=9000, retry_after_503=8999),  # 0.89x, 3.5x, one bare 503
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
    assert "| 200 | 7,300 | 0.91x | 5,000 | 5,000 | 0 |" in report
    assert report.count("MISSED") == 4
