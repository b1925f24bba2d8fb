"""Helpers for the end-to-end robustness suite: raw loopback sockets with bounded waits."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: Lets a server subprocess unpickle ``tests.e2e.hostile_models``.
PYTHONPATH = {"PYTHONPATH": str(REPO)}


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    assert host == "127.0.0.1", "the suite talks to loopback only"
    return host, int(port)


def exchange(url: str, request: bytes, *, wait: float = 20.0) -> bytes:
    """Send raw ``request`` bytes; return every byte received until the server closes."""
    with socket.create_connection(address(url), timeout=wait) as sock:
        with contextlib.suppress(OSError):  # the server may answer and close before reading all
            sock.sendall(request)
        received = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:
                return received
            if not chunk:
                return received
            received += chunk
        raise AssertionError(f"connection still open after {wait} s; got {received[:300]!r}")


def status_of(answer: bytes) -> int:
    """The status code of the first response in raw bytes."""
    line = answer.split(b"\r\n", 1)[0]
    assert line.startswith(b"HTTP/1."), answer[:200]
    return int(line.split()[1])


def head_and_body(answer: bytes) -> tuple[dict[bytes, bytes], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return headers, body


def workers_of(pid: int) -> set[int]:
    """The worker processes of a multi-worker server: the supervisor's children (forked)."""
    return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
