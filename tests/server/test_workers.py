"""A worker reports its own readiness: one that served and then died had started."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from restpredict.server.workers import Worker


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(os.getpid()))


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    """A loopback socket already listening: connections wait in its backlog for a worker."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


def started(app: Starlette, sock: socket.socket) -> Worker:
    config = uvicorn.Config(app, log_level="critical", access_log=False)
    worker = Worker(config, [sock], "generation")
    worker.start()
    return worker


def test_a_worker_that_served_and_then_died_had_started(listening: socket.socket) -> None:
    """The race CI once saw: a worker up and serving is killed before the supervisor's check."""
    worker = started(Starlette(routes=[Route("/", hello)]), listening)
    try:
        host, port = listening.getsockname()
        answer = httpx.get(f"http://{host}:{port}/", timeout=30)
        assert answer.text == str(worker.pid)  # it served
        os.kill(worker.pid or 0, signal.SIGKILL)
        worker.process.join(30)
        assert worker.exitcode == -signal.SIGKILL
        assert worker.wait_until_ready(5, lambda: False)  # asked only now: it had started
        assert worker.ready_at is not None
    finally:
        worker.kill()
        worker.join()


def test_a_worker_that_died_starting_did_not_start(listening: socket.socket) -> None:
    @contextlib.asynccontextmanager
    async def fail(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("cannot start")
        yield

    worker = started(Starlette(lifespan=fail), listening)
    try:
        assert not worker.wait_until_ready(30, lambda: False)
        worker.join(30)
        assert worker.exitcode == 3  # uvicorn's STARTUP_FAILURE
        assert worker.ready_at is None
    finally:
        worker.kill()
        worker.join()
