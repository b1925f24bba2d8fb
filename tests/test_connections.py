"""Slowloris: connections whose headers trickle in are answered 408 and closed.

uvicorn 0.54 alone keeps such connections open forever (its keep-alive timer only
runs after a first response), so each case here fails without connections.py.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from restpredict.app import create_app
from restpredict.settings import Settings

from .inprocess import GateModel, running, wrap
from .test_limits import _exchange

HEAD = b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"


@pytest.fixture(params=["httptools", "h11"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    model = GateModel()
    model.gate.set()
    with running(
        create_app(Settings(), wrap(model)), header_timeout=0.5, parser=request.param
    ) as u:
        yield u


def assert_408(answer: bytes) -> None:
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 408 Request Timeout", answer
    assert b"content-type: application/problem+json" in rest
    assert b"connection: close" in rest
    assert rest.endswith(b"}") and b'"code":"request_timeout"' in rest


def test_a_silent_connection_is_closed(url: str) -> None:
    assert_408(_exchange(url, b""))


def test_trickled_headers_are_cut_off(url: str) -> None:
    assert_408(_exchange(url, b"", trickle=HEAD + b"X-Pad: " + b"a" * 400))


def test_the_deadline_rearms_after_each_response(url: str) -> None:
    body = b'{"features": [1, 2]}'
    first = HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body
    answer = _exchange(url, first, trickle=HEAD + b"X-Pad: " + b"a" * 400)
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 200 OK"
    assert_408(rest[rest.index(b"HTTP/1.1 ") :])


def test_others_are_served_while_slow_clients_hold_connections(url: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    stalled = [socket.create_connection((host, int(port))) for _ in range(20)]
    try:
        for sock in stalled:
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: t\r\n")
        answers: list[int] = []
        worker = threading.Thread(
            target=lambda: answers.append(
                httpx.post(f"{url}/predict", json={"features": [1, 2]}).status_code
            )
        )
        worker.start()
        worker.join(timeout=30)
        assert answers == [200]
        for sock in stalled:
            sock.settimeout(30)
            assert_408(b"".join(iter(lambda s=sock: s.recv(65536), b"")))
    finally:
        for sock in stalled:
            sock.close()
