"""``python -m benchmarks``: parse flags, run, print the tables, check the goals, and write the
run's JSON and Markdown report to ``benchmarks/results/``.

``python -m benchmarks chart RESULTS.json`` draws a run's chart (PNG) from its JSON, and
``python -m benchmarks report RESULTS.json`` re-renders its Markdown report.

Exit codes: 0 all measured (and every checked goal met or skipped), 1 a server failed or a goal
failed, 2 the run could not start (bad flags, wrk or restpredict missing, unreadable file).
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType

from benchmarks import goals, table
from benchmarks.chart import write_chart
from benchmarks.errors import BenchmarkError
from benchmarks.models import DEFAULT_MODELS, MODELS
from benchmarks.report import render_markdown
from benchmarks.results import (
    RESULTS_DIR,
    read_json,
    run_facts,
    to_dict,
    write_json,
    write_run,
    write_text,
)
from benchmarks.runner import run
from benchmarks.targets import DEFAULT_TARGETS, TARGETS
from benchmarks.types import RunConfig

OK, FAILED, STARTUP_FAILURE = 0, 1, 2
QUICK_DURATION_S, QUICK_WARMUP_S = 3, 1


def build_parser() -> argparse.ArgumentParser:
    """The flags, with defaults for a full run."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--targets", default=",".join(DEFAULT_TARGETS), help=f"comma list of {sorted(TARGETS)}")
    add("--models", default=",".join(DEFAULT_MODELS), help=f"comma list of {sorted(MODELS)}")
    add("--rows", default="1,100", help="rows per request, comma list (default 1,100)")
    add("--concurrency", default="1,32", help="wrk connections, comma list (default 1,32)")
    add("--duration", type=int, default=10, help="whole seconds of load per cell (default 10)")
    add("--warmup", type=int, default=2, help="whole seconds of unrecorded load first (default 2)")
    add("--rounds", type=int, default=1, help="turns per load per server; best kept (default 1)")
    add("--launches", type=int, default=3, help="more launches per server; median (default 3)")
    add("--quick", action="store_true", help=f"smoke run: {QUICK_DURATION_S} s a cell, 1 launch")
    add("--extra", default="", help='extra args for restpredict, e.g. "--max-batch-size 64"')
    add("--results-dir", type=Path, default=RESULTS_DIR, help=f"where the run's JSON and "
        f"Markdown go, named by its UTC start (default {RESULTS_DIR})")  # fmt: skip
    add("--notes", type=Path, help="a Markdown file added to the run's report as its notes")
    add("--json", type=Path, help="also write the results as JSON to this path")
    add("--check-targets", action="store_true", help="print PASS/FAIL per ratio target")
    add("--subject", default="restpredict", help="the target --check-targets judges")
    add("--startup-timeout", type=float, default=60.0, help="seconds to first prediction")
    add("--server-core", type=int, default=0, help="CPU for servers (default 0)")
    add("--load-core", type=int, default=1, help="CPU for wrk and this driver (default 1)")
    return parser


def config_from(args: argparse.Namespace) -> RunConfig:
    """The run's settings, from parsed flags; ``--quick`` overrides the durations."""
    return RunConfig(
        targets=_names(args.targets),
        models=_names(args.models),
        rows=tuple(int(n) for n in _names(args.rows)),
        concurrency=tuple(int(n) for n in _names(args.concurrency)),
        duration_s=QUICK_DURATION_S if args.quick else args.duration,
        warmup_s=QUICK_WARMUP_S if args.quick else args.warmup,
        extra_args=tuple(shlex.split(args.extra)),
        startup_timeout_s=args.startup_timeout,
        server_core=args.server_core,
        load_core=args.load_core,
        rounds=max(1, args.rounds),
        launches=0 if args.quick else max(0, args.launches),
    )


def build_redraw_parser(command: str) -> argparse.ArgumentParser:
    """``chart`` or ``report``: one results file in, one drawing out."""
    what = "the chart (PNG)" if command == "chart" else "the Markdown report"
    parser = argparse.ArgumentParser(
        prog=f"python -m benchmarks {command}", description=f"Draw {what} of a run's results."
    )
    parser.add_argument("results", type=Path, help="a run's JSON, e.g. benchmarks/results/*.json")
    suffix = ".png" if command == "chart" else ".md"
    parser.add_argument("--output", "-o", type=Path, help=f"default: RESULTS with {suffix}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, or redraw a run's chart or report; the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] in (["chart"], ["report"]):
        return redraw(arguments[0], arguments[1:])
    if arguments[:1] == ["overload"]:
        from benchmarks.overload import main as overload_main  # a cell of its own

        return overload_main(arguments[1:])
    if arguments[:1] == ["batch"]:
        from benchmarks.batch import main as batch_main  # pyarrow only for this cell

        return batch_main(arguments[1:])
    if arguments[:1] == ["workers"]:
        from benchmarks.workers import main as workers_main  # a cell of its own

        return workers_main(arguments[1:])
    args = build_parser().parse_args(arguments)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so `finally` stops the servers
    started = datetime.now(timezone.utc)
    try:
        config = config_from(args)
        unknown = sorted(set(config.models) - set(MODELS))
        if unknown:
            raise BenchmarkError(f"unknown model(s) {unknown}; known: {sorted(MODELS)}")
        notes = _read_notes(args.notes)
        results = run(config, _progress)
    except (BenchmarkError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return STARTUP_FAILURE
    checks = (
        goals.evaluate(results.cells, results.servers, args.subject) if args.check_targets else []
    )
    print(table.render("Load", table.LOAD_HEADERS, table.load_rows(results.cells)))
    print(table.render("Servers", table.SERVER_HEADERS, table.server_rows(results.servers)))
    for line in table.check_lines(checks, args.subject):
        print(line)
    facts = run_facts(started, arguments, args.subject, notes)
    document = to_dict(config, results, checks, run=facts)
    json_path, report_path = write_run(args.results_dir, document)
    print(f"results: {json_path} and {report_path}")
    if args.json is not None:
        write_json(args.json, document)
    failed = results.failed or any(check.verdict == "FAIL" for check in checks)
    return FAILED if failed else OK


def redraw(command: str, argv: Sequence[str]) -> int:
    """``chart``/``report``: read a run's JSON, write its chart or report; the exit code."""
    args = build_redraw_parser(command).parse_args(argv)
    suffix = ".png" if command == "chart" else ".md"
    output: Path = args.output or args.results.with_suffix(suffix)
    try:
        document = read_json(args.results)
        if command == "chart":
            write_chart(document, output)
        else:
            write_text(output, render_markdown(document))
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return STARTUP_FAILURE
    print(output)
    return OK


def _read_notes(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text()
    except OSError as error:
        raise BenchmarkError(f"cannot read --notes {path}: {error.strerror}") from error


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
