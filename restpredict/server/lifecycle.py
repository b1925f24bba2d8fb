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
  ``ACCEPT_LINGER`` seconds (``sockets.refuse_new_connections``); closing at once
  would reset them. A worker retired by a rolling reload (SIGUSR1) skips this: the
  socket is shared and the other workers keep serving it. Such a worker stops accepting at
  once and answers its open connections with ``Connection: close`` for ``RETIRE_GRACE``
  seconds (at least; ``drain_seconds`` if longer), so keep-alive clients leave it between
  requests instead of having a connection closed under a request they just sent.
- SIGHUP (one worker) reloads the model in place (``asgi.reloader.Reloader``); with several
  models, the configuration's traffic split and shadows.
- A signal arriving before the app is built only stops the server.

Overriding ``handle_exit`` rather than using the lifespan shutdown is deliberate: the
lifespan shutdown runs only after uvicorn has stopped accepting and drained, far too
late to tell a load balancer to stop sending.

The supervised workers of a multi-process server are ``supervisor.py``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from socket import socket
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from restpredict.app import create_app
from restpredict.errors import ReloadError
from restpredict.model.loading import LoadedModel
from restpredict.model.prepare import Prepared
from restpredict.server.sockets import refuse_new_connections
from restpredict.settings import Settings

__all__ = ["ACCEPT_LINGER", "RETIRE", "RETIRE_GRACE", "AppFactory", "GracefulServer"]

logger = logging.getLogger("uvicorn.error")

ACCEPT_LINGER = 0.25  # seconds to accept already-queued connections before closing
RETIRE = signal.SIGUSR1  # supervisor to worker: drain and stop, the socket stays served
RETIRE_GRACE = 1.0  # seconds a retired worker answers with Connection: close before it stops


@dataclass
class AppFactory:
    """Builds the app in the process that serves it, and keeps it for the signal hooks."""

    settings: Settings
    model: LoadedModel | None = None
    supervisor_pid: int | None = None
    metrics_dir: Path | None = None
    fleet_dir: Path | None = None  # where the supervisor of several workers reports to them
    models: list[Prepared] | None = None
    reread: Callable[[], Settings] | None = None  # the configuration read again (reloads)
    built: Starlette | None = field(default=None, init=False, repr=False)

    def __call__(self) -> Starlette:
        app = create_app(
            self.settings,
            self.model,
            models=self.models,
            metrics_dir=self.metrics_dir,
            reread=self.reread,
        )
        app.state.serving.supervisor_pid = self.supervisor_pid
        app.state.serving.fleet_dir = self.fleet_dir
        self.built = app
        return app


class GracefulServer(uvicorn.Server):
    """uvicorn's Server with a readiness-first drain on SIGTERM and reload on SIGHUP."""

    def __init__(self, config: uvicorn.Config, *, reload_on_hup: bool = True) -> None:
        super().__init__(config)
        self.reload_on_hup = reload_on_hup
        self._stop_at: float | None = None
        self._retiring = False
        self.closed_listeners = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reloads: set[asyncio.Task[None]] = set()
        #: Called once the server has started, before it serves a request (a worker tells its
        #: supervisor with it).
        self.on_started: Callable[[], None] | None = None

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

    async def startup(self, sockets: list[socket] | None = None) -> None:
        await super().startup(sockets)
        # Listening began at most one loop turn ago: no request can have been answered yet.
        if self.started and self.on_started is not None:
            self.on_started()

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
        if self._retiring:
            return
        self._retiring = True
        app = self.app
        if app is not None:
            app.state.serving.retiring = True  # Connection: close, but still ready
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop_accepting)
        if self._stop_at is None:
            self._stop_at = time.monotonic() + max(self.drain_seconds, RETIRE_GRACE)

    def _stop_accepting(self) -> None:
        """New connections go to the other workers: the listening socket is theirs too."""
        for server in self.servers:
            server.close()
        self.closed_listeners = True  # the supervisor asks (``Worker.accepting``)

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
            if app.state.settings.several_models:
                await app.state.reloader.reload_routing()
            else:
                await app.state.reloader.reload()
