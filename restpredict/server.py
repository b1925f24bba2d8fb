"""Run the app under uvicorn: bind first, then serve with one or several workers.

The model is loaded and warmed up *before* the socket is bound, so a server that
cannot serve never takes the port and the caller gets a StartupError instead.

Logging is set up by uvicorn from ``logs.logging_config`` in this process and in
every worker. With several workers, ``run`` is also the one place that sets
``PROMETHEUS_MULTIPROC_DIR``: prometheus_client reads it when a worker imports it,
so it must be in the environment before the workers are spawned.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from uvicorn.supervisors import Multiprocess

from restpredict.app import create_app
from restpredict.errors import StartupError
from restpredict.logs import logging_config
from restpredict.metrics import forget_worker
from restpredict.model import LoadedModel, load_configured_model
from restpredict.settings import Settings

__all__ = ["MULTIPROC_ENV", "bind", "run"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def run(settings: Settings, model: LoadedModel | None = None) -> None:
    """Serve until SIGINT/SIGTERM. Several workers each load the model themselves."""
    if model is None:
        model = load_configured_model(settings)
        model.warm_up()
    sock = bind(settings.host, settings.port)
    if settings.workers == 1:
        config = _config(settings, create_app(settings, model))
        uvicorn.Server(config).run(sockets=[sock])
        return
    del model  # each spawned worker loads its own copy; the supervisor needs none
    with _multiprocess_metrics() as metrics_dir:
        factory = functools.partial(create_app, settings, metrics_dir=metrics_dir)
        config = _config(settings, factory, factory=True)
        _Supervisor(config, [sock], metrics_dir).run()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a StartupError that says why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def _multiprocess_metrics() -> Iterator[Path]:
    """A private, empty directory for the workers' metric files, removed when serving ends."""
    directory = Path(tempfile.mkdtemp(prefix="restpredict-metrics-"))
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = str(directory)  # inherited by the spawned workers
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(directory, ignore_errors=True)


class _Supervisor(Multiprocess):
    """uvicorn's supervisor, telling prometheus_client about each worker that goes away."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], metrics: Path) -> None:
        super().__init__(config, sockets)
        self.metrics_dir = metrics

    def keep_subprocess_alive(self) -> None:
        """Dead or hung workers are replaced here."""
        with self._forgetting_replaced():
            super().keep_subprocess_alive()

    def handle_signals(self) -> None:
        """SIGHUP replaces every worker, SIGTTOU retires one."""
        with self._forgetting_replaced():
            super().handle_signals()

    @contextlib.contextmanager
    def _forgetting_replaced(self) -> Iterator[None]:
        before = {process.pid for process in self.processes}
        yield
        for pid in before - {process.pid for process in self.processes}:
            if pid is not None:
                forget_worker(self.metrics_dir, pid)


def _config(settings: Settings, app: object, *, factory: bool = False) -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        factory=factory,
        workers=settings.workers,
        log_level=settings.log_level,
        log_config=logging_config(settings, sys.stderr),
        access_log=False,  # restpredict writes its own (observability.py)
        timeout_graceful_shutdown=30,
        timeout_worker_healthcheck=60,  # spawned workers import scikit-learn first
        server_header=False,
    )
