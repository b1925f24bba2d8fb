"""Connections: slow headers get 408, responses go out in one write.

uvicorn 0.54 alone keeps connections whose headers trickle in open forever (its
keep-alive timer only runs after a first response), so each slowloris case here fails
without connections.py.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest

from restpredict.app import create_app
from restpredict.server.protocols.httptools_impl import OneWriteResponses
from restpredict.settings import Settings
from tests.middleware.test_limits import _exchange
from tests.support.inprocess import GateModel, running, wrap

pytestmark = pytest.mark.adversarial

HEAD = b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"


@pytest.fixture(params=["httptools", "h11"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    model = GateModel()
    model.gate.set()
    with running(
        create_app(Settings(), wrap(model)), header_timeout=0.5, keep_alive=1, parser=request.param
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


def test_a_connection_answered_often_keeps_going_past_the_header_timeout(url: str) -> None:
    body = b'{"features": [1, 2]}'
    request = HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        reader = sock.makefile("rb")
        finish = time.monotonic() + 1.5  # three header timeouts, a request every 0.1 s
        answered = 0
        while time.monotonic() < finish:
            sock.sendall(request)
            assert reader.readline() == b"HTTP/1.1 200 OK\r\n"
            while (line := reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert b'"predictions"' in reader.read(length)
            answered += 1
            time.sleep(0.1)
    assert answered >= 10


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout_without_a_408() -> None:
    """Idle after a response: closed quietly at the keep-alive timeout, well before the
    header deadline would have answered 408 (httptools: by the connection's one timer)."""
    model = GateModel()
    model.gate.set()
    app = create_app(Settings(), wrap(model))
    with running(app, header_timeout=20, keep_alive=1) as url:
        body = b'{"features": [1, 2]}'
        started = time.monotonic()
        answer = _exchange(url, HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        idle = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.count(b"HTTP/1.1") == 1
    assert answer.endswith(b"}")  # the response, then nothing: no 408
    assert 1 <= idle < 20


def test_expect_100_continue_is_answered_before_the_body_is_sent(url: str) -> None:
    body = b'{"features": [1, 2]}'
    head = HEAD + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        reader = sock.makefile("rb")
        assert reader.readline() == b"HTTP/1.1 100 Continue\r\n"  # held, it would hang here
        assert reader.readline() == b"\r\n"
        sock.sendall(body)
        assert reader.readline() == b"HTTP/1.1 200 OK\r\n"


def test_pipelined_requests_are_answered_in_order(url: str) -> None:
    def request(value: int) -> bytes:
        body = b'{"features": [%d, 2]}' % value
        return HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body

    last = HEAD.replace(b"Host: t", b"Host: t\r\nConnection: close")
    body = b'{"features": [3, 2]}'
    answer = _exchange(
        url, request(1) + request(2) + last + b"Content-Length: %d\r\n\r\n" % len(body) + body
    )
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert answer.endswith(b"}") and answer.count(b'"predictions"') == 3


def _response(reader: Any) -> tuple[bytes, bytes]:
    """The status line and body of the next response on ``reader`` (Content-Length framed)."""
    status = reader.readline()
    length = 0
    while (line := reader.readline()) != b"\r\n":
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return status, reader.read(length)


def test_an_upgrade_request_is_answered_as_http_1_1_with_its_body(url: str) -> None:
    """``curl --http2`` on plain HTTP asks for h2c: there is none, so the Upgrade is ignored,
    and the body (sent in two parts here), the connection and a pipelined request are kept."""
    body = b'{"features": [1, 2]}'
    framed = b"Content-Length: %d\r\n\r\n" % len(body)
    upgrade = b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMA\r\n"
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        reader = sock.makefile("rb")
        sock.sendall(HEAD + upgrade + framed + body[:5])
        time.sleep(0.2)  # the rest of the body comes in a later read
        sock.sendall(body[5:] + HEAD + framed + body)
        for _ in range(2):
            status, answer = _response(reader)
            assert status == b"HTTP/1.1 200 OK\r\n", answer
            assert answer.startswith(b'{"predictions"'), answer


class RecordingTransport:
    """Records what is written, in the calls it is written with."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def writelines(self, chunks: Iterable[bytes]) -> None:
        self.calls.append(("writelines", b"".join(chunks)))

    def close(self) -> None:
        self.calls.append(("close", b""))

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None


def test_a_head_and_its_body_go_out_in_one_call_and_a_lone_head_at_the_end_of_the_turn() -> None:
    async def main() -> list[tuple[str, bytes]]:
        transport = RecordingTransport()
        responses = OneWriteResponses(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        responses.write(b"HEAD1 ")
        responses.write(b"body1")  # one call for the whole response
        responses.write(b"HEAD2 ")  # a streamed body: the head is not held past this turn
        assert transport.calls == [("writelines", b"HEAD1 body1")]
        await asyncio.sleep(0)
        responses.write(b"chunk")
        responses.write(b"more")
        responses.write(b"HEAD3 ")
        responses.close()  # nothing is lost or reordered by a close
        assert responses.get_extra_info("peername") == ("127.0.0.1", 1)
        assert not responses.is_closing()
        await asyncio.sleep(0)
        return transport.calls

    assert asyncio.run(main()) == [
        ("writelines", b"HEAD1 body1"),
        ("write", b"HEAD2 "),
        ("writelines", b"chunkmore"),
        ("write", b"HEAD3 "),
        ("close", b""),
    ]


def test_a_head_held_for_a_connection_that_closed_meanwhile_is_dropped() -> None:
    async def main() -> list[tuple[str, bytes]]:
        transport = RecordingTransport()
        responses = OneWriteResponses(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        responses.write(b"HEAD ")
        transport.closed = True  # the client went away before the end of the turn
        await asyncio.sleep(0)
        return transport.calls

    assert asyncio.run(main()) == []
