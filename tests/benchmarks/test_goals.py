"""The benchmark's ``--check-targets`` verdicts (benchmarks/goals.py), on made-up numbers."""

from __future__ import annotations

from benchmarks.goals import SERVER_GOALS, ServerGoal, evaluate
from benchmarks.types import Cell, LoadResult, ServerReport


def cell(target: str, model: str, rps: float, p99_ms: float = 4.0, non_2xx: int = 0) -> Cell:
    load = LoadResult(int(rps * 10), 10.0, 3.0, p99_ms, 9.0, non_2xx, 0)
    return Cell(target, model, 1, 32, load)


def server(target: str, model: str, launches: tuple[float, ...], rss: float) -> ServerReport:
    median = sorted(launches)[len(launches) // 2]
    return ServerReport(target, model, median, rss, "ok", None, launches)


def verdicts(cells: list[Cell], servers: list[ServerReport]) -> dict[str, str]:
    return {check.goal.describe(): check.verdict for check in evaluate(cells, servers, "rp")}


def test_load_goals_compare_with_the_same_run_and_fail_on_errors() -> None:
    cells = [cell("ceiling", "-", 10_000), cell("rp", "lr", 8_100), cell("rp", "rf", 2_000)]
    got = verdicts(cells, [])
    assert got["lr 1 row(s) x 32 client(s): req/s >= 0.8x ceiling"] == "PASS"
    assert got["rf 1 row(s) x 32 client(s): req/s >= 0.25x ceiling"] == "FAIL"
    assert got["lr 100 row(s) x 32 client(s): req/s >= 1x ceiling"] == "SKIP"  # not measured
    cells[1] = cell("rp", "lr", 9_000, non_2xx=3)
    assert verdicts(cells, [])["lr 1 row(s) x 32 client(s): req/s >= 0.8x ceiling"] == "FAIL"


def test_launch_is_the_median_against_naive_and_memory_has_a_margin() -> None:
    servers = [
        server("naive", "lr", (1.50, 1.46, 2.40), 170),  # one slow launch does not decide it
        server("rp", "lr", (1.49, 1.48, 1.47), 210),
        server("naive", "rf", (1.50, 1.52, 1.51), 180),
        server("rp", "rf", (1.60, 1.58, 1.59), 240),
    ]
    got = verdicts([], servers)
    assert got["lr: launch to first prediction <= 1x naive"] == "PASS"
    assert got["rf: launch to first prediction <= 1x naive"] == "FAIL"
    assert got["lr: peak RSS <= 1.25x naive"] == "PASS"  # 1.24x
    assert got["rf: peak RSS <= 1.25x naive"] == "FAIL"  # 1.33x
    failed = ServerReport("rp", "lr", None, None, "failed", "exited with code 3")
    assert verdicts([], [servers[0], failed])["lr: peak RSS <= 1.25x naive"] == "SKIP"
    assert {goal.metric for goal in SERVER_GOALS} == {"launch", "rss"}
    assert ServerGoal("lr", "rss", "naive", 1.25).describe() == "lr: peak RSS <= 1.25x naive"
