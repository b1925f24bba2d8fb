"""Run the app under uvicorn: bind first, then serve with one or several workers.

The model is loaded and warmed up *before* the socket is bound, so a server that
cannot serve never takes the port and the caller gets a StartupError instead. With several
workers it is loaded there too, once: the supervisor forks its workers from this process
(``supervisor.py``), so they share the model's memory and serve exactly the model verified
here. ``prepare_model`` (settings in, what the app serves out) is the one function that does
it, for one worker or several.
Signals, draining and supervised workers are ``lifecycle.py``'s; the header read
deadline is ``protocols/``'s.

Logging is set up by uvicorn from ``observability.logs.logging_config`` in this process and in
every worker. With several workers, ``run`` is also the one place that sets
``PROMETHEUS_MULTIPROC_DIR``; prometheus_client decides its mode when imported, so it is
told to decide again before any worker is forked.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn

from restpredict.errors import StartupError
from restpredict.model.loading import LoadedModel
from restpredict.model.prepare import Prepared, prepare_model, prepare_models
from restpredict.observability.logs import logging_config
from restpredict.observability.metrics import reread_multiprocess_mode
from restpredict.server.lifecycle import AppFactory, GracefulServer
from restpredict.server.protocols.auto import header_deadline_protocol
from restpredict.settings import Settings

__all__ = ["MULTIPROC_ENV", "bind", "run"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def run(
    settings: Settings,
    model: LoadedModel | None = None,
    *,
    models: list[Prepared] | None = None,
    reread: Callable[[], Settings] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM; StartupError if several workers can no longer serve.

    ``reread``: the settings built again from the same layers (configuration file, environment,
    flags), for a reload of several models' traffic and shadows; without it that is refused.

    ``models``: the prepared catalog when several models are configured (``prepare_models``);
    like ``model``, loaded here once and shared by the workers forked from this process.
    """
    if settings.several_models:
        if models is None:
            models = prepare_models(settings)
    elif model is None:
        model = prepare_model(settings)
    sock = bind(settings.host, settings.port)
    if settings.workers == 1:
        factory = AppFactory(settings, model, models=models, reread=reread)
        GracefulServer(_config(settings, factory)).run(sockets=[sock])
        return
    # Lazy import, for start-up time: one worker needs no supervisor (nor uvicorn's
    # multiprocess supervisor and the fleet modules it brings, ~25 ms).
    from restpredict.server.supervisor import Supervisor

    with _multiprocess_metrics() as metrics_dir, _private_dir("fleet") as fleet_dir:
        factory = AppFactory(
            settings,
            model,
            supervisor_pid=os.getpid(),
            metrics_dir=metrics_dir,
            fleet_dir=fleet_dir,
            models=models,
            reread=reread,
        )
        del (
            model,
            models,
        )  # the factory holds them: a reload or repository change replaces them there
        supervisor = Supervisor(
            _config(settings, factory),
            sockets=[sock],
            factory=factory,
            settings=settings,
            fleet_dir=fleet_dir,
            metrics_dir=metrics_dir,
            reread=reread,
        )
        supervisor.run()
    if supervisor.exit_code:
        raise StartupError("no worker can serve (see the log above)")


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
    previous = os.environ.get(MULTIPROC_ENV)
    with _private_dir("metrics") as directory:
        os.environ[MULTIPROC_ENV] = str(directory)  # inherited by the forked workers
        reread_multiprocess_mode()
        try:
            yield directory
        finally:
            if previous is None:
                os.environ.pop(MULTIPROC_ENV, None)
            else:
                os.environ[MULTIPROC_ENV] = previous
            reread_multiprocess_mode()


@contextlib.contextmanager
def _private_dir(purpose: str) -> Iterator[Path]:
    """A new directory only this user can read, removed when serving ends."""
    directory = Path(tempfile.mkdtemp(prefix=f"restpredict-{purpose}-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _config(settings: Settings, factory: AppFactory) -> uvicorn.Config:
    return uvicorn.Config(
        factory,
        factory=True,
        http=header_deadline_protocol(
            settings.header_timeout,
            settings.http_parser,
            max_header_bytes=settings.max_header_bytes,
            max_header_count=settings.max_header_count,
            send_timeout=settings.send_timeout,
            write_buffer_budget=settings.write_buffer_budget,
        ),
        ws="none",  # no WebSocket routes: upgrades are refused and websockets is never imported
        workers=settings.workers,
        log_level=settings.log_level,
        log_config=logging_config(settings, sys.stderr),
        access_log=False,  # restpredict writes its own (observability.py)
        timeout_keep_alive=settings.keep_alive_timeout,
        timeout_graceful_shutdown=settings.shutdown_timeout,
        server_header=False,
        **_tls(settings),
    )


def _tls(settings: Settings) -> dict[str, Any]:
    """uvicorn's own TLS options: HTTPS with tls_cert/tls_key, client certificates required
    (mutual TLS) with tls_client_ca."""
    if settings.tls_cert is None:
        return {}
    options: dict[str, Any] = {
        "ssl_certfile": str(settings.tls_cert),
        "ssl_keyfile": str(settings.tls_key),
    }
    if settings.tls_client_ca is not None:
        options["ssl_ca_certs"] = str(settings.tls_client_ca)
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return options
