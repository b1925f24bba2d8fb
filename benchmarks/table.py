"""The results as text: one table of loads, one of servers, and the goal verdicts.

Rendered with rich when it is installed, else as plain aligned columns.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from benchmarks.goals import Check
from benchmarks.ratios import CEILING, NAIVE, throughput_ratio
from benchmarks.types import Cell, ServerReport

Rows = list[list[str]]

LOAD_HEADERS = [
    "target", "model", "rows/req", "clients", "req/s", "rows/s",
    "p50 ms", "p99 ms", "non-2xx", "sock errs", "x ceiling", "x naive",
]  # fmt: skip
SERVER_HEADERS = [
    "target", "model", "start->1st predict s", "launches", "peak RSS MiB", "correctness", "error",
]  # fmt: skip


def load_rows(cells: Sequence[Cell]) -> Rows:
    """One row per cell, with its ratios to the baselines measured in the same run."""
    return [
        [
            cell.target,
            cell.model,
            str(cell.rows),
            str(cell.concurrency),
            f"{cell.load.requests_per_s:,.0f}",
            f"{cell.load.requests_per_s * cell.rows:,.0f}",
            f"{cell.load.p50_ms:.2f}",
            f"{cell.load.p99_ms:.2f}",
            str(cell.load.non_2xx),
            str(cell.load.socket_errors),
            _ratio(throughput_ratio(cells, cell, CEILING)),
            _ratio(throughput_ratio(cells, cell, NAIVE)),
        ]
        for cell in cells
    ]


def server_rows(servers: Sequence[ServerReport]) -> Rows:
    """One row per server process."""
    return [
        [
            report.target,
            report.model,
            "-" if report.startup_s is None else f"{report.startup_s:.2f}",
            _spread(report.launches_s),
            "-" if report.peak_rss_mib is None else f"{report.peak_rss_mib:.0f}",
            report.correctness,
            _first_line(report.error or ""),
        ]
        for report in servers
    ]


def _spread(launches: Sequence[float]) -> str:
    """``n: fastest-slowest`` of a server's launches (the column before is their median)."""
    if len(launches) < 2:
        return str(len(launches))
    return f"{len(launches)}: {min(launches):.2f}-{max(launches):.2f}"


def check_lines(checks: Sequence[Check], subject: str) -> list[str]:
    """``PASS``/``FAIL``/``SKIP`` then the goal and the measured ratio, one goal a line."""
    return [
        f"{check.verdict}  {subject} {check.goal.describe()}"
        + ("" if check.ratio is None else f" (measured {check.ratio:.2f}x)")
        for check in checks
    ]


def render(title: str, headers: list[str], rows: Rows) -> str:
    """A table as text: rich's when available, plain columns otherwise."""
    try:
        return _render_rich(title, headers, rows)
    except ImportError:
        return _render_plain(title, headers, rows)


def _render_rich(title: str, headers: list[str], rows: Rows) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for index, header in enumerate(headers):
        table.add_column(header, justify="left" if index < 2 else "right")
    for row in rows:
        table.add_row(*row)
    output = io.StringIO()
    Console(file=output, width=160, color_system=None).print(table)
    return output.getvalue()


def _render_plain(title: str, headers: list[str], rows: Rows) -> str:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = [title] + ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [headers, *rows]]
    return "\n".join(lines) + "\n"


def _first_line(text: str, limit: int = 60) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
