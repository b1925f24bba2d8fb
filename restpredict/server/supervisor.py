"""``Supervisor``: several forked workers serving the one model the supervisor verified.

The supervisor (the process ``restpredict serve --workers N`` started) loads, verifies and
warms the model once, freezes it out of the garbage collector and forks each worker from
itself (``workers.Worker``): workers share the model's memory and never read the model file,
so a file changed on disk reaches no worker until a reload is asked for and accepted.

- A worker that dies is replaced at once. A replacement that cannot start is retried with
  exponential backoff (``BACKOFF_FIRST`` doubling up to ``BACKOFF_MAX`` seconds) while the
  others serve; the workers report the degraded state (``asgi.fleet``). When no worker is
  left and ``GIVE_UP`` starts in a row have failed (or, at start-up, when none could start),
  the supervisor stops with ``STARTUP_FAILURE`` (exit status 3), never 0.
- SIGHUP (or ``POST /admin/reload``, which hands its request over in ``asgi.fleet``) prepares
  the new model here first, refused exactly as a one-worker reload refuses it (load error,
  SHA-256 pin, schema change); then it rolls: each worker in turn is replaced by one forked
  from the new model, which starts in a fraction of a second, and the old one is retired
  (``lifecycle.RETIRE``: stop accepting, answer with ``Connection: close``, leave).
- With several models, a reload reads the configuration again and rolls the workers onto its
  traffic split and shadows, answered once they have.
- With several models, a repository load or unload (handed over like a reload) changes the
  supervisor's list of models (``repository.FleetModels``) and rolls the workers onto it the
  same way; its request is answered once no worker of the previous list is left.
- SIGTERM is passed on to every worker at once; SIGTTIN/SIGTTOU add or remove a worker.

Reloads and repository changes (SIGHUP's ``handle_hup``) are ``changes.RollingChanges``'s.
uvicorn's ``Multiprocess`` still provides the signal queue and ``handle_*`` dispatch.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from socket import socket
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess

from restpredict.asgi.fleet import FleetStatus, ReloadOutcome, Rollout, kept_answers, write_fleet
from restpredict.asgi.reloader import prepare_replacement
from restpredict.model.loading import LoadedModel
from restpredict.observability.metrics import forget_worker
from restpredict.server.changes import RollingChanges
from restpredict.server.lifecycle import RETIRE_GRACE, AppFactory
from restpredict.server.repository import FleetModels
from restpredict.server.workers import Slot, Worker
from restpredict.settings import Settings

__all__ = ["BACKOFF_FIRST", "BACKOFF_MAX", "GIVE_UP", "START_TIMEOUT", "Supervisor"]

logger = logging.getLogger("uvicorn.error")

BACKOFF_FIRST = 0.5  # seconds before the first retry of a worker that could not start
BACKOFF_MAX = 30.0
GIVE_UP = 5  # failed starts in a row, with no worker left serving, before the server stops
START_TIMEOUT = 30.0  # a forked worker starts in well under a second; this is for a stuck one
_HEALTH_TIMEOUT = 10.0  # a worker that does not answer a ping this long is hung: replaced
_CRASH_WINDOW = 10.0  # a worker that dies this soon after starting counts as a failed start


class Supervisor(RollingChanges, Multiprocess):
    """Forks, watches, replaces and rolls the workers of a multi-worker server."""

    def __init__(
        self,
        config: uvicorn.Config,
        sockets: list[socket],
        *,
        factory: AppFactory,
        settings: Settings,
        fleet_dir: Path,
        metrics_dir: Path | None = None,
        reread: Callable[[], Settings] | None = None,
        prepare: Callable[[Settings, LoadedModel | None, bool], LoadedModel | str] = (
            prepare_replacement
        ),
    ) -> None:
        super().__init__(config, sockets)
        if factory.model is None and factory.models is None:
            raise ValueError("the supervisor forks workers from prepared models")
        self.factory = factory
        self.settings = settings
        self.fleet_dir = fleet_dir
        self.metrics_dir = metrics_dir
        self.prepare = prepare
        self.reread = reread  # the configuration read again: a reload of several models
        self.exit_code = 0
        self.slots = [Slot() for _ in range(self.processes_num)]
        self.retiring: list[Worker] = []
        self._pin = settings.sha256
        self._rollout: Rollout | None = None
        self._answers: list[ReloadOutcome] = []
        self._pending: list[ReloadOutcome] = []  # answered once the workers rolled
        self.repository = None
        if factory.models is not None:
            self.repository = FleetModels(settings, factory.models)
        self._problem: str | None = None
        self._stopping = False  # set by the SIGTERM handler, before the loop sees the signal
        signal.signal(signal.SIGTERM, self._on_term)

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until stopped; ``exit_code`` then says whether it was a failure."""
        logger.info("Started parent process [%s]", os.getpid())
        _freeze()
        self.init_processes()
        while not self.should_exit.wait(0.5):
            self.handle_signals()
            self.keep_subprocess_alive()
        self.terminate_all()
        self.join_all()
        logger.info("Stopping parent process [%s]", os.getpid())

    def init_processes(self) -> None:
        """Fork every worker, then wait for each; stop at once if none could start."""
        started = [self._fork() for _ in self.slots]
        ready = [worker.wait_until_ready(START_TIMEOUT, self._exiting) for worker in started]
        for slot, worker, up in zip(self.slots, started, ready, strict=True):
            self._settle(slot, worker, up, retry=any(ready))  # none up: the server stops
        if not self._exiting() and not self._serving():
            self._give_up("no worker could start")
        self._publish()

    def keep_subprocess_alive(self) -> None:
        """Replace dead or hung workers, roll stale ones, reap retired ones; report."""
        for slot in self.slots:
            if self._exiting():
                return
            self._tend(slot)
        self._reap_retired()
        self._answer_when_rolled()
        failing = all(slot.failures >= GIVE_UP for slot in self.slots)
        if failing and not self._exiting() and not self._serving():
            self._give_up(f"no worker left and {GIVE_UP} starts in a row failed")
        if self._rollout is not None and all(self._current(slot) for slot in self.slots):
            logger.info("rolling reload done: every worker serves sha256 %s", self.generation)
            self._rollout = None
        self._publish()

    def _tend(self, slot: Slot) -> None:
        worker = slot.worker
        if worker is not None and not worker.is_alive(_HEALTH_TIMEOUT):
            self._bury(slot, worker)
            worker = None
        if time.monotonic() < slot.next_try:
            return
        if worker is None:
            self._start(slot)
        elif worker.generation != self.generation:
            self._roll(slot, worker)

    def _bury(self, slot: Slot, worker: Worker) -> None:
        worker.kill()
        worker.join()
        self._forget(worker)
        slot.worker = None
        if self._exiting():
            return
        young = worker.ready_at is not None and time.monotonic() - worker.ready_at < _CRASH_WINDOW
        if young:
            self._failed(slot, f"worker [{worker.pid}] died within {_CRASH_WINDOW:g} s of starting")
        else:
            logger.warning(
                "worker [%s] died (exit code %s); starting a replacement",
                worker.pid,
                worker.exitcode,
            )

    def _start(self, slot: Slot) -> None:
        worker = self._fork()
        self._settle(slot, worker, worker.wait_until_ready(START_TIMEOUT, self._exiting))

    def _roll(self, slot: Slot, old: Worker) -> None:
        """Replace ``old`` by a worker of the current model; ``old`` serves until that is up."""
        new = self._fork()
        if self._settle(slot, new, new.wait_until_ready(START_TIMEOUT, self._exiting)):
            old.retire()
            self.retiring.append(old)
            if self._rollout is not None:
                self._rollout.replaced += 1
        else:
            slot.worker = old  # keeps serving the previous model until a retry succeeds

    def _settle(self, slot: Slot, worker: Worker, ready: bool, *, retry: bool = True) -> bool:
        """Record how a start went: the slot's worker on success, a retry time on failure."""
        if ready:
            assert worker.ready_at is not None
            took = (worker.ready_at - worker.started_at) * 1000
            logger.info(
                "worker [%s] serves %s (ready in %.0f ms)", worker.pid, worker.generation, took
            )
            slot.worker, slot.failures, slot.next_try = worker, 0, 0.0
            if all(s.worker is not None for s in self.slots):
                self._problem = None
            return True
        worker.kill()
        worker.join()
        self._forget(worker)
        if not self._exiting():
            what = f"worker [{worker.pid}] did not start (exit code {worker.exitcode})"
            self._failed(slot, what, retry=retry)
        return False

    def _failed(self, slot: Slot, what: str, *, retry: bool = True) -> None:
        """Count a failed start and log it, naming the retry only when one will follow: not
        when the server is about to give up (``retry=False``: none started at start-up)."""
        slot.failures += 1
        delay = min(BACKOFF_FIRST * 2 ** (slot.failures - 1), BACKOFF_MAX)
        slot.next_try = time.monotonic() + delay
        serving = self._serving()
        giving_up = not serving and all(s.failures >= GIVE_UP for s in self.slots)
        if retry and not giving_up:
            self._problem = f"{what}; retrying in {delay:g} s ({slot.failures} failed in a row)"
        else:
            self._problem = f"{what} ({slot.failures} failed in a row)"
        logger.error("%s; %d of %d workers serve", self._problem, serving, len(self.slots))

    def _give_up(self, why: str) -> None:
        logger.error("%s: stopping (exit status %d)", why, STARTUP_FAILURE)
        self.exit_code = STARTUP_FAILURE
        self.should_exit.set()

    def _reap_retired(self) -> None:
        limit = max(self.settings.drain_seconds, RETIRE_GRACE) + self.settings.shutdown_timeout
        for worker in list(self.retiring):
            if worker.process.is_alive():
                assert worker.retired_at is not None
                if time.monotonic() - worker.retired_at < limit + 5:
                    continue
                logger.warning("retired worker [%s] is still running: killed", worker.pid)
                worker.kill()
            worker.join()
            self._forget(worker)
            self.retiring.remove(worker)

    # -- SIGTERM, SIGTTIN, SIGTTOU, stopping ---------------------------------------------------

    def _on_term(self, sig: int, frame: FrameType | None) -> None:
        self._stopping = True
        self.signal_queue.append(sig)
        for worker in self._workers():  # readiness turns 503 now, not at the next 0.5 s tick
            worker.signal(signal.SIGTERM)

    def _exiting(self) -> bool:
        """Stopping, or about to: a worker that dies now is not replaced."""
        return self._stopping or self.should_exit.is_set() or signal.SIGINT in self.signal_queue

    def handle_ttin(self) -> None:
        logger.info("Received SIGTTIN, adding a worker.")
        self.processes_num += 1
        self.slots.append(Slot())

    def handle_ttou(self) -> None:
        if len(self.slots) <= 1:
            logger.info("Received SIGTTOU; one worker left, which stays.")
            return
        logger.info("Received SIGTTOU, retiring a worker.")
        self.processes_num -= 1
        worker = self.slots.pop().worker
        if worker is not None:
            worker.retire()
            self.retiring.append(worker)

    def terminate_all(self) -> None:
        for worker in self._workers():
            worker.signal(signal.SIGTERM)

    def join_all(self) -> None:
        for worker in self._workers():
            worker.join()
            self._forget(worker)

    # -- helpers --------------------------------------------------------------------------

    def _fork(self) -> Worker:
        worker = Worker(self.config, self.sockets, self.generation)
        worker.start()
        return worker

    def _workers(self) -> list[Worker]:
        return [s.worker for s in self.slots if s.worker is not None] + self.retiring

    def _serving(self) -> int:
        return sum(1 for slot in self.slots if slot.worker is not None)

    def _forget(self, worker: Worker) -> None:
        if self.metrics_dir is not None and worker.pid is not None:
            forget_worker(self.metrics_dir, worker.pid)

    def _publish(self) -> None:
        self._answers = kept_answers(self._answers)
        status = FleetStatus(
            wanted=len(self.slots),
            serving=self._serving(),
            sha256=self.generation,
            rollout=self._rollout,
            answers=self._answers,
            index=self.repository.index() if self.repository is not None else None,
            problem=self._problem if self._serving() < len(self.slots) else None,
        )
        with contextlib.suppress(OSError):
            write_fleet(self.fleet_dir, status)


def _freeze() -> None:
    """Move everything alive now out of the collector's reach before forking.

    A collection writes to every object it examines (``gc_refs``), which would copy the
    model's pages into every worker; frozen objects are never examined.
    """
    gc.collect()
    gc.freeze()
