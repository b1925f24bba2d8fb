"""The batch cell's report, drawn from made-up numbers."""

from __future__ import annotations

from benchmarks.batch import Run, render


def test_the_report_states_ratios_and_goal_verdicts() -> None:
    runs = [
        Run("in-memory", 10.0, 8000.0, 60.0, load_s=30.0),
        Run("restpredict", 12.5, 600.0, 20.0),
        Run("restpredict (backend sklearn)", 20.0, 600.0, 28.0),
        Run("restpredict --jobs 2", 10.0, 640.0, 18.0),
    ]
    document = {
        "started_at": "2026-12-03T22:00:00+00:00",
        "rows": 1_000_000,
        "jobs": 2,
        "loadavg": [1.0, 1.0, 1.0],
        "runs": [vars(r) for r in runs],
        "ratio_to_predict": 0.8,
        "sklearn_ratio_to_predict": 0.5,
        "ratio_to_load_predict": 3.2,
        "rss_ratio": 0.075,
        "jobs_speedup": 1.25,
        "jobs_rss_ratio": 0.08,
    }
    report = render(document)
    assert "| restpredict | 80,000 | 12.5 | 600 | 20.0 |" in report
    assert "| in-memory (predict only) | 100,000 | 10.0 | 8,000 | 60.0 |" in report
    assert "**0.80x** (goal >= 0.9: not met); vs load + predict: 3.20x" in report
    assert "**0.07x** (goal <= 0.2: met)" in report or "**0.08x** (goal <= 0.2: met)" in report
    assert "| restpredict (backend sklearn) | 50,000 | 20.0 | 600 | 28.0 |" in report
    assert "- on scikit-learn's own `predict` (backend sklearn): 0.50x" in report
    assert "`--jobs 2` speedup: 1.25x" in report
    assert report.count("--8<-- [start:report]") == 1
