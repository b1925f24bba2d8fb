"""``Supervisor`` is uvicorn 0.54's ``Multiprocess`` running ``GracefulServer`` workers:
it already replaces dead workers and, on SIGHUP, starts each new worker (which loads,
verifies and warms the model in its lifespan) before it retires an old one; a worker
that cannot load the new model is discarded and the old workers keep serving.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from socket import socket
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from restpredict.observability.metrics import forget_worker
from restpredict.server.lifecycle import RETIRE, GracefulServer

__all__ = ["Supervisor"]

logger = logging.getLogger("uvicorn.error")


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
