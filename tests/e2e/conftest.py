"""Fixtures of the end-to-end tests: real ``restpredict serve`` processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.servers import ServerProcess, close, start_server


@pytest.fixture
def serve() -> Iterator[Callable[..., ServerProcess]]:
    """Start ``python -m restpredict serve ARGS --port P``; stopped at teardown."""
    started: list[ServerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        server = start_server(*args, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        close(server)
