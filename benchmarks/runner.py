"""A whole run: train the models, then for each target start, gate, load and stop its server.

Servers run one at a time on the server core while wrk and this driver share the load core, so a
target never competes with another. A target that fails (no start, wrong answers, wrk error) is
reported and the run goes on to the next, so one broken server still leaves the baselines.
"""

from __future__ import annotations

import os
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
    results = Results()
    with tempfile.TemporaryDirectory(prefix="restpredict-bench-") as tmp:
        directory = Path(tmp)
        progress(f"training {', '.join(config.models)} on breast-cancer data")
        trained = models.train_and_save(config.models, directory)
        features = models.request_rows()
        fitted = {name: model for name, (model, _) in trained.items()}
        bodies = [payloads.build(rows, features, fitted, directory) for rows in config.rows]
        gate_bodies = [*bodies, payloads.build(GATE_ROWS, features, fitted, directory)]
        for target in targets:
            for model in config.models if target.serves_model else (models.NO_MODEL,):
                path = trained[model][1] if target.serves_model else Path(os.devnull)
                session = _Session(config, target, model, path, bodies, gate_bodies, directory)
                results.servers.append(session.measure(results.cells, progress))
    return results


@dataclass
class _Session:
    """One server's life: start, gate, load each cell, read its memory, stop."""

    config: RunConfig
    target: Target
    model: str
    model_path: Path
    bodies: list[Payload]
    gate_bodies: list[Payload]
    directory: Path

    def measure(self, cells: list[Cell], progress: Progress) -> ServerReport:
        """Append this server's cells to ``cells``; its report, with the error if it failed."""
        port = free_port(HOST)
        url = f"http://{HOST}:{port}/predict"
        argv = self.target.argv(str(self.model_path), port, self.config.extra_args)
        log = self.directory / f"{self.target.name}-{self.model}.log"
        progress(f"{self.target.name}/{self.model}: starting {' '.join(argv)}")
        startup_s: float | None = None
        correctness = gate.EXEMPT if not self.target.serves_model else "not checked"
        try:
            with ServerProcess(argv, self.config.server_core, log, _server_env()) as server:
                startup_s = server.wait_until_predicting(
                    url, self.bodies[0].body, self.config.startup_timeout_s
                )
                if self.target.serves_model:
                    mismatch = gate.check(url, self.model, self.gate_bodies)
                    if mismatch is not None:
                        raise BenchmarkError(f"wrong predictions: {mismatch}")
                    correctness = gate.PASSED
                for payload in self.bodies:
                    for connections in self.config.concurrency:
                        cells.append(self._load(url, payload, connections, progress))
                peak = server.peak_rss_mib()
        except BenchmarkError as error:
            progress(f"{self.target.name}/{self.model}: FAILED: {error}")
            failed = "failed" if correctness == "not checked" else correctness
            return ServerReport(self.target.name, self.model, startup_s, None, failed, str(error))
        return ServerReport(self.target.name, self.model, startup_s, peak, correctness)

    def _load(self, url: str, payload: Payload, connections: int, progress: Progress) -> Cell:
        core, duration = self.config.load_core, self.config.duration_s
        if self.config.warmup_s > 0:
            time.sleep(SETTLE_S)
            wrk.run(url, payload.path, connections, self.config.warmup_s, core)
        time.sleep(SETTLE_S)
        load = wrk.run(url, payload.path, connections, duration, core)
        progress(
            f"{self.target.name}/{self.model}: {payload.rows} row(s) x {connections} client(s): "
            f"{load.requests_per_s:,.0f} req/s, p99 {load.p99_ms:.2f} ms, "
            f"{load.non_2xx} non-2xx, {load.socket_errors} socket errors"
        )
        return Cell(self.target.name, self.model, payload.rows, connections, load)


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
