"""The performance targets behind ``--check-targets``, each a ratio to a baseline.

A goal is one comparison for one model: a load cell's req/s or latency (``Goal``) or a server's
launch time or memory (``ServerGoal``). A goal whose numbers were not measured is SKIP, not FAIL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from benchmarks.ratios import CEILING, NAIVE, baseline_cell
from benchmarks.types import Cell, ServerReport

Metric = Literal["rps", "p50", "p99"]
ServerMetric = Literal["launch", "rss"]
Verdict = Literal["PASS", "FAIL", "SKIP"]


@dataclass(frozen=True)
class Goal:
    """``subject``'s metric, within ``factor`` of the baseline's (at least for req/s, at most
    for latency), on one load."""

    model: str
    rows: int
    concurrency: int
    metric: Metric
    baseline: str
    factor: float

    def describe(self) -> str:
        """The goal in words, e.g. ``lr 1 row x 32: req/s >= 0.8x ceiling``."""
        relation = ">=" if self.metric == "rps" else "<="
        name = "req/s" if self.metric == "rps" else self.metric
        return (
            f"{self.model} {self.rows} row(s) x {self.concurrency} client(s): "
            f"{name} {relation} {self.factor:g}x {self.baseline}"
        )


@dataclass(frozen=True)
class ServerGoal:
    """``subject``'s median launch to first prediction, or its peak RSS, at most ``factor`` times
    the baseline's, serving the same model."""

    model: str
    metric: ServerMetric
    baseline: str
    factor: float

    def describe(self) -> str:
        """The goal in words, e.g. ``lr: launch to first prediction <= 1x naive``."""
        name = "launch to first prediction" if self.metric == "launch" else "peak RSS"
        return f"{self.model}: {name} <= {self.factor:g}x {self.baseline}"


@dataclass(frozen=True)
class Check:
    """A goal's verdict, with the measured ratio when there is one."""

    goal: Goal | ServerGoal
    verdict: Verdict
    ratio: float | None


GOALS: tuple[Goal, ...] = (
    Goal("lr", 1, 32, "rps", CEILING, 0.8),
    Goal("lr", 1, 32, "p99", CEILING, 2.0),
    Goal("rf", 1, 32, "rps", CEILING, 0.25),
    Goal("lr", 100, 32, "rps", CEILING, 1.0),
    Goal("rf", 100, 32, "rps", CEILING, 1.0),
    Goal("lr", 1, 1, "rps", NAIVE, 1.0),
    Goal("lr", 1, 1, "p50", NAIVE, 1.0),
    Goal("rf", 1, 1, "rps", NAIVE, 1.0),
    Goal("rf", 1, 1, "p50", NAIVE, 1.0),
)

SERVER_GOALS: tuple[ServerGoal, ...] = (
    ServerGoal("lr", "launch", NAIVE, 1.0),
    ServerGoal("rf", "launch", NAIVE, 1.0),
    ServerGoal("lr", "rss", NAIVE, 1.25),
    ServerGoal("rf", "rss", NAIVE, 1.25),
)


def evaluate(cells: Sequence[Cell], servers: Sequence[ServerReport], subject: str) -> list[Check]:
    """Every goal for the ``subject`` target."""
    return [_evaluate(goal, cells, subject) for goal in GOALS] + [
        _evaluate_server(goal, servers, subject) for goal in SERVER_GOALS
    ]


def _evaluate_server(goal: ServerGoal, servers: Sequence[ServerReport], subject: str) -> Check:
    def value(target: str) -> float | None:
        report = next((r for r in servers if (r.target, r.model) == (target, goal.model)), None)
        if report is None or report.error is not None:
            return None
        return report.startup_s if goal.metric == "launch" else report.peak_rss_mib

    mine, theirs = value(subject), value(goal.baseline)
    if mine is None or not theirs:
        return Check(goal, "SKIP", None)
    ratio = mine / theirs
    return Check(goal, "PASS" if ratio <= goal.factor else "FAIL", ratio)


def _evaluate(goal: Goal, cells: Sequence[Cell], subject: str) -> Check:
    cell = next(
        (
            c
            for c in cells
            if (c.target, c.model, c.rows, c.concurrency)
            == (subject, goal.model, goal.rows, goal.concurrency)
        ),
        None,
    )
    other = baseline_cell(cells, cell, goal.baseline) if cell is not None else None
    if cell is None or other is None:
        return Check(goal, "SKIP", None)
    mine, theirs = _metric(cell, goal.metric), _metric(other, goal.metric)
    if theirs == 0:
        return Check(goal, "SKIP", None)
    ratio = mine / theirs
    met = ratio >= goal.factor if goal.metric == "rps" else ratio <= goal.factor
    return Check(goal, "PASS" if met and cell.load.clean else "FAIL", ratio)


def _metric(cell: Cell, metric: Metric) -> float:
    if metric == "rps":
        return cell.load.requests_per_s
    return cell.load.p50_ms if metric == "p50" else cell.load.p99_ms
