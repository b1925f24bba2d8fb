"""HTTP strictness and error hygiene, with raw bytes on a real server's loopback socket."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.servers import running_server

from .servers import address, exchange, head_and_body, status_of

ROW = b'{"features": [5.1, 3.5, 1.4, 0.2]}'


pytestmark = pytest.mark.adversarial


@pytest.fixture(scope="module", params=["httptools", "h11"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A keyed server on each HTTP parser: both must be as strict."""
    with running_server("--api-key-file", str(_key_file()), "--http", request.param) as server_url:
        yield server_url


def _key_file() -> str:
    import tempfile

    handle = tempfile.NamedTemporaryFile("w", suffix=".key", delete=False)  # noqa: SIM115
    handle.write(KEY)
    handle.close()
    return handle.name


KEY = "s3cret-key-for-tests"
AUTH = f"Authorization: Bearer {KEY}\r\n".encode()


def post(path: bytes = b"/predict", *, headers: bytes = b"", body: bytes = ROW) -> bytes:
    """A well-formed POST with our key, plus ``headers``; Content-Length from ``body``."""
    return (
        b"POST " + path + b" HTTP/1.1\r\nHost: t\r\n" + AUTH
        + b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        + headers + b"\r\n" + body
    )  # fmt: skip


def problem(answer: bytes, status: int) -> dict[str, object]:
    assert status_of(answer) == status, answer[:400]
    headers, body = head_and_body(answer)
    assert headers[b"content-type"] == b"application/problem+json", answer[:400]
    document: dict[str, object] = json.loads(body)
    assert document["status"] == status
    return document


def access_lines(url: str) -> dict[str, float]:
    """``restpredict_requests_total`` samples by status (every route, summed)."""
    metrics = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    counts: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("restpredict_requests_total{"):
            status = line.split('status="', 1)[1].split('"', 1)[0]
            counts[status] = counts.get(status, 0) + float(line.rsplit(" ", 1)[1])
    return counts


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        pytest.param(b"X-Big: " + b"a" * 70_000 + b"\r\n", "bytes", id="one-70KiB-header"),
        pytest.param(b"".join(b"X-H%d: v\r\n" % i for i in range(150)), "count", id="150-headers"),
    ],
)
def test_header_limits_are_a_431_before_auth(url: str, extra: bytes, why: str) -> None:
    request = b"POST /predict HTTP/1.1\r\nHost: t\r\n" + extra + b"Content-Length: 2\r\n\r\n{}"
    document = problem(exchange(url, request), 431)  # not 401: no key was sent
    assert document["code"] == "headers_too_large"


def test_a_huge_header_is_refused_while_it_arrives(url: str) -> None:
    """16 MiB of one header: refused after the limit, not read (or held) to the end."""
    with socket.create_connection(address(url), timeout=10) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: t\r\nX-Big: ")
        sent = 0
        answer = b""
        sock.settimeout(0.05)
        while sent < 16 * 1024 * 1024:
            try:
                sent += sock.send(b"a" * 65536)
            except OSError:
                break
            try:
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if answer:
                break
        assert sent < 4 * 1024 * 1024, "the server kept reading a header far over the limit"
        sock.settimeout(5)
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert status_of(answer) == 431


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"GET /health/live HTTP/1.1\r\n\r\n", id="no-host"),
        pytest.param(b"GET /health/live HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", id="two-hosts"),
        pytest.param(
            b"POST /predict HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            id="chunked-http-1.0",
        ),
        pytest.param(b"GARBAGE\r\n\r\n", id="not-http"),
    ],
)
def test_framing_errors_are_problem_json_400s(url: str, request_bytes: bytes) -> None:
    before = access_lines(url).get("400", 0)
    problem(exchange(url, request_bytes), 400)
    assert _eventually(lambda: access_lines(url).get("400", 0) == before + 1)


@pytest.mark.parametrize(
    "coding",
    [
        pytest.param(b"gzip, chunked", id="gzip-chunked"),
        pytest.param(b"chunked, chunked", id="chunked-twice"),
        pytest.param(b"identity", id="identity"),
    ],
)
def test_a_transfer_encoding_other_than_chunked_is_refused(url: str, coding: bytes) -> None:
    request = (
        b"POST /predict HTTP/1.1\r\nHost: t\r\n" + AUTH + b"Transfer-Encoding: " + coding
        + b"\r\nContent-Type: application/json\r\n\r\n"
        + b"%x\r\n" % len(ROW) + ROW + b"\r\n0\r\n\r\n"
    )  # fmt: skip
    assert status_of(exchange(url, request)) in (400, 501)


def test_a_gzip_body_is_refused_with_415(url: str) -> None:
    document = problem(exchange(url, post(headers=b"Content-Encoding: gzip\r\n")), 415)
    assert "gzip" in str(document["detail"])


def test_a_trailing_slash_is_never_redirected_with_the_clients_host(url: str) -> None:
    request = post(b"/predict/").replace(b"Host: t", b"Host: evil.example")
    answer = exchange(url, request + b"", wait=10)
    assert status_of(answer) != 307
    assert b"evil.example" not in answer


def test_a_repeated_key_is_a_400(url: str) -> None:
    body = b'{"features": [1, 2, 3, 4], "features": [5.1, 3.5, 1.4, 0.2]}'
    document = problem(exchange(url, post(body=body, headers=b"Connection: close\r\n")), 400)
    assert "features" in str(document["detail"])


def test_json_content_type_with_more_parameters_is_accepted(url: str) -> None:
    request = post(headers=b"Connection: close\r\n").replace(
        b"Content-Type: application/json", b"Content-Type: application/json; charset=utf-8; v=1"
    )
    assert status_of(exchange(url, request)) == 200


def test_a_client_that_leaves_mid_body_is_a_499_not_a_server_error(url: str) -> None:
    before = access_lines(url)
    with socket.create_connection(address(url), timeout=5) as sock:
        sock.sendall(post(body=b"x" * 1000)[:-600])  # the headers and part of the body
        time.sleep(0.2)
    assert _eventually(lambda: access_lines(url).get("499", 0) == before.get("499", 0) + 1)
    assert access_lines(url).get("500", 0) == before.get("500", 0)


def _eventually(check: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False
