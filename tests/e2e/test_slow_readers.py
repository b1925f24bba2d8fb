"""Clients that pipeline big requests and never read hold no slot and no unbounded memory."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import joblib
import pytest

from tests.support.servers import ServerProcess

from .hostile_models import ManyClasses
from .servers import PYTHONPATH, address

pytestmark = pytest.mark.adversarial

ROWS = 2000
CLIENTS = 33


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _big_request() -> bytes:
    body = json.dumps({"features": [[1, 2]] * ROWS, "return": ["proba"]}).encode()
    return (
        b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )


def test_non_reading_pipelining_clients_do_not_starve_others(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    path = tmp_path / "wide.joblib"
    joblib.dump(ManyClasses().fit(), path)
    server = serve(
        str(path),
        "--send-timeout", "15",
        "--queue-delay-target-ms", "60000",  # this test is about slots and buffers
        "--write-buffer-budget", str(64 * 1024 * 1024),
        "--log-level", "warning",
        env=PYTHONPATH,
    )  # fmt: skip
    pid = server.process.pid
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post("/predict", json={"features": [1, 2]}).status_code == 200
        before = _rss_mib(pid)
        request = _big_request()
        started = time.monotonic()
        hogs = []
        for _ in range(CLIENTS):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(address(server.url))
            sock.sendall(request + request)  # two pipelined requests, never read
            hogs.append(sock)
        try:
            # The hogs' first answers are computed, then stuck in the buffers: from then on,
            # well before the send timeout, every other client is served.
            deadline = time.monotonic() + 10
            while client.post("/predict", json={"features": [1, 2]}).status_code != 200:
                assert time.monotonic() < deadline, "other clients were starved"
                time.sleep(0.2)
            statuses = [
                client.post("/predict", json={"features": [1, 2]}).status_code for _ in range(20)
            ]
            assert statuses == [200] * 20, statuses
            grown = _rss_mib(pid) - before
            # 66 answers of ~7 MB would be ~460 MiB; the budget keeps unread bytes to 64 MiB.
            assert grown < 250, f"RSS grew {grown:.0f} MiB"
            # Past the send timeout, every hog has been dropped: reading now gets what the
            # kernel still holds for it, then the reset, never the whole first answer.
            time.sleep(max(0.0, started + 15 + 15 - time.monotonic()))  # answers took a while
            for sock in hogs:
                sock.settimeout(10)
                received = 0
                try:
                    while chunk := sock.recv(1 << 20):
                        received += len(chunk)
                except ConnectionResetError:
                    pass
                assert received < 7_000_000, received
        finally:
            for sock in hogs:
                sock.close()
        assert client.get("/health/live").status_code == 200
