"""One worker process of a multi-worker server: forked from the supervisor, which holds the model.

A fork, not a spawn: the worker starts with the supervisor's verified model already in
memory (shared copy-on-write, ``gc.freeze()`` having kept reference-count writes of the
collector off those pages), so it never reads the model file and starts in well under a
second. What must not cross the fork does not exist in the supervisor: it runs no event loop
and no thread, and each worker builds its own app, batcher thread and metrics in its own
process (``AppFactory``). The listening socket is inherited on purpose.

The worker reports its own readiness: once its server has started, before it answers a
request, it writes to a pipe of its own, which the supervisor reads even after the worker has
died (a worker that served and then died started; one that never got there did not). The
supervisor also health-checks a worker over a second pipe, as uvicorn's ``Multiprocess`` does:
a thread in the worker answers each ping with whether its server has started.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from socket import socket

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import SIGNALS

from restpredict.server.lifecycle import RETIRE, GracefulServer

__all__ = ["Slot", "Worker"]

logger = logging.getLogger("uvicorn.error")

_FORK = multiprocessing.get_context("fork")
_PING = b"ping"  # answered with whether the server started
_ACCEPTING = b"accepting"  # answered with whether it still takes new connections


class Worker:
    """A forked server process serving what it was forked with: ``generation`` names it (the
    model's SHA-256; with several models, a digest of the set, ``repository.FleetModels``)."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket], generation: str) -> None:
        self.config = config
        self.generation = generation
        self.started_at = 0.0
        self.ready_at: float | None = None  # set once it answered ready
        self.retired_at: float | None = None
        self._parent_conn, self._child_conn = _FORK.Pipe()
        self._ready_in, self._ready_out = _FORK.Pipe(duplex=False)  # the worker's "started"
        self.process = _FORK.Process(target=self._serve, args=(sockets,), daemon=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def exitcode(self) -> int | None:
        return self.process.exitcode

    def start(self) -> None:
        self.started_at = time.monotonic()
        self.process.start()
        self._child_conn.close()  # EOF on our end as soon as the worker dies
        self._ready_out.close()

    def is_alive(self, timeout: float) -> bool:
        """Running, and answering a health check within ``timeout`` (a hung worker does not)."""
        return self.process.is_alive() and self._ping(timeout) is not None

    def wait_until_ready(self, timeout: float, stop: Callable[[], bool]) -> bool:
        """True once the worker has reported its server started, even if it died since; False
        if it died before, did not within ``timeout``, or ``stop()``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not stop():
            left = min(0.5, max(deadline - time.monotonic(), 0.01))
            woken = wait([self._ready_in, self.process.sentinel], left)
            if self._ready_in in woken and self._reported():
                self.ready_at = time.monotonic()
                return True
            if self.process.sentinel in woken:
                return False  # died, and (read just above) never reported
        return False

    def _reported(self) -> bool:
        """Whether the worker's report is in its pipe (it stays there once the worker is gone)."""
        with contextlib.suppress(OSError, EOFError):
            return self._ready_in.poll() and bool(self._ready_in.recv())
        return False

    def signal(self, sig: int) -> None:
        if self.process.pid is not None and self.process.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, sig)

    def retire(self) -> None:
        """Ask the worker to stop taking connections, close its keep-alive ones and leave."""
        self.retired_at = time.monotonic()
        self.signal(RETIRE)

    def accepting(self, timeout: float) -> bool:
        """Still taking new connections (a retired worker stops at once, but asynchronously);
        False once it stopped, died or does not answer."""
        return self.process.is_alive() and bool(self._ask(_ACCEPTING, timeout))

    def kill(self) -> None:
        self.process.kill()
        self._parent_conn.close()
        self._ready_in.close()

    def join(self, timeout: float | None = None) -> None:
        self.process.join(timeout)
        if self.process.exitcode is not None:
            self._parent_conn.close()
            self._ready_in.close()

    def _ping(self, timeout: float) -> bool | None:
        """The worker's "server started" flag, or None if it does not answer in time."""
        return self._ask(_PING, timeout)

    def _ask(self, question: bytes, timeout: float) -> bool | None:
        try:
            self._parent_conn.send(question)
            if self._parent_conn.poll(timeout):
                started: bool = self._parent_conn.recv()
                return started
        except (OSError, EOFError, ValueError):
            return None
        return None

    # -- in the worker process ------------------------------------------------------------

    def _serve(self, sockets: list[socket]) -> None:
        for sig in SIGNALS:  # the supervisor's handlers were inherited: the server sets its own
            signal.signal(sig, signal.SIG_DFL)
        self._parent_conn.close()
        self._ready_in.close()
        server = GracefulServer(config=self.config, reload_on_hup=False)
        server.on_started = self._report_started
        threading.Thread(target=self._pong, args=(server,), daemon=True).start()
        try:
            server.run(sockets=sockets)
        except KeyboardInterrupt:
            pass
        except Exception as exc:  # e.g. a TLS key that can no longer be read
            logger.error("worker [%s] could not start: %s", os.getpid(), exc)
            sys.exit(STARTUP_FAILURE)
        if not server.started:
            sys.exit(STARTUP_FAILURE)

    def _report_started(self) -> None:
        with contextlib.suppress(OSError):  # the supervisor is gone: nobody to tell
            self._ready_out.send(True)
        self._ready_out.close()

    def _pong(self, server: GracefulServer) -> None:
        with contextlib.suppress(OSError, EOFError):
            while True:
                asked = self._child_conn.recv()
                accepting = server.started and not server.closed_listeners
                self._child_conn.send(accepting if asked == _ACCEPTING else server.started)


@dataclass
class Slot:
    """One of the N workers asked for: the process serving it, if any, and its start record."""

    worker: Worker | None = None
    failures: int = 0  # failed starts in a row
    next_try: float = 0.0
