"""Run the app under uvicorn: bind first, then serve with one or several workers.

The model is loaded and warmed up *before* the socket is bound, so a server that
cannot serve never takes the port and the caller gets a StartupError instead.
Signals, draining and supervised workers are ``lifecycle.py``'s; the header read
deadline is ``connections.py``'s.
"""

from __future__ import annotations

import os
import socket

import uvicorn

from restpredict.connections import header_deadline_protocol
from restpredict.errors import StartupError
from restpredict.lifecycle import AppFactory, GracefulServer, Supervisor
from restpredict.model import LoadedModel
from restpredict.reload import prepare_model
from restpredict.settings import Settings

__all__ = ["bind", "run"]


def run(settings: Settings, model: LoadedModel | None = None) -> None:
    """Serve until SIGINT/SIGTERM. Several workers each load the model themselves."""
    if model is None:
        model = prepare_model(settings)
    sock = bind(settings.host, settings.port)
    if settings.workers == 1:
        GracefulServer(_config(settings, AppFactory(settings, model))).run(sockets=[sock])
        return
    del model  # each spawned worker loads its own copy; the supervisor needs none
    config = _config(settings, AppFactory(settings, supervisor_pid=os.getpid()))
    Supervisor(config, sockets=[sock]).run()


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


def _config(settings: Settings, factory: AppFactory) -> uvicorn.Config:
    return uvicorn.Config(
        factory,
        factory=True,
        http=header_deadline_protocol(settings.header_timeout),
        workers=settings.workers,
        log_level=settings.log_level,
        timeout_keep_alive=settings.keep_alive_timeout,
        timeout_graceful_shutdown=settings.shutdown_timeout,
        timeout_worker_healthcheck=60,  # spawned workers import scikit-learn first
        server_header=False,
    )
