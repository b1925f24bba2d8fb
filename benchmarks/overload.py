"""``python -m benchmarks overload``: one model under far more clients than it can serve.

Starts ``restpredict serve`` on the random forest (``--model``), pinned to the server core as
in the main run, and loads it with h2load (``benchmarks/h2load.py``: keep-alive clients that
send the next request as soon as an answer comes, 503s included: they ignore ``Retry-After``)
at each ``--clients`` count, one load after another: 1 client (unloaded), 32 and 64
(well-behaved: the usual client counts), 200 and 320 (overload). During the overloaded loads a
few more clients (``--polite``, ``benchmarks/polite.py``) honour ``Retry-After``: they wait
the seconds it names after a 503, and check that every 503 names them. h2load logs each
request's status and latency, so every figure is exact: good answers/s, the p99 of the
admitted (2xx) answers and the p99 of the refusals. The goals (issue 19), each a ratio to
loads of the same run:

- 32 and 64 clients: no 503 (no non-2xx answer and no socket error at all);
- 200 and 320 clients: good answers (2xx, both populations) per second at least 0.9x the peak
  (the best of the well-behaved loads), the p99 of h2load's admitted answers at most 3x the
  unloaded p99, and every other answer a 503 with ``Retry-After`` (h2load's: 503s and no
  error; the polite clients': ``Retry-After`` on each); how fast refusals come is reported too.
  "Unloaded" is judged both ways: against the 1-client p99 (the issue's words), and against
  the p99 of the peak load. The first cannot be met with batching at the peak's throughput:
  by Little's law the peak needs about as many requests in flight as a batch holds (32), so
  an admitted request waits about one model call for its batch, which at 1 client it never
  does (1-client p99 1.1 ms, 32-client p50 2.5 ms on the forest in a quiet run).

Each load also reports the CPU time the hypervisor stole from the machine meanwhile
(``/proc/stat``): on a shared virtual machine, seconds of it mean the loads stalled for reasons
that are not the server's. Writes ``benchmarks/results/<UTC start>-overload.json`` and ``.md``;
exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks import gate, h2load, models, payloads
from benchmarks.errors import BenchmarkError
from benchmarks.h2load import figures
from benchmarks.polite import PoliteClients
from benchmarks.results import RESULTS_DIR, STAMP_FORMAT, write_text
from benchmarks.runner import SETTLE_S
from benchmarks.server import ServerProcess, free_port
from benchmarks.targets import HOST, select
from benchmarks.types import Payload

#: Client counts every server should serve without a refusal, and counts that overload it.
WELL_BEHAVED, OVERLOADED = (32, 64), (200, 320)
GOODPUT_FLOOR, P99_FACTOR = 0.9, 3.0

Document = dict[str, Any]


def build_parser() -> argparse.ArgumentParser:
    """Flags: the model, the loads, what restpredict gets, where results go."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks overload", description=__doc__)
    add = parser.add_argument
    add("--model", default="rf", help=f"one of {sorted(models.MODELS)} (default rf)")
    add("--rows", type=int, default=1, help="rows per request (default 1)")
    add("--clients", default="1,32,64,200,320", help="h2load connections, comma list")
    add("--polite", type=int, default=8, help="clients honouring Retry-After, overload only")
    add("--duration", type=int, default=10, help="whole seconds per load (default 10)")
    add("--warmup", type=int, default=2, help="whole seconds of unrecorded load first")
    add("--extra", default="", help='extra args for restpredict serve, e.g. "--log-level warning"')
    add("--results-dir", type=Path, default=RESULTS_DIR)
    add("--server-core", type=int, default=0, help="CPU for the server (default 0)")
    add("--load-core", type=int, default=1, help="CPU for h2load and this driver (default 1)")
    return parser


def main(argv: Sequence[str]) -> int:
    """Run the overload cell; 0 when every goal is met, 1 when one is not, 2 on failure."""
    args = build_parser().parse_args(argv)
    started = datetime.now(timezone.utc)
    try:
        document = measure(args)
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    document["started_at"] = started.isoformat(timespec="seconds")
    document["command"] = f"python -m benchmarks overload {shlex.join(argv)}".strip()
    report = render(document)
    print(report)
    stamp = started.strftime(STAMP_FORMAT)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    write_text(args.results_dir / f"{stamp}-overload.json", json.dumps(document, indent=2) + "\n")
    write_text(args.results_dir / f"{stamp}-overload.md", report)
    return 0 if all(goal["met"] for goal in document["goals"]) else 1


def rerender(path: Path) -> str:
    """The report of a run's JSON (``benchmarks/results/*-overload.json``), drawn again."""
    return render(json.loads(path.read_text()))


def measure(args: argparse.Namespace) -> Document:
    """Start the server, load it at each client count; the numbers as a JSON-able document."""
    h2load.require_h2load()
    clients = [int(n) for n in args.clients.split(",") if n.strip()]
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.load_core})
    target = select(("restpredict",))[0]
    loads: list[Document] = []
    with tempfile.TemporaryDirectory(prefix="restpredict-overload-") as tmp:
        directory = Path(tmp)
        _progress(f"training {args.model}")
        fitted, path = models.train_and_save((args.model,), directory)[args.model]
        payload = payloads.build(args.rows, models.request_rows(), {args.model: fitted}, directory)
        port = free_port(HOST)
        url = f"http://{HOST}:{port}/predict"
        argv = target.argv(str(path), port, tuple(shlex.split(args.extra)))
        _progress(" ".join(argv))
        log = directory / "server.log"
        with ServerProcess(argv, args.server_core, log, dict(os.environ)) as server:
            server.wait_until_predicting(url, payload.body, 60.0)
            mismatch = gate.check(url, args.model, [payload])
            if mismatch is not None:
                raise BenchmarkError(f"wrong predictions: {mismatch}")
            for count in clients:
                polite = args.polite if count in OVERLOADED else 0
                loads.append(_load(url, payload, count, polite, directory, args))
            peak_rss = server.peak_rss_mib()
    document: Document = {
        "model": args.model,
        "rows": args.rows,
        "extra": args.extra,
        "load_generator": "h2load",
        "duration_s": args.duration,
        "loads": loads,
        "peak_rss_mib": peak_rss,
        "loadavg": list(os.getloadavg()),
    }
    document["goals"] = judge(loads)
    return document


def _load(
    url: str,
    payload: Payload,
    clients: int,
    polite: int,
    directory: Path,
    args: argparse.Namespace,
) -> Document:
    """One h2load run at ``clients`` connections (with ``polite`` clients beside it), after a
    warm-up, as the report keeps it."""
    log = directory / "h2load.log"
    if args.warmup > 0:
        time.sleep(SETTLE_S)
        h2load.run(url, payload.path, clients, args.warmup, args.load_core, log)
    time.sleep(SETTLE_S)
    stolen = steal_seconds()
    with PoliteClients(url, payload.body, polite) as polite_clients:
        run = h2load.run(url, payload.path, clients, args.duration, args.load_core, log)
    load = figures(clients, run)
    after = steal_seconds()
    load["steal_s"] = None if stolen is None or after is None else after - stolen
    if polite:
        load["polite"] = polite_clients.summary()
        load["good_per_s"] += load["polite"]["good_per_s"]
    _progress(
        f"{clients} client(s): {load['good_per_s']:,.0f} good/s, {load['refused_503']} x 503, "
        f"admitted p99 {load['admitted_p99_ms']:.2f} ms, {load['socket_errors']} socket errors"
    )
    return load


def steal_seconds() -> float | None:
    """CPU seconds the hypervisor took from this (virtual) machine since boot, all CPUs
    (``/proc/stat``); None where that is not known. A load with seconds of steal was not
    the server's doing: the machine was not running at all."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def judge(loads: Sequence[Document]) -> list[Document]:
    """The goals, each with its measured ratio and whether it is met (SKIP: not measured)."""
    by_clients = {load["clients"]: load for load in loads}
    calm = [load for load in loads if load["clients"] not in OVERLOADED and load["clients"] > 1]
    peak = max((load["good_per_s"] for load in calm), default=0.0)
    unloaded = by_clients.get(1)
    goals: list[Document] = []
    for count in WELL_BEHAVED:
        load = by_clients.get(count)
        if load is not None:
            bad = load["refused_503"] + load["other_non_2xx"] + load["socket_errors"]
            goals.append(_goal(f"{count} clients: no 503, no error", bad, bad == 0))
    for count in OVERLOADED:
        load = by_clients.get(count)
        if load is None:
            continue
        if peak > 0:
            ratio = load["good_per_s"] / peak
            goals.append(
                _goal(
                    f"{count} clients: good answers/s >= {GOODPUT_FLOOR}x peak",
                    ratio,
                    ratio >= GOODPUT_FLOOR,
                )
            )
        if unloaded is not None and unloaded["p99_ms"] > 0:
            ratio = load["admitted_p99_ms"] / unloaded["p99_ms"]
            goals.append(
                _goal(
                    f"{count} clients: admitted p99 <= {P99_FACTOR:g}x unloaded p99",
                    ratio,
                    ratio <= P99_FACTOR,
                )
            )
        best = max(calm, key=lambda calm_load: calm_load["good_per_s"], default=None)
        if best is not None and best["p99_ms"] > 0:
            ratio = load["admitted_p99_ms"] / best["p99_ms"]
            goals.append(
                _goal(
                    f"{count} clients: admitted p99 <= {P99_FACTOR:g}x p99 at the peak "
                    f"({best['clients']} clients)",
                    ratio,
                    ratio <= P99_FACTOR,
                )
            )
        polite = load.get("polite")
        refusals_ok = (
            load["other_non_2xx"] == 0
            and load["socket_errors"] == 0
            and (
                polite is None
                or (polite["other"] == 0 and polite["retry_after_503"] == polite["refused_503"])
            )
        )
        goals.append(_goal(f"{count} clients: the rest are 503 + Retry-After", None, refusals_ok))
    return goals


def _goal(name: str, measured: float | None, met: bool) -> Document:
    return {"goal": name, "measured": measured, "met": met}


def render(doc: Document) -> str:
    """The run as Markdown: a table of loads, the polite clients' if any, then the goals."""
    loads = doc["loads"]
    by_clients = {load["clients"]: load for load in loads}
    calm = [load for load in loads if load["clients"] not in OVERLOADED and load["clients"] > 1]
    best = max(calm, key=lambda load: load["good_per_s"], default=None)
    peak = 0.0 if best is None else best["good_per_s"]
    peak_p99 = 0.0 if best is None else best["p99_ms"]
    unloaded = by_clients.get(1, {}).get("p99_ms") or 0.0
    lines = [
        f"# Overload run of {doc.get('started_at', 'an unknown time')}",
        "",
        "<!-- --8<-- [start:report] -->",
        f"`{doc.get('command', 'python -m benchmarks overload')}`: `restpredict serve` on "
        f"`{doc['model']}`, {doc['rows']} row(s) per request, {doc['duration_s']} s per load; "
        "h2load clients send again at once, 503s included; every latency is exact (per request).",
        "",
        "| clients | good answers/s | x peak | 503 | other errors | p50 ms (all) "
        "| admitted p99 ms | x unloaded p99 | x peak p99 | 503 p50 ms | 503 p99 ms | steal s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for load in loads:
        lines.append(
            f"| {load['clients']} | {load['good_per_s']:,.0f} "
            f"| {_ratio(load['good_per_s'], peak)} | {load['refused_503']:,} "
            f"| {load['other_non_2xx'] + load['socket_errors']:,} | {load['p50_ms']:.2f} "
            f"| {load['admitted_p99_ms']:.2f} | {_ratio(load['admitted_p99_ms'], unloaded)} "
            f"| {_ratio(load['admitted_p99_ms'], peak_p99)} "
            f"| {_ms(load.get('refused_p50_ms'))} | {_ms(load.get('refused_p99_ms'))} "
            f"| {_ms(load.get('steal_s'))} |"
        )
    polite = [(load["clients"], load["polite"]) for load in loads if load.get("polite")]
    if polite:
        lines += [
            "",
            "Beside h2load's, clients that honour `Retry-After` (they wait as long after a 503):",
            "",
            "| h2load clients | polite clients | requests | good answers/s | 503 "
            "| with Retry-After | admitted p99 ms |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for clients, seen in polite:
            lines.append(
                f"| {clients} | {seen['clients']} | {seen['requests']:,} "
                f"| {seen['good_per_s']:,.0f} | {seen['refused_503']:,} "
                f"| {seen['retry_after_503']:,} | {_ms(seen['admitted_p99_ms'])} |"
            )
    lines += ["", "| goal | measured | verdict |", "| --- | ---: | --- |"]
    for goal in doc["goals"]:
        measured = goal["measured"]
        shown = "-" if measured is None else f"{measured:.2f}"
        lines.append(f"| {goal['goal']} | {shown} | {'met' if goal['met'] else 'MISSED'} |")
    lines += [
        "",
        f"Peak RSS {doc['peak_rss_mib']:,.0f} MiB; load average (1, 5, 15 min) at the end: "
        + ", ".join(f"{x:.2f}" for x in doc["loadavg"])
        + ".",
        "<!-- --8<-- [end:report] -->",
        "",
    ]
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base > 0 else "-"


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
