"""The server process's lifecycle: graceful SIGTERM, SIGHUP hot reload, supervised workers.

``GracefulServer`` is uvicorn's ``Server`` with three changes, all in signal hooks:

- SIGTERM flips readiness to 503 at once (``ServingState.draining``), keeps serving
  for ``drain_seconds`` (responses carry ``Connection: close``, so clients and load
  balancers move on), then runs uvicorn's own shutdown: stop accepting, let in-flight
  requests finish within ``shutdown_timeout``, run the lifespan shutdown. The signal
  is not re-raised afterwards, so a drained SIGTERM exits 0. SIGINT keeps uvicorn's
  behaviour (stop now; a second one forces; exit 130).
- Before uvicorn closes the listening socket, new SYNs are dropped and the
  connections the kernel had already queued are accepted and answered for
  ``ACCEPT_LINGER`` seconds (``connections.refuse_new_connections``); closing at once
  would reset them. A worker retired by a rolling reload (SIGUSR1) skips this: the
  socket is shared and the other workers keep serving it.
- SIGHUP (one worker) reloads the model in place (``reload.Reloader``).
- A signal arriving before the app is built only stops the server.

Overriding ``handle_exit`` rather than using the lifespan shutdown is deliberate: the
lifespan shutdown runs only after uvicorn has stopped accepting and drained, far too
late to tell a load balancer to stop sending.

``Supervisor`` is uvicorn 0.54's ``Multiprocess`` running ``GracefulServer`` workers:
it already replaces dead workers and, on SIGHUP, starts each new worker (which loads,
verifies and warms the model in its lifespan) before it retires an old one; a worker
that cannot load the new model is discarded and the old workers keep serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from socket import socket
from types import FrameType

import uvicorn
from starlette.applications import Starlette
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from restpredict.app import create_app
from restpredict.connections import refuse_new_connections
from restpredict.errors import ReloadError
from restpredict.metrics import forget_worker
from restpredict.model import LoadedModel
from restpredict.settings import Settings

__all__ = ["ACCEPT_LINGER", "RETIRE", "AppFactory", "GracefulServer", "Supervisor"]

logger = logging.getLogger("uvicorn.error")

ACCEPT_LINGER = 0.25  # seconds to accept already-queued connections before closing
RETIRE = signal.SIGUSR1  # supervisor to worker: drain and stop, the socket stays served


@dataclass
class AppFactory:
    """Builds the app in the process that serves it, and keeps it for the signal hooks."""

    settings: Settings
    model: LoadedModel | None = None
    supervisor_pid: int | None = None
    metrics_dir: Path | None = None
    built: Starlette | None = field(default=None, init=False, repr=False)

    def __call__(self) -> Starlette:
        app = create_app(self.settings, self.model, metrics_dir=self.metrics_dir)
        app.state.serving.supervisor_pid = self.supervisor_pid
        self.built = app
        return app


class GracefulServer(uvicorn.Server):
    """uvicorn's Server with a readiness-first drain on SIGTERM and reload on SIGHUP."""

    def __init__(self, config: uvicorn.Config, *, reload_on_hup: bool = True) -> None:
        super().__init__(config)
        self.reload_on_hup = reload_on_hup
        self._stop_at: float | None = None
        self._retiring = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reloads: set[asyncio.Task[None]] = set()

    @property
    def app(self) -> Starlette | None:
        """The app this server runs, once the factory has built it."""
        factory = self.config.app
        return factory.built if isinstance(factory, AppFactory) else None

    @property
    def drain_seconds(self) -> float:
        factory = self.config.app
        return factory.settings.drain_seconds if isinstance(factory, AppFactory) else 0.0

    async def serve(self, sockets: list[socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        if threading.current_thread() is not threading.main_thread():
            await super().serve(sockets)
            return
        on_hup = self._on_hup if self.reload_on_hup else signal.SIG_IGN
        previous = signal.signal(signal.SIGHUP, on_hup), signal.signal(RETIRE, self._on_retire)
        try:
            await super().serve(sockets)
        finally:
            signal.signal(signal.SIGHUP, previous[0])
            signal.signal(RETIRE, previous[1])

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM:
            self._drain()  # and not re-raised later: a drained SIGTERM exits 0
            return
        super().handle_exit(sig, frame)
        self._set_draining()

    def _drain(self) -> None:
        if self._stop_at is not None:
            return  # already draining: a second SIGTERM changes nothing
        self._set_draining()
        self._stop_at = time.monotonic() + self.drain_seconds

    def _set_draining(self) -> None:
        app = self.app
        if app is not None:
            app.state.serving.draining = True

    def _on_retire(self, sig: int, frame: FrameType | None) -> None:
        self._retiring = True
        self._drain()

    async def shutdown(self, sockets: list[socket] | None = None) -> None:
        if sockets and not self._retiring and not self.force_exit:
            for sock in sockets:
                refuse_new_connections(sock)
            await asyncio.sleep(ACCEPT_LINGER)  # the server still accepts what is queued
        await super().shutdown(sockets)

    async def on_tick(self, counter: int) -> bool:
        if self._stop_at is not None and time.monotonic() >= self._stop_at:
            self.should_exit = True
        return await super().on_tick(counter)

    def _on_hup(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler may interrupt the loop anywhere: only hand the work over.
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._start_reload)

    def _start_reload(self) -> None:
        app = self.app
        if app is None or not app.state.ready:
            logger.warning("SIGHUP before the server finished starting: ignored")
            return
        logger.info("SIGHUP: reloading the model")
        task = asyncio.ensure_future(self._reload(app))
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def _reload(self, app: Starlette) -> None:
        with contextlib.suppress(ReloadError):  # logged by the reloader; the old model serves
            await app.state.reloader.reload()


class _Worker(Process):
    """One worker process of the Supervisor; its server is a GracefulServer."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = GracefulServer(config=self.config, reload_on_hup=False)
        return self._server


class Supervisor(Multiprocess):
    """uvicorn's Multiprocess with GracefulServer workers (the methods below differ from
    uvicorn 0.54's only in the worker class); SIGTERM is passed on to workers at once,
    and prometheus_client is told about each worker that goes away."""

    def __init__(
        self, config: uvicorn.Config, sockets: list[socket], metrics_dir: Path | None = None
    ) -> None:
        super().__init__(config, sockets)
        self.metrics_dir = metrics_dir
        self._stopping = False  # set by the SIGTERM handler, before the loop sees the signal
        signal.signal(signal.SIGTERM, self._on_term)

    def handle_signals(self) -> None:
        """SIGHUP replaces every worker, SIGTTOU retires one."""
        with self._forgetting_replaced():
            super().handle_signals()

    @contextlib.contextmanager
    def _forgetting_replaced(self) -> Iterator[None]:
        before = {process.pid for process in self.processes}
        yield
        if self.metrics_dir is None:
            return
        for pid in before - {process.pid for process in self.processes}:
            if pid is not None:
                forget_worker(self.metrics_dir, pid)

    def _on_term(self, sig: int, frame: FrameType | None) -> None:
        self._stopping = True
        self.signal_queue.append(sig)
        for process in self.processes:  # readiness turns 503 now, not at the next 0.5 s tick
            if process.pid is not None and process.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)

    def _exiting(self) -> bool:
        """Stopping, or about to: a worker that dies now is not replaced."""
        return self._stopping or self.should_exit.is_set() or signal.SIGINT in self.signal_queue

    def _spawn(self) -> Process:
        process = _Worker(self.config, self.sockets)
        process.start()
        # The worker has its own copy now. Closing ours lets a health-check ping see the
        # worker die (EOF) at once, instead of waiting out the whole timeout (60 s) for a
        # pong that cannot come: that wait also held up a SIGTERM that arrived meanwhile.
        process.child_conn.close()
        return process

    def init_processes(self) -> None:
        self.processes.extend(self._spawn() for _ in range(self.processes_num))

    def handle_ttin(self) -> None:
        logger.info("Received SIGTTIN, increasing the number of processes.")
        self.processes_num += 1
        self.processes.append(self._spawn())

    def restart_all(self) -> None:
        for idx, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._spawn()
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    logger.error(
                        "reload refused: new worker [%s] did not become ready (see its log "
                        "above); worker [%s] and the others keep serving",
                        new.pid,
                        old.pid,
                    )
                return
            self._retire(old)
            old.join()
            self.processes[idx] = new

    @staticmethod
    def _retire(process: Process) -> None:
        """Like Process.terminate, but with RETIRE: the worker drains and leaves the socket be."""
        if process.pid is not None and process.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, RETIRE)
        process.parent_conn.close()
        process.child_conn.close()

    def keep_subprocess_alive(self) -> None:
        """Dead or hung workers are replaced here."""
        with self._forgetting_replaced():
            self._replace_dead()

    def _replace_dead(self) -> None:
        for idx, process in enumerate(self.processes):
            if self._exiting():
                return
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                logger.error("Child process [%s] failed to start, stopping.", process.pid)
                self.should_exit.set()
                return
            if self._exiting():
                return  # it died of the SIGTERM the loop has not handled yet
            logger.info("Child process [%s] died; starting a replacement", process.pid)
            self.processes[idx] = self._spawn()
