"""A whole run: train the models, start every server, then load them in turns, cell by cell.

Every server of the run is started first (one after another, each timed to its first
prediction and gated), then each load (rows x clients) is measured on every server in turn,
``rounds`` times, before the next load: the machine is shared, and targets measured minutes
apart did not see the same machine (single cells moved by a third between neighbouring runs),
while turns a few seconds apart do. A cell reports each server's best round (most requests/s):
interference from elsewhere only ever slows a run down, so the best round is the least
disturbed one, as ``timeit`` reports its fastest repeat. Idle
servers wait on the server core and take no CPU; only one is loaded at a time, by wrk on the
load core. A server that fails (no start, wrong answers, wrk error) is reported and left out of
later turns, so one broken server still leaves the baselines.
"""

from __future__ import annotations

import compileall
import contextlib
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import gate, models, payloads, wrk
from benchmarks.errors import BenchmarkError
from benchmarks.server import ServerProcess, free_port
from benchmarks.targets import HOST, Target, select
from benchmarks.types import Cell, Payload, RunConfig, ServerReport

Progress = Callable[[str], None]

# The gate also posts this many rows, whatever the loads are, so that a constant answer fails.
GATE_ROWS = 20
# A wrk run ends with up to one request per connection still in the server: with a concurrency
# limit equal to the clients (restpredict's default 32), the next run's first requests would
# meet those leftovers and get 503s that say nothing about the run. Let them finish first.
SETTLE_S = 1.0


@dataclass
class Results:
    """Everything measured in one run, in the order it was measured."""

    servers: list[ServerReport] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    #: The 1, 5 and 15 minute load averages before any server ran: how noisy the machine was.
    loadavg_at_start: tuple[float, float, float] = field(default_factory=os.getloadavg)

    @property
    def failed(self) -> list[ServerReport]:
        """The servers that could not be measured."""
        return [report for report in self.servers if report.error is not None]


def run(config: RunConfig, progress: Progress) -> Results:
    """Measure every (target, model) pair of ``config``; servers are stopped whatever happens."""
    wrk.require_wrk()
    targets = select(config.targets)
    _pin_driver(config.load_core)
    _compile_bytecode()
    results = Results()
    with tempfile.TemporaryDirectory(prefix="restpredict-bench-") as tmp:
        directory = Path(tmp)
        progress(f"training {', '.join(config.models)} on breast-cancer data")
        trained = models.train_and_save(config.models, directory)
        features = models.request_rows()
        fitted = {name: model for name, (model, _) in trained.items()}
        bodies = [payloads.build(rows, features, fitted, directory) for rows in config.rows]
        gate_bodies = [*bodies, payloads.build(GATE_ROWS, features, fitted, directory)]
        with contextlib.ExitStack() as stack:
            sessions: list[_Session] = []
            for target in targets:
                for model in config.models if target.serves_model else (models.NO_MODEL,):
                    path = trained[model][1] if target.serves_model else Path(os.devnull)
                    session = _Session(config, target, model, path, bodies, gate_bodies, directory)
                    session.start(stack, progress)
                    sessions.append(session)
            for payload in bodies:
                for connections in config.concurrency:
                    _measure_in_turns(sessions, payload, connections, results.cells, progress)
            _launch_in_turns(sessions, config.launches, progress)
            results.servers.extend(session.report() for session in sessions)
    return results


def _launch_in_turns(sessions: list[_Session], launches: int, progress: Progress) -> None:
    """Launch every live server ``launches`` more times, in turns, each time one later.

    One launch is one sample of a noisy machine; turns put each server's launches next to the
    baselines' (seconds apart, not minutes), and the median of several is what is reported.
    """
    count = len(sessions)
    for number in range(launches):
        for offset in range(count):
            sessions[(number + offset) % count].relaunch(number + 1, progress)


def _measure_in_turns(
    sessions: list[_Session],
    payload: Payload,
    connections: int,
    cells: list[Cell],
    progress: Progress,
) -> None:
    """One load on every live server, ``rounds`` times in turn; the best round per server."""
    rounds: dict[int, list[Cell]] = {}
    count = len(sessions)
    for number in range(sessions[0].config.rounds if sessions else 0):
        for offset in range(count):  # each round starts one server later: no fixed order
            index = (number + offset) % count
            cell = sessions[index].load(payload, connections, progress)
            if cell is not None:
                rounds.setdefault(index, []).append(cell)
    for index in sorted(rounds):
        cells.append(max(rounds[index], key=lambda cell: cell.load.requests_per_s))


@dataclass
class _Session:
    """One server's life: start, gate, load cell after cell, read its memory, stop."""

    config: RunConfig
    target: Target
    model: str
    model_path: Path
    bodies: list[Payload]
    gate_bodies: list[Payload]
    directory: Path
    url: str = ""
    server: ServerProcess | None = None
    launches_s: list[float] = field(default_factory=list)
    correctness: str = "not checked"
    error: str | None = None

    def start(self, stack: contextlib.ExitStack, progress: Progress) -> None:
        """Start the server (stopped when ``stack`` closes), time it, gate its answers."""
        port = free_port(HOST)
        self.url = f"http://{HOST}:{port}/predict"
        argv = self.target.argv(str(self.model_path), port, self.config.extra_args)
        log = self.directory / f"{self.target.name}-{self.model}.log"
        progress(f"{self.target.name}/{self.model}: starting {' '.join(argv)}")
        if not self.target.serves_model:
            self.correctness = gate.EXEMPT
        try:
            server = stack.enter_context(
                ServerProcess(argv, self.config.server_core, log, _server_env())
            )
            self.launches_s.append(
                server.wait_until_predicting(
                    self.url, self.bodies[0].body, self.config.startup_timeout_s
                )
            )
            if self.target.serves_model:
                mismatch = gate.check(self.url, self.model, self.gate_bodies)
                if mismatch is not None:
                    raise BenchmarkError(f"wrong predictions: {mismatch}")
                self.correctness = gate.PASSED
            self.server = server
        except BenchmarkError as error:
            self._fail(error, progress)

    def relaunch(self, number: int, progress: Progress) -> None:
        """Start a second copy of this server, time it to its first prediction, stop it."""
        if self.server is None:
            return
        port = free_port(HOST)
        url = f"http://{HOST}:{port}/predict"
        argv = self.target.argv(str(self.model_path), port, self.config.extra_args)
        log = self.directory / f"{self.target.name}-{self.model}-launch{number}.log"
        try:
            with ServerProcess(argv, self.config.server_core, log, _server_env()) as server:
                seconds = server.wait_until_predicting(
                    url, self.bodies[0].body, self.config.startup_timeout_s
                )
        except BenchmarkError as error:
            self._fail(error, progress)
            return
        self.launches_s.append(seconds)
        progress(f"{self.target.name}/{self.model}: launch {number + 1}: {seconds:.2f} s")

    def load(self, payload: Payload, connections: int, progress: Progress) -> Cell | None:
        """One wrk run on this server; None once it has failed."""
        if self.server is None:
            return None
        core, duration = self.config.load_core, self.config.duration_s
        try:
            if self.config.warmup_s > 0:
                time.sleep(SETTLE_S)
                wrk.run(self.url, payload.path, connections, self.config.warmup_s, core)
            time.sleep(SETTLE_S)
            load = wrk.run(self.url, payload.path, connections, duration, core)
        except BenchmarkError as error:
            self._fail(error, progress)
            return None
        progress(
            f"{self.target.name}/{self.model}: {payload.rows} row(s) x {connections} client(s): "
            f"{load.requests_per_s:,.0f} req/s, "
            f"p50 {load.p50_ms:.2f} ms, p99 {load.p99_ms:.2f} ms, "
            f"{load.non_2xx} non-2xx, {load.socket_errors} socket errors"
        )
        return Cell(self.target.name, self.model, payload.rows, connections, load)

    def report(self) -> ServerReport:
        """What this server showed: startup, peak memory, correctness, or why it failed."""
        launches = tuple(self.launches_s)
        startup = statistics.median(launches) if launches else None
        if self.error is not None or self.server is None:
            failed = "failed" if self.correctness == "not checked" else self.correctness
            return ServerReport(
                self.target.name, self.model, startup, None, failed, self.error, launches
            )
        peak = self.server.peak_rss_mib()
        return ServerReport(
            self.target.name, self.model, startup, peak, self.correctness, None, launches
        )

    def _fail(self, error: BenchmarkError, progress: Progress) -> None:
        progress(f"{self.target.name}/{self.model}: FAILED: {error}")
        self.error = str(error)
        self.server = None


def _compile_bytecode() -> None:
    """Byte-compile restpredict and the baselines first, as ``pip install`` does when installing.

    A checkout installed in editable mode, run with ``PYTHONDONTWRITEBYTECODE`` set (as on these
    machines), never keeps its ``.pyc`` files: every start would compile restpredict's modules
    from source again (~40 ms of its launch), a cost no installed copy pays. Where a package
    cannot be written (a read-only install), it is left as it is.
    """
    for name in ("restpredict", "benchmarks"):
        spec = importlib.util.find_spec(name)
        for directory in (spec.submodule_search_locations or ()) if spec is not None else ():
            compileall.compile_dir(directory, quiet=2)


def _pin_driver(core: int) -> None:
    """Keep this process (gate requests, polling) off the server's core."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})


def _server_env() -> dict[str, str]:
    """This environment, with the directory holding ``benchmarks`` importable by the baselines."""
    root = str(Path(sys.modules["benchmarks"].__path__[0]).parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env
