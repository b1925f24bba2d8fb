"""Run the app under uvicorn: bind first, then serve with one or several workers.

The model is loaded and warmed up *before* the socket is bound, so a server that
cannot serve never takes the port and the caller gets a StartupError instead.
"""

from __future__ import annotations

import functools
import socket

import uvicorn
from uvicorn.supervisors import Multiprocess

from restpredict.app import create_app
from restpredict.errors import StartupError
from restpredict.model import LoadedModel, load_configured_model
from restpredict.settings import Settings

__all__ = ["bind", "run"]


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
    factory = functools.partial(create_app, settings)
    config = _config(settings, factory, factory=True)
    Multiprocess(config, sockets=[sock]).run()


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


def _config(settings: Settings, app: object, *, factory: bool = False) -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        factory=factory,
        workers=settings.workers,
        log_level=settings.log_level,
        timeout_graceful_shutdown=30,
        timeout_worker_healthcheck=60,  # spawned workers import scikit-learn first
        server_header=False,
    )
