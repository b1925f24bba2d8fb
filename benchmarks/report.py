"""A run's Markdown report, rendered from its JSON document alone (so any committed run can be
re-rendered). Values a document does not hold (``null``) show as ``-``.

The body sits between ``--8<-- [start:report]`` / ``[end:report]`` comments, the section the
documentation's performance page includes (pymdownx.snippets) under its own heading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks.goals import Goal, ServerGoal

SECTION = "report"

_LOAD_HEADERS = (
    "target", "model", "rows/req", "clients", "req/s", "rows/s", "p50 ms", "p99 ms",
    "x ceiling", "x naive", "non-2xx", "socket errors",
)  # fmt: skip
_LOAD_ALIGN = "|---|---|" + "---:|" * (len(_LOAD_HEADERS) - 2)
_SERVER_HEADERS = (
    "target", "model", "launch to first prediction, s (median)", "launches: fastest-slowest, s",
    "peak RSS, MiB", "same answers as the model", "error",
)  # fmt: skip


def render_markdown(document: Mapping[str, Any]) -> str:
    """The whole report: title, how the run was made, loads, servers, verdicts, notes."""
    run = document.get("run") or {}
    started = str(run.get("started_at") or "unknown time").replace("T", " ").replace("Z", " UTC")
    parts = [
        f"# Benchmark run of {started}",
        "",
        f"<!-- --8<-- [start:{SECTION}] -->",
        _summary(document),
        "### Load",
        "",
        _table(_LOAD_HEADERS, _LOAD_ALIGN, [_load_row(cell) for cell in document["cells"]]),
        "### Servers",
        "",
        _table(
            _SERVER_HEADERS,
            "|---|---|---:|---|---:|---|---|",
            [_server_row(server) for server in document.get("servers", [])],
        ),
    ]
    checks = document.get("checks") or []
    if checks:
        subject = run.get("subject") or "restpredict"
        parts += [
            f"### Goals (`--check-targets`, judging `{subject}`)",
            "",
            _table(("goal", "measured", "verdict"), "|---|---:|---|", _check_rows(checks)),
        ]
    if run.get("notes"):
        parts += ["### Notes", "", str(run["notes"]).strip(), ""]
    parts.append(f"<!-- --8<-- [end:{SECTION}] -->")
    return "\n".join(parts) + "\n"


def _summary(document: Mapping[str, Any]) -> str:
    """How the run was made, in a paragraph."""
    run, config = document.get("run") or {}, document.get("config") or {}
    machine = document.get("machine") or {}
    sentences = []
    if run.get("command"):
        commit = f" on commit `{run['commit']}`" if run.get("commit") else ""
        sentences.append(f"`{run['command']}`{commit}.")
    if config:
        launches = 1 + int(config.get("launches", 0))
        sentences.append(
            f"Each load {config.get('duration_s')} s after a {config.get('warmup_s')} s warm-up, "
            f"{config.get('rounds', 1)} round(s) on every server in turns, each server's best "
            f"round kept; each server launched {launches} time(s), median reported."
        )
    packages = machine.get("packages") or {}
    versions = ", ".join(f"{name} {version}" for name, version in packages.items() if version)
    if machine:
        cpus = machine.get("cpus")
        sentences.append(
            f"Machine: {machine.get('description') or f'{cpus} CPUs'}, "
            f"Python {machine.get('python')}; {versions}."
        )
        sentences.append(
            f"Load average {_triple(machine.get('loadavg_at_start'))} at the start and "
            f"{_triple(machine.get('loadavg_at_end'))} at the end (1, 5, 15 min)."
        )
    if run.get("source"):
        sentences.append(str(run["source"]))
    return _wrap(" ".join(sentences)) + "\n"


def _load_row(cell: Mapping[str, Any]) -> list[str]:
    return [
        str(cell["target"]),
        str(cell["model"]),
        str(cell["rows"]),
        str(cell["concurrency"]),
        _number(cell.get("requests_per_s"), ",.0f"),
        _number(cell.get("rows_per_s"), ",.0f"),
        _number(cell.get("p50_ms"), ".2f"),
        _number(cell.get("p99_ms"), ".2f"),
        _number(cell.get("ratio_to_ceiling"), ".2f"),
        _number(cell.get("ratio_to_naive"), ".2f"),
        _number(cell.get("non_2xx"), "d"),
        _number(cell.get("socket_errors"), "d"),
    ]


def _server_row(server: Mapping[str, Any]) -> list[str]:
    launches = server.get("launches") or {}
    count = launches.get("count")
    spread = "-" if count is None else str(count)
    if count is not None and count >= 2 and launches.get("min_s") is not None:
        spread = f"{count}: {launches['min_s']:.2f}-{launches['max_s']:.2f}"
    return [
        str(server["target"]),
        str(server["model"]),
        _number(server.get("startup_s"), ".2f"),
        spread,
        _number(server.get("peak_rss_mib"), ".0f"),
        str(server.get("correctness") or "-"),
        _first_line(server.get("error")),
    ]


def _check_rows(checks: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    return [
        [describe(check), _number(check.get("ratio"), ".2f", suffix="x"), str(check["verdict"])]
        for check in checks
    ]


def describe(check: Mapping[str, Any]) -> str:
    """A stored check's goal in words, as ``--check-targets`` prints it."""
    if "rows" in check:
        return Goal(
            check["model"],
            check["rows"],
            check["concurrency"],
            check["metric"],
            check["baseline"],
            check["factor"],
        ).describe()
    return ServerGoal(
        check["model"], check["metric"], check["baseline"], check["factor"]
    ).describe()


def _table(headers: Sequence[str], align: str, rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", align]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _number(value: Any, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _triple(values: Any) -> str:
    return "-" if not values else ", ".join(f"{value:.2f}" for value in values)


def _first_line(text: Any) -> str:
    return str(text).splitlines()[0] if text else ""


def _wrap(text: str, width: int = 100) -> str:
    """Break a paragraph at spaces, so the file reads well as text too (a code span may span
    lines in Markdown)."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if len(candidate) > width and line:
            lines.append(line)
            line = word
        else:
            line = candidate
    return "\n".join([*lines, line])
